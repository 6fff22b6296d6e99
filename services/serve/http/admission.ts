import type { RequestHandler } from 'express';
import { sendProblem } from './problem.js';

export interface AdmissionOptions {
  /** heavy requests served at once */
  readonly concurrency: number;
  /** heavy requests waiting for a slot; one more is refused at once */
  readonly queue: number;
  /**
   * the least `Retry-After` told to a refused client; each refusal gets a whole number of seconds up to three
   * times it, so clients refused together do not all come back in the same instant
   */
  readonly retryAfterSeconds: number;
  readonly onRejected?: () => void;
}

/**
 * One admission limiter shared by the heavy routes (replays, timelines, folds to a past point, analytics
 * tables): a semaphore with a bounded queue. Beyond both, the request is answered at once with 503, a
 * `Retry-After` and a problem body, so a flood of heavy reads costs the service one cheap answer each
 * instead of the event loop, and `/healthz` and ingest keep their turn. A slot is freed when its answer is
 * finished or its connection closed; a waiting request whose client went away leaves the queue.
 */
export const createAdmission = (options: AdmissionOptions) => {
  let running = 0;
  const waiting = new Set<() => void>();

  const release = (): void => {
    const next = waiting.values().next();
    if (next.done) {
      running -= 1;
      return;
    }
    // the slot passes to the oldest waiting request
    waiting.delete(next.value);
    next.value();
  };

  const gate: RequestHandler = (_req, res, next) => {
    const start = (): void => {
      let freed = false;
      const free = (): void => {
        if (freed) return;
        freed = true;
        release();
      };
      res.once('finish', free);
      res.once('close', free);
      next();
    };
    if (running < options.concurrency) {
      running += 1;
      start();
      return;
    }
    if (waiting.size >= options.queue) {
      options.onRejected?.();
      const seconds = options.retryAfterSeconds + Math.floor(Math.random() * (2 * options.retryAfterSeconds + 1));
      res.setHeader('Retry-After', String(seconds));
      sendProblem(res, 503, 'service busy', `${running} heavy requests (replays, timelines, past states, analytics tables) are running and ${waiting.size} waiting; retry after ${seconds} s`);
      return;
    }
    waiting.add(start);
    res.once('close', () => waiting.delete(start));
  };

  return { gate, stats: () => ({ running, waiting: waiting.size }) };
};
export type Admission = ReturnType<typeof createAdmission>;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The items of `source`, giving the event loop a turn whenever about `budgetMs` passed since the last one
 * (the consumer's work on the items included), so one long read-and-fold never holds the loop: health checks,
 * ingest and the other requests are served in between.
 */
export async function* yieldingEach<T>(source: AsyncIterable<T> | Iterable<T>, budgetMs = 3): AsyncGenerator<T> {
  let since = performance.now();
  let n = 0;
  for await (const item of source) {
    n += 1;
    if ((n & 63) === 0 && performance.now() - since >= budgetMs) {
      await nextTurn();
      since = performance.now();
    }
    yield item;
  }
}
