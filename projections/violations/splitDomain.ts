import { defineRule, IMPOSSIBLE_UPSTREAM, type GroupRule } from './rule.js';

/** members of one group on different page tables */
export const splitDomain: GroupRule = {
  ...defineRule({
    id: 'split-domain',
    severity: 'critical',
    title: `members of one group attached to different page tables (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'the IOMMU cannot tell the members apart, so each member may DMA through the other\'s page table: the isolation the user set up is not the one in force',
    reference: '§1.2 single hwpt per iommufd_group; §1.3; §4 invariant 4; S15',
    guards: 'iommufd_hw_pagetable_attach refuses -EINVAL when igroup->hwpt differs; sub-group domains were never merged upstream',
    opens: 'raised by the attach recorded as successful onto a second hwpt',
    closes: 'closed when the group again has a single hwpt',
    transient: 'none needed: upstream refuses the second attach, and a replace moves every attached member at once',
    impossibleUpstream: true,
  }),
  holds: (g, h) => {
    if (g.attachedDevices.length < 2) return false;
    const first = h.devices[g.attachedDevices[0]!]?.attachedHwpt;
    for (let i = 1; i < g.attachedDevices.length; i++) if (h.devices[g.attachedDevices[i]!]?.attachedHwpt !== first) return true;
    return false;
  },
  describe: (g, h) =>
    `group ${g.group}: attached members use different page tables (${g.attachedDevices.map((a) => `${a} → hwpt ${h.devices[a]?.attachedHwpt}`).join(', ')}); upstream allows one hwpt per group (-EINVAL): ${IMPOSSIBLE_UPSTREAM}`,
};
