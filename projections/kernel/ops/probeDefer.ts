import { fail } from '../kernel.js';
import { releaseHas } from '../releases.js';
import type { GroupState, ModelState, Transition } from '../types.js';

/**
 * iommu_device_use_default_domain (drivers/iommu/iommu.c), on the DMA-API driver's probe: "We may race
 * against bus_iommu_probe() finalising groups here": a group without a default domain yet answers
 * -EPROBE_DEFER (Robin Murphy, lore e88b94c9b575, 2025-02-28; 6.15, also in the 6.6+ stable trees). A probe
 * through drivers/<drv>/bind reaches the writer through device_driver_attach (drivers/base/dd.c), which turns
 * -EPROBE_DEFER into -EAGAIN; the driver core retries the deferred probe later. The model sees the missing
 * default domain in the snapshot: /sys/kernel/iommu_groups/N/type reads "unknown" while group->default_domain
 * is NULL (iommu_group_show_type).
 */
export const deferredProbe = (state: ModelState, g: GroupState): Transition | null =>
  g.noDefaultDomain === true && releaseHas(state.caps.kernelRelease, 'probeDeferNoDefaultDomain') ? fail('upstream.probe.no-default-domain') : null;
