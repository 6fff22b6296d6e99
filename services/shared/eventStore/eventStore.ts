import type { IommuEvent, RecordedEvent } from '../../../schemas/index.js';

/**
 * What the caller believes about a stream before appending.
 * - `'no_stream'`: the stream must not exist yet
 * - `'any'`: no check
 * - a bigint: the stream's last revision (0-based) must be exactly this
 */
export type ExpectedRevision = 'no_stream' | 'any' | bigint;

export interface AppendOptions {
  /** @defaultValue 'any' */
  readonly expectedRevision?: ExpectedRevision;
}

/**
 * What became of one event of an append:
 * - `'appended'`: written now;
 * - `'duplicate'`: an event with the same id and the same content (canonical JSON) is stored: a retry, no-op;
 * - `'conflict'`: an event with the same id but other content is stored: nothing written, see
 *   {@link AppendResult.conflicts} for which one.
 */
export type AppendOutcome = 'appended' | 'duplicate' | 'conflict';

/** the stored event that holds an id another event was sent with */
export interface StoredEventRef {
  readonly id: string;
  readonly streamName: string;
  /** its revision in its stream */
  readonly revision: bigint;
  readonly position: bigint;
  readonly host: string;
  readonly seq: number;
}

export interface AppendConflict {
  /** the input event's index in the append */
  readonly index: number;
  readonly stored: StoredEventRef;
}

export interface AppendResult {
  /** the stream's last revision after the append */
  readonly nextExpectedRevision: bigint;
  /** global position of the last event written (or of the last already stored, when all were duplicates) */
  readonly lastPosition: bigint;
  /** per input event, in input order */
  readonly outcomes: readonly AppendOutcome[];
  /** one entry per `'conflict'` outcome, in input order */
  readonly conflicts: readonly AppendConflict[];
}

/** one append of a multi-stream append ({@link EventStore.appendToStreams}) */
export interface StreamAppend {
  readonly streamName: string;
  readonly events: readonly IommuEvent[];
  readonly options?: AppendOptions;
}

/** what became of one append of a multi-stream append: its result, or the error it alone failed with */
export type StreamAppendResult = { readonly ok: true; readonly result: AppendResult } | { readonly ok: false; readonly error: unknown };

export interface ReadStreamOptions {
  /** @defaultValue 'forwards' */
  readonly direction?: 'forwards' | 'backwards';
  /** revision to start from (inclusive); 'start'/'end' by direction @defaultValue start for forwards, end for backwards */
  readonly fromRevision?: bigint | 'start' | 'end';
  /**
   * only events at or before this global position (inclusive): a fold up to a point reads the stream's range
   * in one go, and nothing past it @defaultValue no bound
   */
  readonly toPosition?: bigint;
  readonly maxCount?: number;
}

export interface ReadAllOptions {
  /** global position to start after (exclusive); 0n reads from the beginning @defaultValue 0n */
  readonly after?: bigint;
  readonly maxCount?: number;
}

/** index look-ups that must not scan the whole store */
export interface ReadByIndexOptions {
  readonly host: string;
  readonly group?: number;
  readonly device?: string;
  /** wall-clock ns range, inclusive */
  readonly fromTimeNs?: bigint;
  readonly toTimeNs?: bigint;
  /** global position to start after @defaultValue 0n */
  readonly after?: bigint;
  readonly maxCount?: number;
}

export interface SubscribeOptions {
  /** a durable, named checkpoint: a restarted subscriber resumes after the last position it stored */
  readonly subscriberName: string;
  /** where a subscriber with no stored checkpoint starts: after this global position @defaultValue 0n (everything) */
  readonly fromPosition?: bigint;
  /** called for each batch in global order; the checkpoint moves only after it resolves */
  readonly handle: (batch: readonly RecordedEvent[]) => Promise<void> | void;
  /** called once when the catch-up read reaches the head (live from then on) */
  readonly onCaughtUp?: () => void;
  /** @defaultValue 500 */
  readonly batchSize?: number;
  /**
   * called once if `handle` throws: the subscription then stops without moving its checkpoint past the failed
   * batch (a restart redelivers it), and `stop()` rejects with the same error
   */
  readonly onError?: (error: unknown) => void;
}

export interface Subscription {
  /** resolves once the subscription has stopped and its last checkpoint is stored */
  stop(): Promise<void>;
  /** the last position whose batch was handled and checkpointed */
  readonly position: () => bigint;
}

/**
 * The event-store port. Adapters: SQLite (default, embedded) and EventStoreDB/KurrentDB. Both pass the one
 * contract suite in `eventStore.features.ts`.
 *
 * Idempotency: an event whose `id` is already stored (or comes earlier in the same append) is not written again,
 * whatever the expected revision says: it is a `'duplicate'` when its canonical JSON equals the stored event's
 * (a retry), a `'conflict'` naming the stored event otherwise. Ids are compared as the catalogue normalises them
 * (see `EventIdSchema`).
 *
 * Events are values: once handed to appendToStream they are never mutated (adapters may keep and pass on the
 * objects themselves, see onAppended).
 */
export interface EventStore {
  appendToStream(streamName: string, events: readonly IommuEvent[], options?: AppendOptions): Promise<AppendResult>;
  /**
   * Several appends, to any streams, at once: each with the semantics of {@link appendToStream} (its own
   * expected revision, outcomes and conflicts; one failing fails only itself), answered in input order; the
   * appends to one stream are applied in input order. SQLite stores them as one transaction with one
   * head-reading statement however many streams they span (up to about 4,096 events; more become several); an
   * adapter without multi-stream writes (EventStoreDB) appends stream by stream ({@link appendEach}).
   */
  appendToStreams(appends: readonly StreamAppend[]): Promise<StreamAppendResult[]>;
  readStream(streamName: string, options?: ReadStreamOptions): AsyncIterable<RecordedEvent>;
  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent>;
  readByIndex(options: ReadByIndexOptions): AsyncIterable<RecordedEvent>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /**
   * the highest global position whose events are all visible to readers (no gaps below it): a reader that has
   * seen everything up to here never receives an event below it later
   */
  headPosition(): Promise<bigint>;
  /**
   * Optional, in-process: `listener` receives every event this store instance commits, in position order, right
   * after the commit: the very objects given to appendToStream (events are immutable values once appended: no
   * caller or listener may mutate them; the stored bytes are their canonical JSON, so a read returns equal values). Appends by other processes are not
   * announced: a follower still reads to catch up, and uses this only to skip re-reading what it was just told.
   * A listener that throws does not affect the append. Returns the unsubscribe function.
   */
  onAppended?(listener: (batch: readonly RecordedEvent[]) => void): () => void;
  /**
   * Optional, with onAppended: undefined when none of this instance's appends waits for its commit; else a
   * promise that resolves once the appends being written are committed and announced (or failed). A follower
   * that reads meanwhile may meet them committed and not yet announced, and decode again what it is about to
   * be handed: it waits for the announcement instead.
   */
  appendsInFlight?(): Promise<void> | undefined;
  /**
   * Optional: resolves once appends can be taken without delay (an adapter's writer started); rejects when
   * the store can no longer write (its writer failed), so a readiness check can tell.
   */
  ready?(): Promise<void>;
  close(): Promise<void>;
}

/** {@link EventStore.appendToStreams} as one appendToStream after another, for an adapter that writes per stream */
export const appendEach =
  (appendToStream: EventStore['appendToStream']) =>
  async (appends: readonly StreamAppend[]): Promise<StreamAppendResult[]> => {
    const out: StreamAppendResult[] = [];
    for (const a of appends) {
      try {
        out.push({ ok: true, result: await appendToStream(a.streamName, a.events, a.options) });
      } catch (error) {
        out.push({ ok: false, error });
      }
    }
    return out;
  };

/**
 * {@link EventStore.appendToStreams} as every appendToStream issued in the same turn, each answered on its own:
 * for an adapter that gathers a turn's appends into one write (SQLite's group commit), or a wrapper
 */
export const appendTogether =
  (appendToStream: EventStore['appendToStream']) =>
  (appends: readonly StreamAppend[]): Promise<StreamAppendResult[]> =>
    Promise.all(
      appends.map((a) =>
        appendToStream(a.streamName, a.events, a.options).then(
          (result): StreamAppendResult => ({ ok: true, result }),
          (error: unknown): StreamAppendResult => ({ ok: false, error }),
        ),
      ),
    );
