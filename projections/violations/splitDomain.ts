import { boundFdOf, type HostView } from './hostView.js';
import { defineRule, IMPOSSIBLE_UPSTREAM, type GroupRule } from './rule.js';

/** the hwpt a device is in `igroup->device_list` for: its bound fd's */
const attachedHwptOf = (v: HostView, device: string): number | null => boundFdOf(v.model, device)?.hwpt ?? null;

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
  holds: (g, v) => {
    if (g.attached.length < 2) return false;
    const first = attachedHwptOf(v, g.attached[0]!);
    for (let i = 1; i < g.attached.length; i++) if (attachedHwptOf(v, g.attached[i]!) !== first) return true;
    return false;
  },
  describe: (g, v) =>
    `group ${g.id}: attached members use different page tables (${g.attached.map((a) => `${a} → hwpt ${attachedHwptOf(v, a)}`).join(', ')}); upstream allows one hwpt per group (-EINVAL): ${IMPOSSIBLE_UPSTREAM}`,
};
