import type { GroupState as ModelGroup } from '../kernel/types.js';
import { kernelDmaMembers, type HostView } from './hostView.js';
import { blockersOf, defineRule } from './rule.js';

/** a passthrough the kernel refused because a member of the group is on a kernel DMA-API driver */
export const passthroughRefusedNotViable = {
  ...defineRule({
    id: 'passthrough-refused-not-viable',
    severity: 'warning',
    title: 'passthrough refused: the group is not viable (a member is bound to a kernel DMA-API driver)',
    harm: 'a passthrough was refused: the VM or driver that needed the device does not run until the blocking member leaves its kernel driver',
    reference: '§1.2 viability; §1.4 step 10; §1.6 set_container / get_device_fd; S23, S35',
    guards: 'iommu_device_claim_dma_owner / iommu_group_claim_dma_owner return -EPERM while owner_cnt counts kernel drivers',
    opens: 'raised by the -EPERM BIND_IOMMUFD, SET_CONTAINER or GET_DEVICE_FD of a group nobody owns',
    closes: 'closed when the blocking drivers are gone or the group is claimed',
    transient: 'none needed: the refusal is the finding (an event, not a state a sequence passes through)',
    impossibleUpstream: false,
  }),
  /** the refusal is this rule's (and not another user's ownership: passthrough-refused-group-in-use) */
  opensOnRefusal: (g: ModelGroup, v: HostView): boolean => g.owner === null && kernelDmaMembers(v.model, g, v.isKernelDma) > 0,
  settled: (g: ModelGroup, v: HostView): boolean => g.owner !== null || kernelDmaMembers(v.model, g, v.isKernelDma) === 0,
  describe: (g: ModelGroup, v: HostView, device: string | null, what: string): string =>
    `${what}${device ? ` for ${device}` : ''} refused: group ${g.id} is not viable, blocked by ${blockersOf(g, v)} (kernel DMA-API driver${kernelDmaMembers(v.model, g, v.isKernelDma) > 1 ? 's' : ''})`,
};
