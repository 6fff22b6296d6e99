import { MAX_SEQUENCE_GAPS, newSequenceState, observeSequence, type HostSequenceState, type HostState } from '../../projections/index.js';

/**
 * Per-host sequence facts: the highest `seq` recorded and the holes below it. Gaps and reordering are
 * reported (warnings, metrics, the /sequence query); nothing is papered over. A late event that fills a
 * hole closes that gap.
 *
 * The facts (`report`, `isKnown`) come from one place: the live projection's host state, folded from the
 * store's events in store order, whoever appended them (this process, a Kafka ingester). `observe` judges
 * an event this process just stored, for the warnings of its ingest answer, with the same function
 * (projections' `observeSequence`) on what this process delivered.
 */
export interface SequenceReport {
  readonly host: string;
  readonly maxSeq: number | null;
  /** inclusive ranges of missing sequence numbers, oldest first (at most {@link MAX_GAPS_PER_HOST}) */
  readonly gaps: readonly (readonly [number, number])[];
  readonly gapsOpened: number;
  readonly outOfOrder: number;
}

export const MAX_GAPS_PER_HOST = MAX_SEQUENCE_GAPS;

export type SequenceObservation = { kind: 'in-order' } | { kind: 'gap'; missingFrom: number; missingTo: number } | { kind: 'late'; filledGap: boolean } | { kind: 'repeat' };

interface HostSeq {
  maxSeq: number | null;
  sequence: HostSequenceState;
}

export interface SequenceTrackerOptions {
  /** the host's state as folded from the store (the live projection): the source of `report` and `isKnown` */
  readonly facts?: (host: string) => HostState | undefined;
}

const gapKey = (): string => '';

export const createSequenceTracker = (options: SequenceTrackerOptions = {}) => {
  const hosts = new Map<string, HostSeq>();
  const get = (host: string): HostSeq => {
    let h = hosts.get(host);
    if (!h) hosts.set(host, (h = { maxSeq: null, sequence: newSequenceState() }));
    return h;
  };

  /** what an accepted event's seq means for its host, as this process delivered it */
  const observe = (host: string, seq: number): SequenceObservation => {
    const h = get(host);
    const last = h.maxSeq;
    const seen = observeSequence(h.sequence, last, seq, host, gapKey);
    if (last === null || seq > last) h.maxSeq = seq;
    switch (seen.kind) {
      case 'in-order':
      case 'repeat':
        return seen;
      case 'gap':
        return { kind: 'gap', missingFrom: seen.gap.from, missingTo: seen.gap.to };
      case 'late':
        return { kind: 'late', filledGap: seen.fill !== null };
      default: {
        const _exhaustive: never = seen;
        return _exhaustive;
      }
    }
  };

  /** seed a host from its stored head after a restart, so a restart is not mistaken for a gap */
  const seed = (host: string, maxSeq: number): void => {
    const h = get(host);
    if (h.maxSeq === null || maxSeq > h.maxSeq) h.maxSeq = maxSeq;
    h.sequence.lowestSeq ??= maxSeq;
  };

  const report = (host: string): SequenceReport => {
    const folded = options.facts?.(host);
    const h = folded ? { maxSeq: folded.lastSeq, sequence: folded.sequence } : get(host);
    const s = h.sequence;
    return { host, maxSeq: h.maxSeq, gaps: s.gaps.map((g) => [g.from, g.to] as const), gapsOpened: s.gapsOpened, outOfOrder: s.outOfOrder };
  };

  return { observe, seed, report, isKnown: (host: string) => options.facts?.(host) !== undefined || hosts.has(host) };
};
export type SequenceTracker = ReturnType<typeof createSequenceTracker>;
