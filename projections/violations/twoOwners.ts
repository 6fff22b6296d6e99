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
  holds: (g) => g.twoOwners,
  describe: (g) =>
    `group ${g.group} is owned by ${[g.userOwner, ...g.extraOwners].map((o) => `${o!.kind} ${o!.handle}`).join(' and ')}; a second claim is -EPERM upstream: ${IMPOSSIBLE_UPSTREAM}`,
};
