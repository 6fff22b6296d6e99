import { defineRule, IMPOSSIBLE_UPSTREAM } from './rule.js';

/** a nested page table (or a vIOMMU) on a parent that is not a nesting parent of its own context */
export const nestedParentForeign = {
  ...defineRule({
    id: 'nested-parent-foreign',
    severity: 'critical',
    title: `nested page table or vIOMMU whose parent is not a nesting parent of its own context (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'a guest\'s stage-1 table is nested under a stage-2 its context does not hold: the device\'s DMA would reach the memory another user mapped there',
    reference:
      'kernel-changes-6.7-to-7.3.md §1 items 1 and 7, §2.1, §2.4: drivers/iommu/iommufd/hw_pagetable.c iommufd_hwpt_alloc (pt_id looked up in the caller\'s context: missing -EINVAL) and iommufd_hwpt_nested_alloc (parent not IOMMU_HWPT_ALLOC_NEST_PARENT -EINVAL), 6.7; viommu.c iommufd_viommu_alloc_ioctl (hwpt_id not a nesting parent -EINVAL), 6.13',
    guards: 'a nested hwpt or a vIOMMU is allocated only on a NEST_PARENT hwpt (or a vIOMMU) of the caller\'s own context',
    opens:
      'raised by a nested IOMMU_HWPT_ALLOC or an IOMMU_VIOMMU_ALLOC recorded as successful whose parent, in a context recorded since it opened, is no hwpt or vIOMMU of that context, or a hwpt allocated without NEST_PARENT',
    closes: 'closed when the nested hwpt or vIOMMU goes: IOMMU_DESTROY of it or its context torn down',
    transient: 'none needed: upstream refuses the allocation (-EINVAL), so no correct sequence passes through it',
    impossibleUpstream: true,
  }),
  describe: (what: string, ictx: string, parent: number, why: string): string =>
    `${what} of iommufd ${ictx} is nested under ${parent}, ${why}: ${IMPOSSIBLE_UPSTREAM}`,
};
