import type { RecordedEvent } from '../../../schemas/index.js';
import type { SubscribeOptions, Subscription } from './eventStore.js';

/** what a store adapter gives the one subscription loop */
export interface SubscriptionSource {
  /** up to `max` events after `position`, in global order ([] at the head) */
  readAfter(position: bigint, max: number): readonly RecordedEvent[];
  /** stores the subscriber's checkpoint (durably, for a durable store) */
  saveCheckpoint(subscriberName: string, position: bigint): Promise<void> | void;
  isClosed(): boolean;
  /** wakes every idle subscriber of the store: the adapter calls them after a commit and at close */
  readonly wakers: Set<() => void>;
  /** how long an idle subscriber sleeps before it looks again (appends by other processes); absent: until woken */
  readonly pollIntervalMs?: number;
}

/**
 * The subscription loop of the in-process adapters (SQLite, in-memory): read a batch after the checkpoint,
 * hand it over, store the checkpoint, and at the head sleep until an append wakes it (or the poll interval
 * passes). A failing handler or checkpoint stops it (`onError`, `stop()` rejects) without moving the
 * checkpoint past the failed batch.
 */
export const runSubscription = (opts: SubscribeOptions, from: bigint, source: SubscriptionSource): Subscription => {
  const batchSize = opts.batchSize ?? 500;
  let position = from;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const waker = (): void => wake?.();
  source.wakers.add(waker);
  const sleep = (): Promise<void> =>
    new Promise((resolve) => {
      const t = source.pollIntervalMs === undefined ? undefined : setTimeout(done, source.pollIntervalMs);
      function done(): void {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  const fail = (error: unknown): void => {
    failure = { error };
    stopped = true;
    opts.onError?.(error);
  };
  const loop = async (): Promise<void> => {
    let caughtUp = false;
    while (!stopped && !source.isClosed()) {
      const batch = source.readAfter(position, batchSize);
      if (batch.length > 0) {
        try {
          await opts.handle(batch);
        } catch (error) {
          return fail(error);
        }
        const handled = batch[batch.length - 1]!.globalPosition;
        if (source.isClosed()) return;
        try {
          await source.saveCheckpoint(opts.subscriberName, handled);
          // position() is what was handled and checkpointed: a restart resumes right after it
          position = handled;
        } catch (error) {
          if (source.isClosed()) return;
          return fail(error);
        }
        continue;
      }
      if (!caughtUp) {
        caughtUp = true;
        opts.onCaughtUp?.();
      }
      await sleep();
    }
  };
  const running = loop().finally(() => source.wakers.delete(waker));
  return {
    position: () => position,
    stop: async () => {
      stopped = true;
      wake?.();
      await running;
      if (failure) throw failure.error;
    },
  };
};
