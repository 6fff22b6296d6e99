import type { Severity } from './types.js';

/** one rule of the violation catalogue; ids are stable (stored, exported to analytics, shown in the UI) */
export interface RuleDefinition {
  readonly id: RuleId;
  readonly severity: Severity;
  readonly title: string;
  /** where in protocol.md the rule comes from */
  readonly reference: string;
  /** the kernel behaviour the rule guards, in one sentence */
  readonly guards: string;
  /** what raises it and what closes it */
  readonly lifecycle: string;
}

export const RULE_IDS = [
  'kernel-driver-in-user-group',
  'passthrough-refused-not-viable',
  'kernel-bind-into-user-group',
  'split-domain',
  'two-owners',
  'legacy-and-cdev',
  'translated-by-unattached-domain',
  'access-before-bind',
  'access-granted-without-bind',
  'unsafe-interrupts',
  'tenant-mixing',
  'sequence-gap',
  'sequence-out-of-order',
  'sequence-late-arrival',
] as const;
export type RuleId = (typeof RULE_IDS)[number];

const rules: readonly RuleDefinition[] = [
  {
    id: 'kernel-driver-in-user-group',
    severity: 'critical',
    title: 'user-owned group has a member bound to a kernel DMA-API driver',
    reference: '§1.0 iommu_device_use_default_domain / iommu_device_claim_dma_owner; §4 invariant 2; S35',
    guards:
      'a claim with owner_cnt > 0 from kernel drivers is -EPERM and a kernel probe into an owned group is -EBUSY; seen only on pre-v5.19 kernels or when events were lost',
    lifecycle: 'raised by the bind (driver or user) that made both true; closed when the driver unbinds or the user ownership is released',
  },
  {
    id: 'passthrough-refused-not-viable',
    severity: 'warning',
    title: 'passthrough refused: the group is not viable (a member is bound to a kernel DMA-API driver)',
    reference: '§1.2 viability; §1.4 step 10; §1.6 set_container / get_device_fd; S23, S35',
    guards: 'iommu_device_claim_dma_owner / iommu_group_claim_dma_owner return -EPERM while owner_cnt counts kernel drivers',
    lifecycle: 'raised by the -EPERM BIND_IOMMUFD, SET_CONTAINER or GET_DEVICE_FD; closed when the blocking drivers are gone or the group is claimed',
  },
  {
    id: 'kernel-bind-into-user-group',
    severity: 'warning',
    title: 'kernel driver bind attempted into a user-owned group',
    reference: '§1.2 BOUND_DRIVER notifier removal (really_probe → dma_configure → -EBUSY); S27, S35',
    guards: 'iommu_device_use_default_domain refuses -EBUSY while the group has an owner; before v5.19 the notifier hit BUG_ON',
    lifecycle: 'raised by the refused (or, worse, recorded as successful) kernel bind; closed when the user ownership is released',
  },
  {
    id: 'split-domain',
    severity: 'critical',
    title: 'members of one group attached to different page tables',
    reference: '§1.2 single hwpt per iommufd_group; §1.3; §4 invariant 4; S15',
    guards: 'iommufd_hw_pagetable_attach refuses -EINVAL when igroup->hwpt differs; sub-group domains were never merged upstream',
    lifecycle: 'raised by the attach recorded as successful onto a second hwpt; closed when the group again has a single hwpt',
  },
  {
    id: 'two-owners',
    severity: 'critical',
    title: 'one group owned by two iommufd contexts, or by a container and an iommufd',
    reference: '§1.0 iommu_device_claim_dma_owner (group->owner != owner → -EPERM); S13 step 3',
    guards: 'a group has one owner pointer: a second iommufd or a legacy container claim is -EPERM',
    lifecycle: 'raised by the second successful claim; closed when only one owner remains',
  },
  {
    id: 'legacy-and-cdev',
    severity: 'critical',
    title: 'group used through the legacy group node and a cdev bind at the same time',
    reference: '§1.4 step 4 (vfio_device_block_group -EBUSY); §1.6 vfio_group_fops_open; §4 invariant 6',
    guards: 'cdev bind is -EBUSY while /dev/vfio/N is open, and opening /dev/vfio/N is -EBUSY while a member is cdev-bound',
    lifecycle: 'raised by the group open or cdev bind that made both true; closed when the group fd closes or the last cdev bind ends',
  },
  {
    id: 'translated-by-unattached-domain',
    severity: 'warning',
    title: "device DMA is translated through a page table it did not attach",
    reference: '§1.2 first attach moves whole group, non-last detach, replace; §4 invariant 5; S11, S17, S27, S29',
    guards:
      'domain changes are group-wide (__iommu_group_set_domain_internal): a sibling attach or replace moves every member, and a non-last detach leaves the device on the hwpt',
    lifecycle: 'raised by the sibling attach/replace, non-last detach or hot-add that moved the device; closed when it attaches that hwpt itself or the group leaves it',
  },
  {
    id: 'access-before-bind',
    severity: 'warning',
    title: 'device access attempted before BIND_IOMMUFD',
    reference: '§1.1 mmap/ioctl blocked until bind (df->access_granted); S1 step 3',
    guards: 'vfio_device_fops_* refuse with -EINVAL until the cdev fd is bound',
    lifecycle: 'raised by the refused access; closed when that fd binds or closes',
  },
  {
    id: 'access-granted-without-bind',
    severity: 'critical',
    title: 'device access succeeded on an unbound cdev fd',
    reference: '§1.1 access_granted gate; S1 step 3',
    guards: 'the access_granted gate: without it a user reaches the device before the group is DMA-blocked',
    lifecycle: 'raised by the successful access; closed when that fd binds or closes',
  },
  {
    id: 'unsafe-interrupts',
    severity: 'warning',
    title: 'device bound to iommufd without isolated MSI (allow_unsafe_interrupts)',
    reference: '§1.4 step 9 (iommufd_device_bind: -EPERM without isolated MSI unless allow_unsafe_interrupts)',
    guards: 'without interrupt remapping a device can forge MSI writes; the kernel only allows it with the module parameter',
    lifecycle: 'raised by the successful bind on a host without interrupt remapping; closed when the device is unbound',
  },
  {
    id: 'tenant-mixing',
    severity: 'critical',
    title: 'devices of one group used by different tenants or VMs (policy)',
    reference: '§1.2 the group is the isolation unit; §1.3 sub-groups not implemented (policy rule)',
    guards: 'members of one group are not isolated from each other, so they must not serve different tenants',
    lifecycle: 'raised by the open or bind that brought a second tenant/VM into the group; closed when only one remains',
  },
  {
    id: 'sequence-gap',
    severity: 'warning',
    title: 'events missing from a host (sequence gap): state uncertain past it',
    reference: 'envelope seq; §4 (the invariants hold only over a complete history)',
    guards:
      'the projection never shows a state it cannot vouch for: missing events may hide any transition, so the events after the gap are held (the host shows its state before the gap) until the gap fills; past the hold bound, or at a topology snapshot, they are applied past it and the host is uncertain',
    lifecycle:
      'raised by the first event after the gap (a host history starts at seq 1: a first event beyond it raises the gap before it); closed when the last missing event arrives (the held events are then applied in seq order), or by the next topology snapshot of the host',
  },
  {
    id: 'sequence-out-of-order',
    severity: 'warning',
    title: 'event from a host repeated a sequence number that was not missing: state uncertain from here',
    reference: 'envelope seq; §4',
    guards: 'per-host order is the kernel order; an event whose seq was already recorded cannot be placed in it',
    lifecycle: 'raised by the repeated seq; closed by the next topology snapshot of the host',
  },
  {
    id: 'sequence-late-arrival',
    severity: 'info',
    title: 'missing events of a host arrived late and filled their gap',
    reference: 'envelope seq; §4',
    guards:
      'a delivery that reorders events (retries, swapped chunks) loses nothing: the events held after the gap are applied in seq order once it fills, so the state is the one in-order delivery gives',
    lifecycle:
      'recorded (opened and closed) by the event that completes the gap; when the later events had already been applied past the gap (hold bound passed, or a topology snapshot), the fill is applied out of order and the host stays uncertain until the next topology snapshot',
  },
];

/** the violation catalogue, by rule id */
export const RULES: Readonly<Record<RuleId, RuleDefinition>> = Object.fromEntries(rules.map((r) => [r.id, r])) as Record<RuleId, RuleDefinition>;

export const isRuleId = (s: string): s is RuleId => Object.hasOwn(RULES, s);
