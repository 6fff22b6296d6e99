import { defineRule } from './rule.js';

/** I/O page faults delivered to userspace and never answered, which the kernel answered INVALID itself */
export const faultsAutoResponded = {
  ...defineRule({
    id: 'faults-auto-responded',
    severity: 'info',
    title: 'page faults left unanswered when their page table was detached or their queue closed: the kernel answered them INVALID',
    harm:
      'information: the kernel closes the fault itself (the device\'s page request fails and its DMA is aborted), so no isolation is lost; it records which faults a guest never answered, the evidence behind a device error in the guest',
    reference:
      'kernel-changes-6.7-to-7.3.md §1 item 4, §2.2: drivers/iommu/iommufd/fault.c (eventq.c from 6.15) iommufd_auto_response_faults, called at detach and replace of a fault-capable hwpt (iommufd_fault_domain_detach_dev, _replace_dev) and by iommufd_fault_fops_release for every pending fault, with IOMMU_PAGE_RESP_INVALID (6.11)',
    guards: 'a fault read from the queue and not answered is answered IOMMU_PAGE_RESP_INVALID by the kernel when its device leaves the hwpt or the queue closes',
    opens: 'recorded by the detach, replace, device close, fault fd close or context teardown that left delivered faults unanswered',
    closes: 'closed by the same event: the kernel\'s answer ends the fault',
    transient: 'none needed: a record, never a finding; a fault the VMM answers before the detach is not recorded',
    impossibleUpstream: false,
  }),
  describe: (count: number, device: string, queue: string, why: string): string =>
    `${count} page fault${count === 1 ? '' : 's'} of ${device} delivered on fault queue ${queue} and never answered: ${why}, so the kernel answered ${count === 1 ? 'it' : 'them'} INVALID (the device's page requests failed)`,
};
