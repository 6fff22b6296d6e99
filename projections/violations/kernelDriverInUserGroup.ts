import { kernelDmaMembers, ownerText } from './hostView.js';
import { blockersOf, defineRule, IMPOSSIBLE_UPSTREAM, type GroupRule } from './rule.js';

/** a kernel DMA-API driver inside a user-owned group: the kernel driver's DMA shares the user's isolation unit */
export const kernelDriverInUserGroup: GroupRule = {
  ...defineRule({
    id: 'kernel-driver-in-user-group',
    severity: 'critical',
    title: `user-owned group has a member bound to a kernel DMA-API driver (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'a kernel driver does DMA through a group a user controls: the user can reach kernel memory the driver maps, and the driver the user\'s',
    reference: '§1.0 iommu_device_use_default_domain / iommu_device_claim_dma_owner; §4 invariant 2; S35',
    guards:
      'a claim with owner_cnt > 0 from kernel drivers is -EPERM and a kernel probe into an owned group is -EBUSY; seen only on pre-v5.19 kernels or when events were lost',
    opens: 'raised by the bind (driver or user) recorded as successful that made both true',
    closes: 'closed when the driver unbinds or the user ownership is released',
    transient: 'none needed: no correct sequence passes through it (upstream refuses both orders)',
    impossibleUpstream: true,
  }),
  holds: (g, v) => g.owner !== null && kernelDmaMembers(v.model, g, v.isKernelDma) > 0,
  describe: (g, v) =>
    `group ${g.id} is owned by ${ownerText(g.owner!)} while ${blockersOf(g, v)} ${kernelDmaMembers(v.model, g, v.isKernelDma) > 1 ? 'are' : 'is'} bound to a kernel DMA-API driver: ${IMPOSSIBLE_UPSTREAM} (claim -EPERM, probe -EBUSY; a pre-v5.19 kernel or lost events)`,
};
