import type { HostSequenceState, SequenceGap } from './types.js';

/** gaps kept per host; the oldest are dropped (counted) beyond it */
export const MAX_SEQUENCE_GAPS = 1000;

/**
 * What one event's `seq` means for its host, given what was recorded before it:
 * - `in-order`: the next seq (or the host's first event);
 * - `gap`: seqs `from..to` are missing before it (a new gap, keyed `keyOf(host, from, to)`);
 * - `late`: it was missing and arrived after later ones (`fill` names the gap it shrank, `filled` says the
 *   gap is now complete), or it lies before the host's first recorded seq (`fill` null: earlier history
 *   arriving late; `opened` a new gap between it and the lowest seq, when there is one);
 * - `repeat`: a seq already recorded (with another event id, or its gap was dropped by the bound).
 */
export type SequenceObservation =
  | { readonly kind: 'in-order' }
  | { readonly kind: 'gap'; readonly gap: SequenceGap }
  | { readonly kind: 'late'; readonly fill: SequenceGap | null; readonly filled: boolean; readonly opened: SequenceGap | null }
  | { readonly kind: 'repeat' };

const IN_ORDER: SequenceObservation = Object.freeze({ kind: 'in-order' });
const REPEAT: SequenceObservation = Object.freeze({ kind: 'repeat' });

export const newSequenceState = (): HostSequenceState => ({ lowestSeq: null, gaps: [], gapsDropped: 0, gapsOpened: 0, outOfOrder: 0 });

const pushGap = (s: HostSequenceState, gap: SequenceGap, at: number): void => {
  s.gaps.splice(at, 0, gap);
  s.gapsOpened++;
  if (s.gaps.length > MAX_SEQUENCE_GAPS) {
    s.gaps.shift();
    s.gapsDropped++;
  }
};

/** index of the gap holding `seq` (gaps are disjoint and ascending), or -1 */
const findGap = (gaps: readonly SequenceGap[], seq: number): number => {
  let lo = 0;
  let hi = gaps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const g = gaps[mid]!;
    if (seq < g.from) hi = mid - 1;
    else if (seq > g.to) lo = mid + 1;
    else return mid;
  }
  return -1;
};

/**
 * Judges `seq` against the host's sequence state and updates it (mutates `s`; the caller sets its own
 * last seq to `max(lastSeq, seq)`). `keyOf` names a gap this event opens (called only then). One definition for the
 * projection (the facts) and for ingest answers (the warnings). Cost: O(log gaps) per event.
 */
export const observeSequence = (
  s: HostSequenceState,
  lastSeq: number | null,
  seq: number,
  host: string,
  keyOf: (host: string, from: number, to: number) => string,
): SequenceObservation => {
  if (lastSeq === null || s.lowestSeq === null) {
    s.lowestSeq = seq;
    return IN_ORDER;
  }
  if (seq === lastSeq + 1) return IN_ORDER;
  if (seq > lastSeq + 1) {
    const gap = { from: lastSeq + 1, to: seq - 1, key: keyOf(host, lastSeq + 1, seq - 1) };
    pushGap(s, gap, s.gaps.length);
    return { kind: 'gap', gap };
  }
  if (seq < s.lowestSeq) {
    // earlier history arriving after later history: what lies between it and the lowest seq is now missing
    s.outOfOrder++;
    const lowest = s.lowestSeq;
    s.lowestSeq = seq;
    if (seq + 1 > lowest - 1) return { kind: 'late', fill: null, filled: false, opened: null };
    const opened = { from: seq + 1, to: lowest - 1, key: keyOf(host, seq + 1, lowest - 1) };
    pushGap(s, opened, 0);
    return { kind: 'late', fill: null, filled: false, opened };
  }
  const i = findGap(s.gaps, seq);
  if (i < 0) return REPEAT;
  s.outOfOrder++;
  const g = s.gaps[i]!;
  // late events mostly arrive in order, filling a gap from its front: shrink it in place
  if (seq === g.from && seq < g.to) s.gaps[i] = { from: seq + 1, to: g.to, key: g.key };
  else if (seq === g.to && seq > g.from) s.gaps[i] = { from: g.from, to: seq - 1, key: g.key };
  else if (seq > g.from) s.gaps.splice(i, 1, { from: g.from, to: seq - 1, key: g.key }, { from: seq + 1, to: g.to, key: g.key });
  else s.gaps.splice(i, 1);
  // pieces of one gap stay next to each other: the gap is complete when no neighbour carries its key
  const filled = g.from === g.to && s.gaps[i - 1]?.key !== g.key && s.gaps[i]?.key !== g.key;
  return { kind: 'late', fill: g, filled, opened: null };
};
