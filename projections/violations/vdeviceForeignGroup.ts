import { defineRule, IMPOSSIBLE_UPSTREAM } from './rule.js';

/** a vDEVICE (a device's identity inside a guest's vIOMMU) for a device its own iommufd context does not own */
export const vdeviceForeignGroup = {
  ...defineRule({
    id: 'vdevice-foreign-group',
    severity: 'critical',
    title: `vDEVICE for a device whose group another context owns, or that its context never bound (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'a guest\'s vIOMMU speaks for a device another user (process, VM or tenant) holds: its stage-1 tables and invalidations would steer a device outside the isolation unit its context owns',
    reference:
      'kernel-changes-6.7-to-7.3.md §1 item 8, §2.4: drivers/iommu/iommufd/viommu.c iommufd_vdevice_alloc_ioctl (6.13) looks dev_id up in the caller\'s context (iommufd_get_device: -ENOENT otherwise), and a device of a context was bound through iommufd_device_bind → iommu_device_claim_dma_owner(ictx) (§1.0)',
    guards: 'IOMMU_VDEVICE_ALLOC takes only a device bound to the caller\'s context, whose group that context therefore owns',
    opens:
      'raised by the IOMMU_VDEVICE_ALLOC recorded as successful while its device\'s group is owned by another context or a legacy container, or while its dev_id names no device of a context recorded since it opened',
    closes: 'closed when the vDEVICE goes: IOMMU_DESTROY of it, its context torn down, or (6.17) its device unbound',
    transient: 'none needed: upstream refuses the allocation, so no correct sequence passes through it',
    impossibleUpstream: true,
  }),
  describeForeign: (vdevice: string, device: string, group: number, ictx: string, owner: string): string =>
    `${vdevice} of iommufd ${ictx} is ${device}'s identity in the guest, but group ${group} is owned by ${owner}: ${IMPOSSIBLE_UPSTREAM}`,
  describeUnbound: (vdevice: string, devId: number, ictx: string): string =>
    `${vdevice} names dev_id ${devId}, no device bound to iommufd ${ictx} (recorded since it opened; IOMMU_VDEVICE_ALLOC would be -ENOENT): ${IMPOSSIBLE_UPSTREAM}`,
};
