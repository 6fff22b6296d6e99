import { newSequenceState, observeSequence } from '../../../projections/index.js';
import type { HostSequenceState } from '../../../projections/index.js';

/** seqs missing from a host's history in a file, with the lines around the hole */
export interface MissingSeqs {
  readonly host: string;
  readonly from: number;
  readonly to: number;
  /** the line of the event before the hole and of the one after it, in the file */
  readonly afterLine: number | undefined;
  readonly beforeLine: number;
}

/**
 * Per-host sequence check of a history as it is read, by the projection's own rule (observeSequence): a seq
 * that never came is a removed or lost event. Gaps filled later in the file are not reported.
 */
export const createSequenceCheck = () => {
  const hosts = new Map<string, { state: HostSequenceState; lastSeq: number | null; lastLine: number | undefined; lines: Map<string, { after: number | undefined; before: number }> }>();
  const observe = (event: { readonly host: string; readonly seq: number }, line: number): void => {
    let h = hosts.get(event.host);
    if (!h) hosts.set(event.host, (h = { state: newSequenceState(), lastSeq: null, lastLine: undefined, lines: new Map() }));
    const o = observeSequence(h.state, h.lastSeq, event.seq, event.host, (host, from, to) => `${host}|${from}|${to}`);
    if (o.kind === 'gap') h.lines.set(o.gap.key, { after: h.lastLine, before: line });
    if (h.lastSeq === null || event.seq > h.lastSeq) {
      h.lastSeq = event.seq;
      h.lastLine = line;
    }
  };
  const missing = (): MissingSeqs[] =>
    [...hosts].flatMap(([host, h]) =>
      h.state.gaps.map((g) => {
        const at = h.lines.get(g.key);
        return { host, from: g.from, to: g.to, afterLine: at?.after, beforeLine: at?.before ?? 0 };
      }),
    );
  return { observe, missing };
};

/** "host lab-s1: seq 5 missing (between line 6 and line 7)" */
export const missingSeqsText = (m: MissingSeqs): string =>
  `host ${m.host}: ${m.from === m.to ? `seq ${m.from}` : `seqs ${m.from}–${m.to}`} missing (${m.afterLine !== undefined ? `between line ${m.afterLine} and line ${m.beforeLine}` : `before line ${m.beforeLine}`}): an event removed or lost`;
