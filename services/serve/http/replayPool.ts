import { Worker } from 'node:worker_threads';
import { UnavailableError } from '../../../schemas/index.js';
import type { ReplayJob, ReplayJobResult } from './replayJob.js';

type Answer = { readonly id: number; readonly ok: true; readonly value: ReplayJobResult } | { readonly id: number; readonly ok: false; readonly message: string };

// a .ts module (tests, tsx) runs the worker's .ts entry through tsx; the build runs the compiled .js directly
const fromSource = import.meta.url.endsWith('.ts');
const BOOT_TS = "const { workerData } = require('node:worker_threads'); import(workerData.tsxApi).then((tsx) => tsx.tsImport(workerData.entry, workerData.entry));";

interface Slot {
  readonly worker: Worker;
  job: { readonly id: number; readonly resolve: (r: ReplayJobResult) => void; readonly reject: (e: unknown) => void } | undefined;
}

/**
 * Replays off the request thread: up to `size` worker threads, each with its own read-only connection to the
 * SQLite store (WAL lets them read beside the writer), started when first needed. The request thread only
 * parses the query and writes the answer, so a replay's reads, folds and garbage never hold its event loop.
 * A thread that fails fails its job with UnavailableError and is replaced by the next job.
 */
export const createReplayPool = (options: { readonly path: string; readonly size: number }) => {
  const entry = new URL(`./replayWorker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  const workerData = { path: options.path, entry: entry.href, ...(fromSource ? { tsxApi: import.meta.resolve('tsx/esm/api') } : {}) };
  const slots: Slot[] = [];
  const waiting: { job: ReplayJob; resolve: (r: ReplayJobResult) => void; reject: (e: unknown) => void }[] = [];
  let nextId = 1;
  let closed = false;

  const spawn = (): Slot => {
    const worker = fromSource ? new Worker(BOOT_TS, { eval: true, workerData }) : new Worker(entry, { workerData });
    const slot: Slot = { worker, job: undefined };
    const fail = (error: Error): void => {
      const i = slots.indexOf(slot);
      if (i >= 0) slots.splice(i, 1);
      slot.job?.reject(new UnavailableError(`replay thread failed: ${error.message}`, { cause: error }));
      slot.job = undefined;
      dispatch();
    };
    worker.on('message', (m: Answer) => {
      const job = slot.job;
      if (!job || job.id !== m.id) return;
      slot.job = undefined;
      worker.unref();
      if (m.ok) job.resolve(m.value);
      else job.reject(new UnavailableError(`replay failed: ${m.message}`));
      dispatch();
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited (code ${code})`)));
    slots.push(slot);
    return slot;
  };

  const dispatch = (): void => {
    while (waiting.length > 0 && !closed) {
      const slot = slots.find((s) => !s.job) ?? (slots.length < options.size ? spawn() : undefined);
      if (!slot) return;
      const { job, resolve, reject } = waiting.shift()!;
      const id = nextId++;
      slot.job = { id, resolve, reject };
      slot.worker.ref();
      slot.worker.postMessage({ id, job });
    }
  };

  return {
    run: (job: ReplayJob): Promise<ReplayJobResult> =>
      new Promise<ReplayJobResult>((resolve, reject) => {
        if (closed) return reject(new UnavailableError('replay threads are stopped'));
        waiting.push({ job, resolve, reject });
        dispatch();
      }),
    close: async (): Promise<void> => {
      closed = true;
      for (const w of waiting.splice(0)) w.reject(new UnavailableError('replay threads are stopped'));
      await Promise.all(slots.splice(0).map((s) => s.worker.terminate()));
    },
  };
};
export type ReplayPool = ReturnType<typeof createReplayPool>;
