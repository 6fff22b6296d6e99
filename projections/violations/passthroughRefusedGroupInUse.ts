import type { GroupState as ModelGroup } from '../kernel/types.js';
import { ownerText } from './hostView.js';
import { defineRule } from './rule.js';

/** a passthrough the kernel refused because another user owns the group */
export const passthroughRefusedGroupInUse = {
  ...defineRule({
    id: 'passthrough-refused-group-in-use',
    severity: 'warning',
    title: 'passthrough refused: another user (VM or process) owns the group',
    harm: 'a VM or driver was pointed at a device whose group another owner holds: the kernel refused it, so it does not run, and the attempt crossed an ownership boundary',
    reference: '§1.0 iommu_device_claim_dma_owner (group->owner != owner → -EPERM); §1.4 step 10; S13 step 3',
    guards: 'a group has one owner: a claim by another iommufd or container is -EPERM',
    opens: 'raised by the -EPERM BIND_IOMMUFD, SET_CONTAINER or GET_DEVICE_FD of a group another user owns',
    closes: 'closed when the refused fd (device fd, or legacy group fd) closes',
    transient: 'none needed: the refusal is the finding; its duration is how long the refused user held on',
    impossibleUpstream: false,
  }),
  opensOnRefusal: (g: ModelGroup): boolean => g.owner !== null,
  describe: (g: ModelGroup, device: string | null, fd: string, what: string): string =>
    `${what}${device ? ` for ${device}` : ''} (fd ${fd}) refused -EPERM: group ${g.id} is owned by ${ownerText(g.owner!)}`,
};
