import { createdHwpt, freeAutoHwpt, resolveIoas } from '../iommufdCore.js';
import { changeFd, putFd, type ModelChanges } from '../mutate.js';
import { fail, ok, refuse, type Planned } from '../kernel.js';
import { releaseHas } from '../releases.js';
import { openedFd } from '../records.js';
import type { DeviceFdState, ModelState, Operation, Transition } from '../types.js';
import type { RuleId } from '../rules.js';

/**
 * noiommu mode through iommufd (7.3, pull 85e0d1de): "vfio: Enable cdev noiommu mode under iommufd" creates
 * /dev/vfio/devices/noiommu-vfioN for a device vfio-pci drives without an IOMMU (enable_unsafe_noiommu_mode),
 * and "iommufd: Allow binding to a noiommu device" binds it to a ctx with no iommu_group and no DMA ownership
 * (there is none to take; the ctx's page table is software only, hwpt_noiommu.c). Before 7.3 the uAPI was
 * "blocked off" (Gunthorpe, 2025-06-03): no such node, so its open fails at path lookup (-ENOENT).
 */

/** the cdev node the recorder opened is a noiommu one */
export const isNoiommuCdev = (cdev: string | undefined): boolean => cdev?.startsWith('noiommu-') === true;

/** the noiommu fd an open (or a recorded open) of /dev/vfio/devices/noiommu-vfioN makes */
export const planOpenNoiommu = (state: ModelState, op: Extract<Operation, { kind: 'openDevice' }>, changes: ModelChanges): void =>
  putFd(state, changes, { ...openedFd(op.deviceFd, op.device, 'cdev'), noiommu: true });

/** open(/dev/vfio/devices/noiommu-vfioN): a new fd from 7.3, no such node before */
export const decideOpenNoiommu = (state: ModelState, op: Extract<Operation, { kind: 'openDevice' }>): Transition =>
  releaseHas(state.caps.kernelRelease, 'noiommuCdev') ? ok('upstream.cdev.open', (changes) => planOpenNoiommu(state, op, changes)) : fail('release.cdev.noiommu-no-node');

// BIND_IOMMUFD of a noiommu fd (7.3) makes a device object in the ctx and claims no group: the upstream
// decider's planBind without a group

/**
 * ATTACH of a bound noiommu fd (7.3, "iommufd: Support a HWPT without an iommu driver for noiommu"): the IOAS
 * gets a software-only hwpt (hwpt_noiommu.c) the device alone uses; no iommu_group, so no domain moves. A second
 * attach replaces it. The check: the hwpt it lands on, or the rule refusing it.
 */
export const checkAttachNoiommu = (state: ModelState, fd: DeviceFdState, ptId: number): Planned<{ rule: RuleId; hwpt: number }> => {
  const ictx = state.ictxs.get(fd.ictx!);
  const obj = ictx?.objects.get(ptId);
  if (!ictx || !obj) return refuse('upstream.attach.pt-enoent');
  if (obj.kind !== 'ioas' && obj.kind !== 'hwpt') return refuse('upstream.attach.pt-wrong-type');
  const hwpt = obj.kind === 'hwpt' ? ptId : resolveIoas(ictx, ptId, fd.hwpt).hwpt;
  return { ok: true, value: { rule: hwpt === fd.hwpt ? 'upstream.attach.replace-same' : 'upstream.attach.noiommu', hwpt } };
};

/** a noiommu attach (made or recorded) that landed on `hwpt`: a new auto hwpt on the IOAS, the old one goes when nothing uses it */
export const planAttachNoiommu = (state: ModelState, fd: DeviceFdState, ptId: number, hwpt: number, changes: ModelChanges): void => {
  const ictx = state.ictxs.get(fd.ictx!);
  if (!ictx || hwpt === fd.hwpt) return;
  const created = ictx.objects.get(ptId)?.kind === 'ioas' && !ictx.objects.has(hwpt);
  // the hwpt it leaves, read before the fd moves
  const left = fd.hwpt;
  createdHwpt(state, ictx.handle, ptId, { hwpt, created }, changes);
  changeFd(state, changes, fd, { hwpt });
  if (left !== null) freeAutoHwpt(state, ictx.handle, left, changes);
};

/** DETACH (or the unbind at close) of a noiommu fd: off its hwpt, an auto hwpt nothing else uses goes */
export const detachNoiommu = (state: ModelState, fd: DeviceFdState, changes: ModelChanges): void => {
  const { ictx, hwpt } = fd;
  if (hwpt === null || ictx === null) return;
  changeFd(state, changes, fd, { hwpt: null });
  freeAutoHwpt(state, ictx, hwpt, changes);
};
