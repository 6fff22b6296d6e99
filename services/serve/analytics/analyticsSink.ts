import type { RecordedEvent } from '../../../schemas/index.js';
import type { QuarantinedRow } from './rows.js';

/** where an event sits: enough to order it, find it and show when it happened */
export interface EventPoint {
  readonly eventId: string;
  readonly globalPosition: bigint;
  /** wall-clock ns since the epoch */
  readonly timeNs: bigint;
}

/** a violation as the analytics tables keep it: one record per version (open, then closed) */
export interface ViolationRecord {
  /** stable across versions of the same violation */
  readonly key: string;
  readonly host: string;
  readonly group?: number;
  readonly device?: string;
  readonly rule: string;
  readonly severity: string;
  readonly message: string;
  readonly opened: EventPoint;
  readonly closed?: EventPoint;
  /** ids of the events behind the violation (the opening and closing ones included) */
  readonly evidence: readonly string[];
  /** the global position of the event that produced this version; the highest wins */
  readonly version: bigint;
}

/** a group's state right after an event changed it */
export interface GroupStateChange {
  readonly host: string;
  readonly group: number;
  readonly at: EventPoint;
  readonly eventType: string;
  /** e.g. 'kernel-idle', 'kernel-dma', 'user-blocked', 'user-attached' */
  readonly state: string;
  readonly owner: string;
  readonly domain: string;
  readonly ownerCount: number;
  readonly devices: readonly string[];
  /**
   * anything else the projection knows: JSON text, or the JSON object itself (sent as is, its text is what the
   * column keeps; rows.ts `isJsonObject`), which must not change after it is handed over
   */
  readonly detail: string | Readonly<Record<string, unknown>>;
}

/** one host's compliance over one UTC day on which it had events */
export interface DailyCompliance {
  readonly host: string;
  /** YYYY-MM-DD (UTC) */
  readonly day: string;
  readonly opened: number;
  readonly closed: number;
  readonly maxOpen: number;
  readonly openAtEnd: number;
  readonly events: bigint;
  /**
   * the day's first and last event time (ns since the epoch), what the dashboard reads instead of the events;
   * absent on a row written before they were kept (the queries then read the events)
   */
  readonly firstNs?: bigint;
  readonly lastNs?: bigint;
  /** the day's last topology snapshot (by time): when, and whether it found an IOMMU; absent: none that day */
  readonly snapshot?: { readonly timeNs: bigint; readonly iommu: boolean };
  /**
   * true: whether the day had a snapshot is not known (a row completed from one written before the rows kept it);
   * the dashboard's compliance then reads the events
   */
  readonly factsUnknown?: true;
  /** last global position folded into this row; the highest wins */
  readonly version: bigint;
}

/** everything one store batch produced; written as a unit, then the checkpoint moves */
export interface SinkBatch {
  readonly events: readonly RecordedEvent[];
  /** per event, in the same order: the group its device belonged to at that moment, when the event names no group */
  readonly eventGroups?: readonly (number | null)[];
  readonly violations: readonly ViolationRecord[];
  readonly groupStates: readonly GroupStateChange[];
  readonly compliance: readonly DailyCompliance[];
  readonly checkpoint: { readonly subscriber: string; readonly position: bigint };
}

/**
 * The analytics sink port. Adapters: ClickHouse (chdb embedded or a server, `clickhouseAnalyticsSink.ts`).
 *
 * Idempotency: writing the same rows again (a batch replayed after a crash, possibly cut at other
 * boundaries) leaves every table as if it was written once. The checkpoint is written last, so a crash
 * mid-batch resumes from the previous checkpoint and rewrites the batch.
 */
/** what a write did besides writing: the rows it set aside in quarantine (empty when all were written) */
export interface SinkWriteResult {
  readonly quarantined: readonly QuarantinedRow[];
}

export interface AnalyticsSink {
  /**
   * writes a batch, the checkpoint last. A row that cannot be written is quarantined (with the reason) and
   * reported, never silently dropped; a failure of the engine itself rejects the whole write (retry it)
   */
  write(batch: SinkBatch): Promise<SinkWriteResult>;
  /** the last checkpointed position of a subscriber, 0n when it never wrote */
  readCheckpoint(subscriber: string): Promise<bigint>;
  /**
   * Optional: the current row of each host/day asked (absent when it has none): what a projector resumed at its
   * checkpoint adds to the days it goes on counting, instead of folding the whole history again
   */
  readCompliance?(keys: readonly { readonly host: string; readonly day: string }[]): Promise<DailyCompliance[]>;
  close(): Promise<void>;
}
