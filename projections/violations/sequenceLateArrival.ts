import { defineRule } from './rule.js';

/** missing events that arrived and filled their gap */
export const sequenceLateArrival = {
  ...defineRule({
    id: 'sequence-late-arrival',
    severity: 'info',
    title: 'missing events of a host arrived late and filled their gap',
    harm: 'information: a delivery reordered events and lost none; the state is the one in-order delivery gives',
    reference: 'envelope seq; §4',
    guards:
      'a delivery that reorders events (retries, swapped chunks) loses nothing: the events held after the gap are applied in seq order once it fills, so the state is the one in-order delivery gives',
    opens: 'recorded (opened and closed) by the event that completes the gap',
    closes:
      'closed by that same event; when the later events had already been applied past the gap (hold bound passed, or a topology snapshot), the fill is applied out of order and the host stays uncertain until the next topology snapshot',
    transient: 'information only: never a finding',
    impossibleUpstream: false,
  }),
};
