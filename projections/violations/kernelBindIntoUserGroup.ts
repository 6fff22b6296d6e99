import type { GroupState as ModelGroup } from '../kernel/types.js';
import { ownerText } from './hostView.js';
import { defineRule, IMPOSSIBLE_UPSTREAM } from './rule.js';

/** a kernel driver bind into a group a user owns */
export const kernelBindIntoUserGroup = {
  ...defineRule({
    id: 'kernel-bind-into-user-group',
    severity: 'warning',
    title: 'kernel driver bind attempted into a user-owned group',
    harm: 'an operator or udev tried to give a member of a user-owned group back to a kernel driver while the user still holds it: refused, the device stays without its driver (and, had it succeeded, the kernel driver would DMA inside the user\'s group)',
    reference: '§1.2 BOUND_DRIVER notifier removal (really_probe → dma_configure → -EBUSY); S27, S35',
    guards: 'iommu_device_use_default_domain refuses -EBUSY while the group has an owner; before v5.19 the notifier hit BUG_ON',
    opens: 'raised by the refused (or, worse, recorded as successful) kernel bind',
    closes: 'closed when the user ownership is released',
    transient: 'none needed: the refused bind is the finding (a correct sequence releases ownership before it rebinds)',
    impossibleUpstream: false,
  }),
  settled: (g: ModelGroup): boolean => g.owner === null,
  describeRefused: (g: ModelGroup, device: string, driver: string, errno: string): string =>
    `${driver} bind to ${device} refused -${errno}: group ${g.id} is owned by ${ownerText(g.owner!)}`,
  describeBound: (g: ModelGroup, device: string, driver: string): string =>
    `${driver} bound to ${device} in group ${g.id} owned by ${ownerText(g.owner!)}: upstream refuses -EBUSY (pre-v5.19: BUG_ON): ${IMPOSSIBLE_UPSTREAM}`,
};
