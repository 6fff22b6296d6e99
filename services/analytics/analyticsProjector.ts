import type { RecordedEvent } from '../../schemas/index.js';
import type { EventStore, Subscription } from '../eventStore/eventStore.js';
import type { AnalyticsSink } from './analyticsSink.js';
import { createFleetAnalyzer, type FleetFold } from './fleetAnalyzer.js';

export interface AnalyticsProjectorDeps {
  readonly store: EventStore;
  readonly sink: AnalyticsSink;
  /** the fleet projection (`createFleetProjection()` from projections/) */
  readonly fold: FleetFold;
}

/**
 * Events per store batch, one sink write each. Every write is five inserts (four tables and the
 * checkpoint) at a fixed ~3.5 ms each on chdb plus a part per table: 10,000 keeps that under ~10%.
 */
export const DEFAULT_BATCH_SIZE = 10_000;

export interface AnalyticsProjectorOptions {
  /** durable checkpoint name, in the store and in the sink @defaultValue 'analytics' */
  readonly subscriberName?: string;
  /** events per store batch (one sink write each) @defaultValue 10_000 */
  readonly batchSize?: number;
}

export interface AnalyticsProjector {
  /** rebuilds the fold up to the sink's checkpoint, then subscribes; resolves once subscribed */
  start(): Promise<void>;
  /** resolves when the subscription has reached the store's head once; rejects if the subscription failed */
  caughtUp(): Promise<void>;
  /** the error that stopped the subscription (a sink write that failed), if any */
  failure(): unknown;
  /** the last position written to the sink */
  position(): bigint;
  /** stops the subscription after its current batch; idempotent */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

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
 */
export const createAnalyticsProjector = (deps: AnalyticsProjectorDeps, options: AnalyticsProjectorOptions = {}): AnalyticsProjector => {
  const subscriber = options.subscriberName ?? 'analytics';
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const analyzer = createFleetAnalyzer(deps.fold);
  let written = 0n;
  let subscription: Subscription | undefined;
  let failure: unknown;
  let resolveCaughtUp: () => void = () => {};
  let rejectCaughtUp: (e: unknown) => void = () => {};
  const caughtUp = new Promise<void>((resolve, reject) => {
    resolveCaughtUp = resolve;
    rejectCaughtUp = reject;
  });
  // a failure before anyone awaits caughtUp() must not become an unhandled rejection
  caughtUp.catch(() => {});

  const writeBatch = async (batch: readonly RecordedEvent[]): Promise<void> => {
    const last = batch[batch.length - 1];
    if (last === undefined) return;
    const out = analyzer.apply(batch);
    if (out.events.length === 0 && last.globalPosition <= written) return;
    await deps.sink.write({ ...out, checkpoint: { subscriber, position: analyzer.position() } });
    written = analyzer.position();
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
  };

  const stop = async (): Promise<void> => {
    const s = subscription;
    subscription = undefined;
    try {
      await s?.stop();
    } catch (error) {
      // the failure was already reported through onError / caughtUp()
      if (error !== failure) throw error;
    }
  };

  return {
    start: async () => {
      if (subscription !== undefined) return;
      const checkpoint = await deps.sink.readCheckpoint(subscriber);
      if (checkpoint > 0n) {
        for await (const r of deps.store.readAll({ after: 0n })) {
          if (r.globalPosition > checkpoint) break;
          analyzer.skip(r);
        }
      }
      written = analyzer.position();
      subscription = await deps.store.subscribe({
        subscriberName: subscriber,
        batchSize,
        handle: async (batch) => {
          const first = batch[0];
          if (first !== undefined && first.globalPosition > analyzer.position() + 1n) await backfill(first.globalPosition);
          await writeBatch(batch);
        },
        onCaughtUp: () => resolveCaughtUp(),
        onError: (error) => {
          failure = error;
          rejectCaughtUp(error);
        },
      });
    },
    caughtUp: () => caughtUp,
    failure: () => failure,
    position: () => written,
    stop,
    [Symbol.asyncDispose]: stop,
  };
};
