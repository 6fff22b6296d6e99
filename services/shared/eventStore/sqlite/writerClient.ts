import { Worker } from 'node:worker_threads';
import { UnavailableError } from '../../../../schemas/index.js';
import type { SignedSeal } from './tamper/signing.js';
import { convertSqliteError, fromWireError, openSqliteWriter, type SqliteWriterOptions, type WireError, type WriterCloseReport } from './sqliteWriter.js';
import { transferablesOf, type PackedBatch, type PackedReplies } from './packedBatch.js';

/** the store's side of its single writer, on a worker thread or inline */
export interface WriterClient {
  /** resolves once the writer can take requests (its thread started, its connection open) */
  ready(): Promise<void>;
  append(batch: PackedBatch): Promise<PackedReplies>;
  saveCheckpoint(name: string, position: bigint): Promise<void>;
  /** see {@link SqliteWriter.seal} */
  seal(streams?: readonly string[]): Promise<SignedSeal | undefined>;
  /** a one-page write and commit: rejects while the disk is full or failing */
  probe(): Promise<void>;
  /** resolves with what failed while closing (never rejects for a failed seal) */
  close(): Promise<WriterCloseReport>;
}

type WriterOp =
  | { readonly op: 'append'; readonly batch: PackedBatch }
  | { readonly op: 'checkpoint'; readonly name: string; readonly position: bigint }
  | { readonly op: 'seal'; readonly streams?: readonly string[] }
  | { readonly op: 'ready' }
  | { readonly op: 'probe' }
  | { readonly op: 'close' };
export type WriterRequest = WriterOp & { readonly id: number };
export type WriterResponse = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: WireError };

/** the writer called in this thread: each call is synchronous underneath */
export const inlineWriter = (options: SqliteWriterOptions): WriterClient => {
  const writer = openSqliteWriter(options);
  // in this thread the original error (with its cause) reaches the caller as it is, SQLite's mapped to the closed set
  const call = <T>(f: () => T): Promise<T> => {
    try {
      return Promise.resolve(f());
    } catch (error) {
      return Promise.reject(convertSqliteError(error));
    }
  };
  return {
    ready: () => Promise.resolve(),
    append: (batch) => call(() => writer.append(batch)),
    saveCheckpoint: (name, position) => call(() => writer.saveCheckpoint(name, position)),
    seal: (streams) => call(() => writer.seal(streams)),
    probe: () => call(() => writer.probe()),
    close: () => call(() => writer.close()),
  };
};

// a .ts module (tests, tsx) runs the worker's .ts entry through tsx; the build runs the compiled .js directly
const fromSource = import.meta.url.endsWith('.ts');
const BOOT_TS = "const { workerData } = require('node:worker_threads'); import(workerData.tsxApi).then((tsx) => tsx.tsImport(workerData.entry, workerData.entry));";

/**
 * The writer on a worker thread: SQLite's inserts and fsync no longer block this thread, so parsing, HTTP and
 * the projections of the next requests overlap the commit of the previous ones. Requests are answered in order.
 * If the thread dies, every pending and later request fails with UnavailableError (nothing unanswered was
 * acknowledged, so nothing acknowledged is lost).
 */
export const threadWriter = (options: SqliteWriterOptions): WriterClient => {
  const entry = new URL(`./writerWorker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  const workerData = { options, entry: entry.href, ...(fromSource ? { tsxApi: import.meta.resolve('tsx/esm/api') } : {}) };
  const worker = fromSource ? new Worker(BOOT_TS, { eval: true, workerData }) : new Worker(entry, { workerData });
  // idle, the thread does not keep the process alive; with requests in flight it does
  worker.unref();
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let failure: Error | undefined;
  let exited = false;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

  const failAll = (error: Error): void => {
    failure ??= error;
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  };
  worker.on('message', (m: WriterResponse) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) worker.unref();
    if (m.ok) p.resolve(m.value);
    else p.reject(fromWireError(m.error));
  });
  worker.on('error', (e) => failAll(new UnavailableError(`sqlite writer thread failed: ${e.message}`, { cause: e })));
  // an answer that cannot be read cannot be matched to its request: nothing pending can be trusted to settle
  worker.on('messageerror', (e) => {
    failAll(new UnavailableError(`sqlite writer thread: unreadable answer: ${e.message}`, { cause: e }));
    void worker.terminate();
  });
  worker.on('exit', (code) => {
    exited = true;
    failAll(new UnavailableError(`sqlite writer thread exited (code ${code})`));
  });

  const request = <T>(m: WriterOp): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (failure) return reject(failure);
      const id = nextId++;
      try {
        // a packed batch's buffers are the request's own: moved, not copied
        worker.postMessage({ ...m, id }, m.op === 'append' ? transferablesOf(m.batch) : []);
      } catch (error) {
        // not sent (a value that cannot be cloned): nothing is pending for it
        return reject(new UnavailableError(`sqlite writer thread: request not sent: ${(error as Error).message}`, { cause: error }));
      }
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (pending.size === 1) worker.ref();
    });

  return {
    ready: () => request<void>({ op: 'ready' }),
    append: (batch) => request<PackedReplies>({ op: 'append', batch }),
    saveCheckpoint: (name, position) => request<void>({ op: 'checkpoint', name, position }),
    seal: (streams) => request<SignedSeal | undefined>({ op: 'seal', ...(streams ? { streams } : {}) }),
    probe: () => request<void>({ op: 'probe' }),
    close: async () => {
      let report: WriterCloseReport = {};
      try {
        if (!exited && !failure) report = await request<WriterCloseReport>({ op: 'close' });
      } catch (e) {
        report = { closeError: (e as Error).message };
      }
      if (!exited) await worker.terminate();
      await exit;
      return report;
    },
  };
};
