import { setDeviceResetting, type ModelChanges } from '../mutate.js';
import { releaseHas } from '../releases.js';
import type { GroupState, ModelState, ObservationBody } from '../types.js';
import type { RuleId } from '../rules.js';

/**
 * Device reset fences the IOMMU (7.0): pci_dev_reset_iommu_prepare moves the device to its group's blocking
 * domain and sets group->resetting_domain; pci_dev_reset_iommu_done puts it back (drivers/iommu/iommu.c,
 * c279e83953d9). Meanwhile __iommu_group_set_domain_internal, iommu_attach_device_pasid and
 * iommu_replace_device_pasid return -EBUSY: an ATTACH, a replace or a PASID attach of the device or of a group
 * sibling fails (uapi vfio.h, VFIO_DEVICE_ATTACH_IOMMUFD_PT). The model learns the fence from the collector's
 * kprobes (TraceDeviceResetFence prepare/done). The fence's two attach_device_to_domain lines move no
 * ownership: the model never sees trace lines, and the collector marks them `resetFence`.
 */

/** TraceDeviceResetFence folded into the device: resetting from prepare to done */
export const observeResetFence = (event: Extract<ObservationBody, { type: 'TraceDeviceResetFence' }>, state: ModelState, changes: ModelChanges): void => {
  const d = state.devices.get(event.data.device);
  const resetting = event.data.phase === 'prepare';
  if (d && (d.resetting ?? false) !== resetting) setDeviceResetting(state, changes, d, resetting);
};

/** the decisions that change a group's domain (a join or a replace to the same hwpt calls no iommu op) */
const DOMAIN_CHANGES: ReadonlySet<RuleId> = new Set<RuleId>(['upstream.attach.first', 'upstream.attach.replace', 'upstream.attach.pasid']);

/** the group has a member between prepare and done, on a release that fences (7.0) */
const fenced = (state: ModelState, g: GroupState): boolean =>
  releaseHas(state.caps.kernelRelease, 'resetFence') && g.devices.some((n) => state.devices.get(n)?.resetting === true);

/** an attach (by the rule it would succeed by) that would change the group's domain while the fence holds is -EBUSY instead */
export const attachFenced = (state: ModelState, g: GroupState, rule: RuleId): boolean => DOMAIN_CHANGES.has(rule) && fenced(state, g);
