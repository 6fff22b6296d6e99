import { isAppError } from '../../schemas/index.js';
import { BatchTooLargeError, type EventSink } from './sinks/eventSink.js';
import type { Spool } from './spool.js';
import { backoffDelay } from '../shared/backoff.js';

/** the subset of a pino logger the collector uses */
export interface CollectorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: CollectorLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface ShipperOptions {
  /** @defaultValue 500 */
  readonly batchSize?: number;
  /** first retry delay @defaultValue 250 */
  readonly initialBackoffMs?: number;
  /** @defaultValue 30_000 */
  readonly maxBackoffMs?: number;
  readonly logger?: CollectorLogger;
  /** injected for tests @defaultValue setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}


/**
 * Drains the spool into a sink, oldest first, one batch at a time: the next batch is read only after the
 * previous one was acknowledged, so order is kept across outages. Delivered and duplicate events leave the
 * spool; rejected ones are logged with their reason and dropped (resending cannot fix them); failures are
 * retried forever with backoff, because the spool, not memory, holds the events.
 */
export const createShipper = (spool: Spool, sink: EventSink, options: ShipperOptions = {}) => {
  const log = options.logger ?? silentLogger;
  const initial = options.initialBackoffMs ?? 250;
  const max = options.maxBackoffMs ?? 30_000;
  const random = options.random ?? Math.random;
  let batchSize = options.batchSize ?? 500;
  let stopping = false;
  let wakeSleep: (() => void) | undefined;
  const sleep =
    options.sleep ??
    ((ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        wakeSleep = () => {
          clearTimeout(t);
          resolve();
        };
      }));
  const stats = { delivered: 0, duplicate: 0, rejected: 0, failures: 0 };

  /** one batch; returns false when the sink failed */
  const shipOnce = async (): Promise<boolean> => {
    const batch = spool.peek(batchSize);
    if (batch.length === 0) return true;
    const results = await sink.send(batch.map((b) => b.event));
    for (const r of results) {
      if (r.status === 'accepted') stats.delivered += 1;
      else if (r.status === 'duplicate') stats.duplicate += 1;
      else {
        stats.rejected += 1;
        log.error({ id: r.id, reason: r.reason, sink: sink.name }, 'collector.event.rejected');
      }
    }
    spool.remove(results.map((r) => r.id));
    return true;
  };

  let attempt = 0;
  const loop = async (): Promise<void> => {
    while (!stopping) {
      await spool.waitForData();
      if (stopping) break;
      try {
        await shipOnce();
        if (attempt > 0) log.info({ sink: sink.name, attempts: attempt }, 'collector.sink.recovered');
        attempt = 0;
      } catch (error) {
        if (error instanceof BatchTooLargeError && batchSize > 1) {
          batchSize = Math.max(1, Math.floor(batchSize / 2));
          log.warn({ batchSize }, 'collector.batch.shrunk');
          continue;
        }
        stats.failures += 1;
        const delay = backoffDelay(attempt, initial, max, random);
        attempt += 1;
        const retriable = isAppError(error) && error.retriable;
        log.warn({ err: (error as Error).message, retriable, attempt, delayMs: delay, queued: spool.size() }, 'collector.sink.failed');
        await sleep(delay);
      }
    }
  };

  let running: Promise<void> | undefined;
  return {
    start(): void {
      running ??= loop();
    },
    /** stops after the batch in flight; what is left stays in the spool for the next run */
    async stop(): Promise<void> {
      stopping = true;
      spool.interrupt();
      wakeSleep?.();
      await running;
    },
    /** ships until the spool is empty or the sink fails (for `collect --once` and tests) */
    async drain(): Promise<boolean> {
      while (spool.size() > 0) {
        try {
          await shipOnce();
        } catch (error) {
          if (error instanceof BatchTooLargeError && batchSize > 1) {
            batchSize = Math.max(1, Math.floor(batchSize / 2));
            continue;
          }
          log.warn({ err: (error as Error).message }, 'collector.sink.failed');
          return false;
        }
      }
      return true;
    },
    stats,
  };
};
export type Shipper = ReturnType<typeof createShipper>;
