import { defineRule } from './rule.js';

/** a seq recorded twice */
export const sequenceOutOfOrder = {
  ...defineRule({
    id: 'sequence-out-of-order',
    severity: 'warning',
    title: 'event from a host repeated a sequence number that was not missing: state uncertain from here',
    harm: 'evidence is contradictory: two events claim one place in the host\'s kernel order, so the state after it cannot be vouched for',
    reference: 'envelope seq; §4',
    guards: 'per-host order is the kernel order; an event whose seq was already recorded cannot be placed in it',
    opens: 'raised by the repeated seq',
    closes: 'closed by the next topology snapshot of the host',
    transient: 'none needed: a retried event with its own id is a duplicate and never reaches the fold; a seq reused by another event is the finding',
    impossibleUpstream: false,
  }),
};
