import { boundFdOf } from './hostView.js';
import { defineRule, IMPOSSIBLE_UPSTREAM, type GroupRule } from './rule.js';

/** the legacy group node and a cdev bind on one group at once */
export const legacyAndCdev: GroupRule = {
  ...defineRule({
    id: 'legacy-and-cdev',
    severity: 'critical',
    title: `group used through the legacy group node and a cdev bind at the same time (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'two access paths with separate ownership bookkeeping reach one group: the holder of one can DMA through the other\'s mappings',
    reference: '§1.4 step 4 (vfio_device_block_group -EBUSY); §1.6 vfio_group_fops_open; §4 invariant 6',
    guards: 'cdev bind is -EBUSY while /dev/vfio/N is open, and opening /dev/vfio/N is -EBUSY while a member is cdev-bound',
    opens: 'raised by the group open or cdev bind recorded as successful that made both true',
    closes: 'closed when the group fd closes or the last cdev bind ends',
    transient: 'none needed: upstream refuses whichever comes second',
    impossibleUpstream: true,
  }),
  holds: (g, v) => {
    if (g.groupFd === null) return false;
    for (const m of g.devices) if (boundFdOf(v.model, m)?.via === 'cdev') return true;
    return false;
  },
  describe: (g) => `group ${g.id}: /dev/vfio/${g.id} is open (${g.groupFd}) while a member is bound through its cdev: ${IMPOSSIBLE_UPSTREAM}`,
};
