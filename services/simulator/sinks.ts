/**
 * Where simulated events go: a JSON Lines stream (file or stdout) honouring back-pressure, the service's
 * `POST /v1/events` in NDJSON batches at a target rate, or Kafka through the shared publisher.
 */
import type { Writable } from 'node:stream';
import { UnavailableError, ValidationError, assertEvent, type IommuEvent, type IommuEventInput } from '../../schemas/index.js';

export interface SinkResult {
  readonly events: number;
  readonly bytes: number;
}

export interface SinkProgress {
  readonly onProgress?: (sent: number) => void;
}

/** resolves on 'drain' or 'close' (a closed pipe never drains), removing both listeners */
const drained = (out: Writable): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });

/** lines are joined into chunks of about this size before a write: far fewer write calls */
const CHUNK_BYTES = 64 * 1024;

/**
 * Writes one JSON object per line. Waits for 'drain' whenever the stream's buffer is full, so memory stays
 * flat however many events flow. Does not end the stream (stdout must stay open).
 */
export const writeJsonLines = async (events: Iterable<IommuEventInput>, out: Writable, options: SinkProgress = {}): Promise<SinkResult> => {
  let failure: Error | undefined;
  const onError = (e: Error) => (failure = e);
  out.on('error', onError);
  let count = 0;
  let bytes = 0;
  let chunk = '';
  const flush = async () => {
    if (chunk === '') return;
    // encoded once: its length is the byte count, and the stream takes the buffer as it is
    const buffer = Buffer.from(chunk, 'utf8');
    bytes += buffer.length;
    const ok = out.write(buffer);
    chunk = '';
    if (!ok) await drained(out);
    // the reader went away (`simulate | head`): stop like any well-behaved producer, not an error
    if (failure && (failure as NodeJS.ErrnoException).code !== 'EPIPE') throw failure;
  };
  const closedEarly = () => failure !== undefined || out.destroyed || out.writableEnded;
  try {
    for (const e of events) {
      if (closedEarly()) break;
      chunk += `${JSON.stringify(e)}\n`;
      count += 1;
      if (chunk.length >= CHUNK_BYTES) {
        await flush();
        options.onProgress?.(count);
      }
    }
    await flush();
    options.onProgress?.(count);
  } finally {
    out.off('error', onError);
  }
  return { events: count, bytes };
};

export interface HttpSinkOptions extends SinkProgress {
  /** e.g. http://localhost:8080/v1/events */
  readonly url: string;
  readonly token?: string;
  /** events per request @defaultValue 1000 */
  readonly batchSize?: number;
  /** target events per second; 0 or absent: as fast as the service takes them */
  readonly rate?: number;
  /** attempts per batch on 429/5xx/network errors @defaultValue 5 */
  readonly attempts?: number;
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

export interface HttpSinkResult extends SinkResult {
  readonly accepted: number;
  readonly duplicate: number;
  readonly rejected: number;
  readonly requests: number;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * POSTs NDJSON batches. Paced so that event i leaves no earlier than start + i/rate. 429 and 5xx are retried
 * with backoff (honouring Retry-After); other 4xx stop the run with a ValidationError naming the response.
 */
export const sendToHttp = async (events: Iterable<IommuEventInput>, options: HttpSinkOptions): Promise<HttpSinkResult> => {
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ValidationError(`batchSize: expected a positive integer, got ${batchSize}`);
  const rate = options.rate ?? 0;
  if (!Number.isFinite(rate) || rate < 0) throw new ValidationError(`rate: expected events per second ≥ 0, got ${rate}`);
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? (() => performance.now());
  const attempts = options.attempts ?? 5;
  const started = now();
  const totals = { events: 0, bytes: 0, accepted: 0, duplicate: 0, rejected: 0, requests: 0 };

  const post = async (lines: string[]): Promise<void> => {
    const body = lines.join('');
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs = Math.min(200 * 2 ** (attempt - 1), 10_000);
      try {
        totals.requests += 1;
        const res = await doFetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
          body,
        });
        const text = await res.text();
        if (res.ok || res.status === 207 || res.status === 400) {
          const summary = safeJson(text) as { accepted?: number; duplicate?: number; rejected?: number } | undefined;
          if (res.status === 400 && summary?.rejected === undefined) throw new ValidationError(`POST ${options.url}: 400 ${text.slice(0, 300)}`);
          totals.accepted += summary?.accepted ?? 0;
          totals.duplicate += summary?.duplicate ?? 0;
          totals.rejected += summary?.rejected ?? 0;
          totals.bytes += Buffer.byteLength(body);
          return;
        }
        if (res.status !== 429 && res.status < 500) throw new ValidationError(`POST ${options.url}: ${res.status} ${text.slice(0, 300)}`);
        const header = Number(res.headers.get('retry-after'));
        if (Number.isFinite(header) && header > 0) retryAfterMs = header * 1000;
        if (attempt >= attempts) throw new UnavailableError(`POST ${options.url}: ${res.status} after ${attempt} attempts`);
      } catch (e) {
        if (e instanceof ValidationError || e instanceof UnavailableError) throw e;
        if (attempt >= attempts) throw new UnavailableError(`POST ${options.url}: ${(e as Error).message} after ${attempt} attempts`, { cause: e });
      }
      await sleep(retryAfterMs);
    }
  };

  let batch: string[] = [];
  for (const e of events) {
    batch.push(`${JSON.stringify(e)}\n`);
    if (batch.length >= batchSize) {
      await pace(rate, totals.events, started, now, sleep);
      await post(batch);
      totals.events += batch.length;
      batch = [];
      options.onProgress?.(totals.events);
    }
  }
  if (batch.length > 0) {
    await pace(rate, totals.events, started, now, sleep);
    await post(batch);
    totals.events += batch.length;
    options.onProgress?.(totals.events);
  }
  return totals;
};

/** wait until `sent` events are due at `rate` per second since `started` */
const pace = async (rate: number, sent: number, started: number, now: () => number, sleep: (ms: number) => Promise<void>) => {
  if (rate <= 0) return;
  const due = started + (sent / rate) * 1000;
  const wait = due - now();
  if (wait > 0) await sleep(wait);
};

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

export interface KafkaSinkOptions extends SinkProgress {
  readonly publisher: { publish(events: readonly IommuEvent[]): Promise<void> };
  readonly batchSize?: number;
  readonly rate?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** publishes in batches (the publisher applies its own buffer limit); each event is validated first */
export const sendToKafka = async (events: Iterable<IommuEventInput>, options: KafkaSinkOptions): Promise<SinkResult> => {
  const batchSize = options.batchSize ?? 1000;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? (() => performance.now());
  const started = now();
  let count = 0;
  let bytes = 0;
  let batch: IommuEvent[] = [];
  const send = async () => {
    await pace(options.rate ?? 0, count, started, now, sleep);
    await options.publisher.publish(batch);
    count += batch.length;
    batch = [];
    options.onProgress?.(count);
  };
  for (const e of events) {
    bytes += JSON.stringify(e).length + 1;
    batch.push(assertEvent(e));
    if (batch.length >= batchSize) await send();
  }
  if (batch.length > 0) await send();
  return { events: count, bytes };
};
