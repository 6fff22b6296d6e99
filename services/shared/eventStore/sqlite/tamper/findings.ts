/** what `verify` can find, store or bundle alike */
export type FindingKind = 'modified' | 'removed' | 'reordered' | 'inserted' | 'duplicated' | 'invalid' | 'seal' | 'unsigned';

export interface VerifyFinding {
  readonly kind: FindingKind;
  readonly stream?: string;
  /** stream revision where the chain breaks */
  readonly revision?: bigint;
  /** global position of the offending row (store), when it has one */
  readonly position?: bigint;
  /** the event id named by the offending row or line */
  readonly eventId?: string | undefined;
  /** 1-based line in events.jsonl (bundle) */
  readonly line?: number;
  readonly message: string;
}

export interface VerifyReport {
  /** true when no finding: every chain is intact and matches every signed checkpoint */
  readonly ok: boolean;
  readonly events: number;
  readonly streams: number;
  /** events covered by a signed checkpoint */
  readonly sealedEvents: number;
  readonly seals: number;
  /** the store's transparency log: leaves, leaves under the latest valid signed checkpoint, checkpoints held */
  readonly log?: { readonly size: number; readonly signedSize: number; readonly checkpoints: number };
  /** the finding with the lowest position/line first; at most one per stream (checking a stream stops at its first break) */
  readonly findings: readonly VerifyFinding[];
  /** not failures, but limits of what could be proved (unsealed tail, key shipped with the bundle, ...) */
  readonly warnings: readonly string[];
}

/** the lookahead used to tell a reordered or inserted event from a modified one */
export const LOOKAHEAD = 64;

export const formatFinding = (f: VerifyFinding): string => {
  const where = [
    f.stream !== undefined ? `stream ${f.stream}` : undefined,
    f.revision !== undefined ? `revision ${f.revision}` : undefined,
    f.position !== undefined ? `position ${f.position}` : undefined,
    f.line !== undefined ? `line ${f.line}` : undefined,
    f.eventId !== undefined ? `event ${f.eventId}` : undefined,
  ].filter((x) => x !== undefined);
  return `${f.kind.toUpperCase()}: ${f.message}${where.length ? ` (${where.join(', ')})` : ''}`;
};
