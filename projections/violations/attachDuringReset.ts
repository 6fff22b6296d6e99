import { defineRule, IMPOSSIBLE_UPSTREAM } from './rule.js';

/** an attach recorded as successful while its device or a group sibling was inside a 7.0 reset fence */
export const attachDuringReset = {
  ...defineRule({
    id: 'attach-during-reset',
    severity: 'warning',
    title: `attach recorded as successful during a device reset that fences the IOMMU (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'the record contradicts the kernel: a page table change during a reset is refused (-EBUSY) from 7.0, so either an event is missing or the record is wrong, and the device\'s domain after the reset cannot be vouched for',
    reference:
      'kernel-changes-6.7-to-7.3.md §1 item 15, §2.7: drivers/iommu/iommu.c pci_dev_reset_iommu_prepare/done (7.0) set group->resetting_domain; __iommu_group_set_domain_internal, iommu_attach_device_pasid and iommu_replace_device_pasid return -EBUSY while it is set (uapi vfio.h, VFIO_DEVICE_ATTACH_IOMMUFD_PT)',
    guards: 'while a device or a sibling in its group is between pci_dev_reset_iommu_prepare and _done, any domain change of the group is -EBUSY',
    opens: 'raised by VFIO_DEVICE_ATTACH_IOMMUFD_PT recorded as successful between a TraceDeviceResetFence prepare and its done, of the device or a group sibling (the fence trace exists only on kernels that fence)',
    closes: 'closed by the fence\'s done (or the reset ioctl returning)',
    transient: 'none needed: the kernel refuses the attach (-EBUSY, the expected answer, recorded as no violation)',
    impossibleUpstream: true,
  }),
  describe: (device: string, resetting: string): string =>
    `${device} recorded attaching a page table while ${resetting === device ? 'it' : `its group sibling ${resetting}`} was being reset (pci_dev_reset_iommu_prepare without _done): -EBUSY from 7.0, ${IMPOSSIBLE_UPSTREAM}`,
};
