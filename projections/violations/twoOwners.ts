import { ownerText } from './hostView.js';
import { defineRule, IMPOSSIBLE_UPSTREAM, type GroupRule } from './rule.js';

/** one group owned by two users at once */
export const twoOwners: GroupRule = {
  ...defineRule({
    id: 'two-owners',
    severity: 'critical',
    title: `one group owned by two iommufd contexts, or by a container and an iommufd (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'two users (processes, VMs or tenants) hold DMA ownership of one isolation unit: each can DMA into what the other maps',
    reference: '§1.0 iommu_device_claim_dma_owner (group->owner != owner → -EPERM); S13 step 3',
    guards: 'a group has one owner pointer: a second iommufd or a legacy container claim is -EPERM',
    opens: 'raised by the second claim recorded as successful',
    closes: 'closed when only one owner remains',
    transient: 'none needed: upstream refuses the second claim',
    impossibleUpstream: true,
  }),
  holds: (g) => g.extraOwners.length > 0,
  describe: (g) =>
    `group ${g.id} is owned by ${[g.owner, ...g.extraOwners].map((o) => ownerText(o!)).join(' and ')}; a second claim is -EPERM upstream: ${IMPOSSIBLE_UPSTREAM}`,
};
