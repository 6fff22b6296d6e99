import type { RecordedEvent } from '../../../schemas/index.js';
import { backoffDelay } from '../../shared/backoff.js';
import type { EventStore, Subscription } from '../../shared/eventStore/eventStore.js';
import type { FleetState } from '../../../projections/index.js';
import type { FoldFollower, FoldWatcher } from '../query/liveProjection.js';
import type { AnalyticsSink, SinkBatch } from './analyticsSink.js';
import { createFleetAnalyzer, type AnalyzerOutput, type FleetAnalyzer, type FleetFold } from './fleetAnalyzer.js';
import type { QuarantinedRow } from './rows.js';

/** the subset of a pino logger the projector uses */
export interface ProjectorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
const silentLogger: ProjectorLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** what the projector reports as it goes (metrics hang off these) */
export interface AnalyticsProjectorHooks {
  /** a sink write (or checkpoint read, or the subscription) failed; it is retried after `delayMs` */
  readonly onFailure?: (error: unknown, attempt: number, delayMs: number) => void;
  /** writing works again after `attempts` failures */
  readonly onRecovered?: (attempts: number) => void;
  readonly onQuarantined?: (rows: readonly QuarantinedRow[]) => void;
}

export interface AnalyticsProjectorDeps {
  readonly store: EventStore;
  readonly sink: AnalyticsSink;
  /** the fleet projection (`createFleetProjection()` from projections/) */
  readonly fold: FleetFold;
  /**
   * the service's live projection: once caught up with it, the projector takes each event as the live fold
   * folded it (one fold per event in `serve`) instead of folding it again from its own store subscription
   */
  readonly live?: LiveFold;
  /** @defaultValue silent */
  readonly logger?: ProjectorLogger;
  readonly hooks?: AnalyticsProjectorHooks;
}

/** the part of the live projection the projector follows (structurally `LiveProjection`) */
export interface LiveFold {
  position(): bigint;
  follow(follower: FoldFollower, before?: FoldWatcher): () => void;
  /** a host's state at a position (its snapshot and a short fold): what a projector resumed at its checkpoint goes on from */
  hostStateAt(host: string, at: { readonly position: bigint }): Promise<FleetState>;
}

/**
 * Events per store batch, one sink write each. Every write is five inserts (four tables and the
 * checkpoint) at a fixed ~3.5 ms each on chdb plus a part per table: 10,000 keeps that under ~10%.
 */
export const DEFAULT_BATCH_SIZE = 10_000;

/**
 * Host states the analyzer keeps while following the live projection (~48 KB each, mostly the projection's host
 * state: ~0.5 GB). A batch's hosts all stay until it is folded; the rest are seeded again from the live projection.
 */
export const DEFAULT_MAX_RESIDENT_HOSTS = 10_000;

/** how long rows followed from the live projection wait for more before a write smaller than a batch */
const FLUSH_MS = 200;

export interface AnalyticsProjectorOptions {
  /** durable checkpoint name, in the store and in the sink @defaultValue 'analytics' */
  readonly subscriberName?: string;
  /** events per store batch (one sink write each) @defaultValue 10_000 */
  readonly batchSize?: number;
  /** backoff between attempts after a failure (exponential, full jitter) @defaultValue 500 ms to 30 s */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number; readonly random?: () => number };
  /**
   * Host states kept in memory while following the live projection (least recently used let go of after a batch,
   * seeded again from the live projection when next met) @defaultValue {@link DEFAULT_MAX_RESIDENT_HOSTS}
   */
  readonly maxResidentHosts?: number;
}

/**
 * `ok`: writing (or idle, caught up); `retrying`: a write or checkpoint read failed and is tried again after a
 * backoff; `failed`: the subscription itself failed and is restarted after a backoff; `stopped`: by stop()
 */
export type AnalyticsProjectorState = 'starting' | 'ok' | 'retrying' | 'failed' | 'stopped';

export interface AnalyticsProjectorStatus {
  readonly state: AnalyticsProjectorState;
  /** the last position written to the sink */
  readonly position: bigint;
  /** failures since the last success */
  readonly consecutiveFailures: number;
  readonly lastError?: string;
  /** ms since the epoch: the first failure of the current run of failures */
  readonly failingSinceMs?: number;
  readonly nextAttemptAtMs?: number;
  /** rows set aside in `sink_quarantine` since start */
  readonly quarantinedRows: number;
  readonly lastQuarantineReason?: string;
  /** host states the analyzer holds in memory */
  readonly residentHosts: number;
}

export interface AnalyticsProjector {
  /** rebuilds the fold up to the sink's checkpoint, then subscribes; resolves once subscribed (retrying the checkpoint read until it works) */
  start(): Promise<void>;
  /** resolves when the subscription has reached the store's head once; rejects if the subscription failed first */
  caughtUp(): Promise<void>;
  /** the error that stopped the subscription (it is restarted after a backoff), if any */
  failure(): unknown;
  /** the last position written to the sink */
  position(): bigint;
  status(): AnalyticsProjectorStatus;
  /** stops the subscription after its current batch (or its current wait between attempts); idempotent */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** a resumed projector met sink rows past its checkpoint: it starts over with a fold from the start */
class ResumeUnsafeError extends Error {
  override readonly name = 'ResumeUnsafeError';
}

/** thrown out of a wait between attempts when the projector stops */
class ProjectorStoppedError extends Error {
  override readonly name = 'ProjectorStoppedError';
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 500);

/**
 * The ClickHouse sink as a checkpointed, resumable subscriber of the event store.
 *
 * Two checkpoints exist: the store's (where the subscription resumes) and the sink's (the last position
 * whose rows are all written; written last in each batch). On start the pure fold is rebuilt by reading
 * the store up to the sink's checkpoint without writing, so a restart continues with the exact state.
 * Events the subscription hands over again (store checkpoint behind the sink's, after a crash between the
 * sink write and the store checkpoint) are skipped by position; rows rewritten for any other reason
 * collapse in the ReplacingMergeTree tables. If the store's checkpoint is ahead of the sink's (the
 * analytics data was lost or reset), the gap is read back from the store before the batch.
 *
 * It never stops by itself: a failed write (engine down, disk full) is retried with the same rows after a
 * backoff until the engine takes it, and a failed subscription is restarted from the sink's checkpoint.
 * Meanwhile {@link AnalyticsProjector.status} says so (readiness, metrics, dashboard) and every failure is
 * logged. Rows the sink quarantines are logged and counted.
 */
export const createAnalyticsProjector = (deps: AnalyticsProjectorDeps, options: AnalyticsProjectorOptions = {}): AnalyticsProjector => {
  const subscriber = options.subscriberName ?? 'analytics';
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const initialMs = options.retry?.initialMs ?? 500;
  const maxMs = options.retry?.maxMs ?? 30_000;
  const random = options.retry?.random ?? Math.random;
  const log = deps.logger ?? silentLogger;
  const hooks = deps.hooks ?? {};
  // bounded only where a host let go of can be seeded again: from the live projection
  const bound = deps.live !== undefined ? { maxResidentHosts: options.maxResidentHosts ?? DEFAULT_MAX_RESIDENT_HOSTS } : {};
  let analyzer: FleetAnalyzer = createFleetAnalyzer(deps.fold, bound);
  // the checkpoint the analyzer resumed at (undefined: it folded from the start); noResume: never again in this process
  let resumedAt: bigint | undefined;
  let noResume = false;
  let written = 0n;
  let subscription: Subscription | undefined;
  let opening: Promise<void> | undefined;
  let started = false;
  let stopping = false;
  let failure: unknown;
  let status: Omit<AnalyticsProjectorStatus, 'position' | 'residentHosts'> = { state: 'stopped', consecutiveFailures: 0, quarantinedRows: 0 };
  let resolveCaughtUp: () => void = () => {};
  let rejectCaughtUp: (e: unknown) => void = () => {};
  const caughtUp = new Promise<void>((resolve, reject) => {
    resolveCaughtUp = resolve;
    rejectCaughtUp = reject;
  });
  // a failure before anyone awaits caughtUp() must not become an unhandled rejection
  caughtUp.catch(() => {});

  // waits between attempts; stop() cuts them short
  const sleepers = new Set<() => void>();
  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      }
      sleepers.add(done);
    });

  const noteFailure = (state: 'retrying' | 'failed', error: unknown, what: string): number => {
    const attempt = status.consecutiveFailures + 1;
    const delayMs = backoffDelay(attempt, initialMs, maxMs, random);
    const now = Date.now();
    status = { ...status, state, consecutiveFailures: attempt, lastError: `${what}: ${messageOf(error)}`, failingSinceMs: status.failingSinceMs ?? now, nextAttemptAtMs: now + delayMs };
    log.error({ err: error, what, attempt, delayMs, position: written.toString() }, `analytics sink: ${what} failed; next attempt in ${delayMs} ms`);
    hooks.onFailure?.(error, attempt, delayMs);
    return delayMs;
  };

  const noteSuccess = (): void => {
    if (status.consecutiveFailures > 0) {
      log.info({ attempts: status.consecutiveFailures, failingSinceMs: status.failingSinceMs }, 'analytics sink: writing again');
      hooks.onRecovered?.(status.consecutiveFailures);
    }
    const { lastError: _e, failingSinceMs: _f, nextAttemptAtMs: _n, ...rest } = status;
    status = { ...rest, state: 'ok', consecutiveFailures: 0 };
  };

  // the same operation again after each failure, with backoff, until it works or the projector stops
  const persist = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
    for (;;) {
      if (stopping) throw new ProjectorStoppedError('analytics projector stopped');
      try {
        const value = await op();
        noteSuccess();
        return value;
      } catch (error) {
        if (stopping) throw error;
        await pause(noteFailure('retrying', error, what));
      }
    }
  };

  // the sink write in flight: the next batch read from the store is folded while it runs (the fold and the
  // engine's insert overlap). At most one: each write starts once the one before it ended, so the checkpoints
  // land in order; a failure of it is thrown to whoever waits for it next
  let inFlight: Promise<void> | undefined;
  const settle = async (): Promise<void> => {
    const write = inFlight;
    inFlight = undefined;
    await write;
  };

  const writeBatch = async (batch: readonly RecordedEvent[]): Promise<void> => {
    const last = batch[batch.length - 1];
    if (last === undefined) return;
    // resumed, or let go of: each host met starts from its state at the analyzer's position (it had no event since)
    if (deps.live !== undefined) {
      const following = analyzer;
      for (const host of new Set(batch.filter((r) => r.globalPosition > following.position()).map((r) => r.event.host))) {
        if (following.needsSeed(host)) following.seed(host, await deps.live.hostStateAt(host, { position: following.position() }));
      }
    }
    // folded once: a retry sends these same rows again
    const out = analyzer.apply(batch);
    if (out.events.length === 0 && last.globalPosition <= written) return;
    await writeRows(out, analyzer.position(), true);
  };

  /**
   * Writes the rows of one output. `overlap`: returns once the write has started (after the one in flight ended),
   * so the caller folds its next batch meanwhile; else returns once it is written.
   */
  const writeRows = async (output: AnalyzerOutput, position: bigint, overlap = false): Promise<void> => {
    let out = output;
    // resumed: days begun before the checkpoint count on from the sink's rows of them
    const asked = analyzer.partialDays();
    if (asked.length > 0 && deps.sink.readCompliance !== undefined) {
      // a day let go of may have its last row in the write in flight: it lands before the day's row is read
      await settle();
      const readCompliance = deps.sink.readCompliance.bind(deps.sink);
      const bases = await persist('reading daily compliance', () => readCompliance(asked));
      // a row written past the point a day became partial (a crash between the tables and the checkpoint) already
      // counts some of the events counted since: resumed, only a fold from the start gives the day right then
      const since = new Map(asked.map((d) => [`${d.host}/${d.day}`, d.since]));
      const overlapping = bases.filter((b) => b.version > (since.get(`${b.host}/${b.day}`) ?? b.version));
      if (overlapping.length > 0 && resumedAt !== undefined) {
        noResume = true;
        throw new ResumeUnsafeError(`analytics sink: daily rows past the checkpoint (${resumedAt}) were found; folding again from the start`);
      }
      // folded from the start, a day let go of and met again after such a crash: its counts may include those events twice
      if (overlapping.length > 0) log.warn({ days: overlapping.slice(0, 5).map((b) => `${b.host}/${b.day}`) }, 'analytics sink: a late event met a day whose row was written past the checkpoint; its counts may be off');
      out = { ...out, compliance: analyzer.completeDays(asked, bases, out.compliance) };
    }
    const sinkBatch: SinkBatch = { ...out, checkpoint: { subscriber, position } };
    await settle();
    const write = commit(sinkBatch, position);
    if (!overlap) return write;
    // waited for by the next write, the caught-up signal or stop(); never an unhandled rejection meanwhile
    write.catch(() => {});
    inFlight = write;
  };

  const commit = async (sinkBatch: SinkBatch, position: bigint): Promise<void> => {
    const result = await persist('writing a batch', () => deps.sink.write(sinkBatch));
    if (result.quarantined.length > 0) {
      const reason = result.quarantined[0]?.reason ?? '';
      status = { ...status, quarantinedRows: status.quarantinedRows + result.quarantined.length, lastQuarantineReason: reason };
      log.error(
        { rows: result.quarantined.length, first: result.quarantined.slice(0, 5).map((q) => ({ table: q.table, key: q.key, position: q.position.toString(), reason: q.reason })) },
        `analytics sink: ${result.quarantined.length} row(s) could not be written and went to sink_quarantine: ${reason}`,
      );
      hooks.onQuarantined?.(result.quarantined);
    }
    written = position;
  };

  // --- following the live projection: its fold's results become rows, written as the sink takes them ---
  let unfollow: (() => void) | undefined;
  let flushing: Promise<void> | undefined;
  let flushQueued = false;
  /** observed and not yet written beyond this, the projector lets go of the live projection (the sink is failing) */
  const maxPending = batchSize * 5;

  const flush = (): void => {
    flushQueued = false;
    if (flushing || unfollow === undefined) return;
    const following = analyzer;
    flushing = (async () => {
      // what arrives during a write goes in the next one (a slow sink gets larger batches)
      while (!stopping && following === analyzer && analyzer.pending() > 0) {
        const out = analyzer.drain();
        await writeRows(out, out.events[out.events.length - 1]!.globalPosition);
      }
    })()
      .catch((error: unknown) => {
        if (error instanceof ResumeUnsafeError && !stopping) {
          log.warn({ position: written.toString() }, error.message);
          unfollow?.();
          unfollow = undefined;
          opening = reopen();
          return;
        }
        if (!(error instanceof ProjectorStoppedError)) log.error({ err: error }, 'analytics sink: writing followed rows failed');
      })
      .finally(() => {
        flushing = undefined;
        if (!stopping && following === analyzer && analyzer.pending() > 0) scheduleFlush();
      });
  };
  // a write per batch, not per ingest request: rows gather up to a batch, or for FLUSH_MS, before they go
  let flushTimer: NodeJS.Timeout | undefined;
  const scheduleFlush = (): void => {
    if (analyzer.pending() >= batchSize) {
      clearTimeout(flushTimer);
      flushTimer = undefined;
      if (!flushQueued) {
        flushQueued = true;
        setImmediate(flush);
      }
      return;
    }
    if (flushTimer !== undefined || flushQueued) return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      flush();
    }, FLUSH_MS);
    flushTimer.unref();
  };

  /**
   * Reads the store with this projector's own fold until it reaches the live projection, then takes each event
   * from the live fold. Too much waiting for a failing sink: it lets go, and once the sink writes again starts
   * over from the sink's checkpoint (the store has every event; nothing is lost).
   */
  const followLive = async (live: LiveFold): Promise<void> => {
    for (let target = live.position(); analyzer.position() < target; target = live.position()) {
      await backfill(target + 1n);
      if (stopping) return;
    }
    // no wait between the check above and this: every event the live fold folds from here on is followed
    const following = analyzer;
    const seed: FoldWatcher = (r, before) => {
      if (following === analyzer && following.needsSeed(r.event.host)) following.seed(r.event.host, before);
    };
    const release = live.follow((r, state, opened, closed, changed) => {
      if (following !== analyzer) return;
      analyzer.observe(r, state, opened, closed, changed);
      if (analyzer.pending() <= maxPending) return scheduleFlush();
      release();
      unfollow = undefined;
      log.warn({ pending: analyzer.pending(), position: written.toString() }, 'analytics sink: too far behind the live projection; it starts over from its checkpoint once it writes again');
      void (flushing ?? Promise.resolve()).then(() => {
        if (!stopping) opening = reopen();
      });
    }, seed);
    unfollow = release;
    resolveCaughtUp();
  };

  // reads (after, upTo] from the store in batches, writing each
  const backfill = async (upTo: bigint): Promise<void> => {
    let batch: RecordedEvent[] = [];
    for await (const r of deps.store.readAll({ after: analyzer.position() })) {
      if (r.globalPosition >= upTo) break;
      batch.push(r);
      if (batch.length >= batchSize) {
        await writeBatch(batch);
        batch = [];
      }
    }
    await writeBatch(batch);
    await settle();
  };

  // rebuilds the fold from the store up to the sink's checkpoint and subscribes; on a subscription failure,
  // does it all again after a backoff (a fresh fold: the failed one may be half way through a batch)
  const open = async (): Promise<void> => {
    // a write left in flight by a failed subscription ends (or fails) before the fold starts again
    await settle().catch(() => {});
    analyzer = createFleetAnalyzer(deps.fold, bound);
    const checkpoint = await persist('reading the checkpoint', () => deps.sink.readCheckpoint(subscriber));
    // following the live projection, the fold resumes at the checkpoint: each host's state there comes from the
    // live projection's snapshots as the host is met, its days from the sink (no fold of the whole history)
    resumedAt = undefined;
    if (checkpoint > 0n && deps.live !== undefined && deps.sink.readCompliance !== undefined && !noResume) {
      analyzer = createFleetAnalyzer(deps.fold, { ...bound, resumeAt: checkpoint });
      resumedAt = checkpoint;
      log.info({ position: checkpoint.toString() }, 'analytics sink: resumed at its checkpoint');
    } else if (checkpoint > 0n) {
      for await (const r of deps.store.readAll({ after: 0n })) {
        if (r.globalPosition > checkpoint) break;
        analyzer.skip(r);
      }
    }
    written = analyzer.position();
    if (stopping) return;
    if (deps.live !== undefined) {
      await followLive(deps.live);
      if (status.state === 'starting') status = { ...status, state: 'ok' };
      return;
    }
    subscription = await deps.store.subscribe({
      subscriberName: subscriber,
      batchSize,
      handle: async (batch) => {
        const first = batch[0];
        if (first !== undefined && first.globalPosition > analyzer.position() + 1n) await backfill(first.globalPosition);
        await writeBatch(batch);
      },
      // caught up once the last batch read is written too
      onCaughtUp: () => {
        const write = inFlight ?? Promise.resolve();
        void write.then(resolveCaughtUp, () => {});
      },
      onError: (error) => {
        if (stopping) return;
        failure = error;
        rejectCaughtUp(error);
        subscription = undefined;
        const delayMs = noteFailure('failed', error, 'the subscription');
        opening = pause(delayMs).then(() => reopen());
      },
    });
    if (status.state === 'starting') status = { ...status, state: 'ok' };
  };
  const reopen = (): Promise<void> =>
    stopping
      ? Promise.resolve()
      : open().catch((error: unknown) => {
          if (stopping) return;
          opening = pause(noteFailure('failed', error, 'restarting')).then(() => reopen());
        });

  const stop = async (): Promise<void> => {
    stopping = true;
    unfollow?.();
    unfollow = undefined;
    clearTimeout(flushTimer);
    for (const wake of [...sleepers]) wake();
    await opening?.catch(() => {});
    await flushing;
    await settle().catch(() => {});
    const s = subscription;
    subscription = undefined;
    try {
      await s?.stop();
    } catch (error) {
      // a wait cut short by this stop, or a failure already reported through onError / caughtUp()
      if (!(error instanceof ProjectorStoppedError) && error !== failure) throw error;
    } finally {
      if (started) status = { ...status, state: 'stopped' };
    }
  };

  return {
    start: async () => {
      if (started) return;
      started = true;
      status = { ...status, state: 'starting' };
      opening = open();
      // stopped before the engine ever answered: nothing to report
      await opening.catch((error: unknown) => {
        if (!(error instanceof ProjectorStoppedError)) throw error;
      });
    },
    caughtUp: () => caughtUp,
    failure: () => failure,
    position: () => written,
    status: () => ({ ...status, position: written, residentHosts: analyzer.residentHosts() }),
    stop,
    [Symbol.asyncDispose]: stop,
  };
};
