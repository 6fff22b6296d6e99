/**
 * Per-host sequence bookkeeping at ingest: the highest `seq` seen and the holes below it. Gaps and
 * reordering are reported (warnings, metrics, the /sequence query); nothing is papered over. A late event
 * that fills a hole closes that gap.
 */
export interface SequenceReport {
  readonly host: string;
  readonly maxSeq: number | null;
  /** inclusive ranges of missing sequence numbers, oldest first (at most {@link MAX_GAPS_PER_HOST}) */
  readonly gaps: readonly (readonly [number, number])[];
  readonly gapsOpened: number;
  readonly outOfOrder: number;
}

export const MAX_GAPS_PER_HOST = 1000;

export type SequenceObservation = { kind: 'in-order' } | { kind: 'gap'; missingFrom: number; missingTo: number } | { kind: 'late'; filledGap: boolean } | { kind: 'repeat' };

interface HostSeq {
  maxSeq: number | null;
  gaps: [number, number][];
  gapsOpened: number;
  outOfOrder: number;
}

export const createSequenceTracker = () => {
  const hosts = new Map<string, HostSeq>();
  const get = (host: string): HostSeq => {
    let h = hosts.get(host);
    if (!h) hosts.set(host, (h = { maxSeq: null, gaps: [], gapsOpened: 0, outOfOrder: 0 }));
    return h;
  };

  /** what an accepted event's seq means for its host */
  const observe = (host: string, seq: number): SequenceObservation => {
    const h = get(host);
    if (h.maxSeq === null || seq === h.maxSeq + 1) {
      h.maxSeq = seq;
      return { kind: 'in-order' };
    }
    if (seq > h.maxSeq + 1) {
      const gap: [number, number] = [h.maxSeq + 1, seq - 1];
      h.gaps.push(gap);
      if (h.gaps.length > MAX_GAPS_PER_HOST) h.gaps.shift();
      h.gapsOpened += 1;
      h.maxSeq = seq;
      return { kind: 'gap', missingFrom: gap[0], missingTo: gap[1] };
    }
    if (seq === h.maxSeq) return { kind: 'repeat' };
    h.outOfOrder += 1;
    const i = h.gaps.findIndex(([a, b]) => seq >= a && seq <= b);
    if (i < 0) return { kind: 'late', filledGap: false };
    const [a, b] = h.gaps[i]!;
    const rest: [number, number][] = [];
    if (a <= seq - 1) rest.push([a, seq - 1]);
    if (seq + 1 <= b) rest.push([seq + 1, b]);
    h.gaps.splice(i, 1, ...rest);
    return { kind: 'late', filledGap: true };
  };

  /** seed a host from its stored head after a restart, so a restart is not mistaken for a gap */
  const seed = (host: string, maxSeq: number): void => {
    const h = get(host);
    if (h.maxSeq === null || maxSeq > h.maxSeq) h.maxSeq = maxSeq;
  };

  const report = (host: string): SequenceReport => {
    const h = get(host);
    return { host, maxSeq: h.maxSeq, gaps: h.gaps.map(([a, b]) => [a, b] as const), gapsOpened: h.gapsOpened, outOfOrder: h.outOfOrder };
  };

  return { observe, seed, report, isKnown: (host: string) => hosts.has(host) };
};
export type SequenceTracker = ReturnType<typeof createSequenceTracker>;
