import type { SequenceGap } from '../types.js';
import { defineRule } from './rule.js';

/** events missing from a host's history */
export const sequenceGap = {
  ...defineRule({
    id: 'sequence-gap',
    severity: 'warning',
    title: 'events missing from a host (sequence gap): state uncertain past it',
    harm: 'evidence is missing: any transition may hide in the lost events, so nothing after the gap can be vouched for until they arrive',
    reference: 'envelope seq; §4 (the invariants hold only over a complete history)',
    guards:
      'the projection never shows a state it cannot vouch for: missing events may hide any transition, so the events after the gap are held (the host shows its state before the gap) until the gap fills; past the hold bound, or at a topology snapshot, they are applied past it and the host is uncertain',
    opens:
      'raised by the first event after the gap (a host history starts at seq 1: a first event beyond it raises the gap before it)',
    closes:
      'closed when the last missing event arrives (the held events are then applied in seq order), or by the next topology snapshot of the host',
    transient: 'the end of the delivery: a gap that fills (a reordered delivery) closes with its last late event and is recorded as sequence-late-arrival (information)',
    impossibleUpstream: false,
  }),
  describe: (host: string, g: SequenceGap, why: string): string =>
    `events ${g.from}..${g.to} from ${host} are missing${why} (${g.to - g.from + 1} lost): later events wait, the state shown is the state before seq ${g.from}, until they arrive (or the hold bound or a topology snapshot applies the later events past them)`,
};
