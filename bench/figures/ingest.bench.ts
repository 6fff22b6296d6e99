import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { hostStreamName, parseEvent, type IommuEvent } from '../../schemas/index.js';
import { getSqliteEventStore } from '../../services/shared/eventStore/index.js';
import { simulateFleet } from '../../services/simulator/simulateFleet.js';
import { splitBody } from '../../services/serve/http/ingestRoutes.js';
import { TEST_TOKENS, startTestService } from '../../services/serve/testing/service.js';
import { defineFigure, type Measurement } from '../harness.js';

const BATCH = 1_000;

/** NDJSON bodies of BATCH events each, as a collector would send them */
const bodiesOf = (events: readonly unknown[]): string[] => {
  const bodies: string[] = [];
  for (let i = 0; i < events.length; i += BATCH) bodies.push(`${events.slice(i, i + BATCH).map((e) => JSON.stringify(e)).join('\n')}\n`);
  return bodies;
};

/**
 * The clients run on their own threads (as remote collectors would be elsewhere): the server's thread measures
 * the server, not the bench's fetch calls. They share one queue of bodies; every answer must be 200.
 */
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const next = new Int32Array(workerData.next);
// node:http over one kept-alive socket: a client costs the server's machine as little as it can (fetch adds web
// streams and a copy of each body); a body is encoded when sent, so no client holds a second copy of them all
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const bodies = workerData.bodies;
const post = (body) => new Promise((resolve, reject) => {
  const req = http.request(workerData.url, { method: 'POST', agent, headers: { authorization: 'Bearer ' + workerData.token, 'content-type': 'application/x-ndjson', 'content-length': body.length } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
    res.on('error', reject);
  });
  req.on('error', reject);
  req.end(body);
});
parentPort.once('message', async () => {
  try {
    for (let i = Atomics.add(next, 0, 1); i < bodies.length; i = Atomics.add(next, 0, 1)) {
      const res = await post(Buffer.from(bodies[i]));
      if (res.status !== 200) throw new Error('ingest answered ' + res.status + ': ' + res.text.slice(0, 200));
    }
    parentPort.postMessage({ ok: true });
  } catch (e) {
    parentPort.postMessage({ ok: false, message: String(e && e.message || e) });
  } finally {
    agent.destroy();
  }
});
parentPort.postMessage({ ready: true });
`;

const postFromClients = async (clients: number, url: string, token: string, bodies: readonly string[]): Promise<void> => {
  const next = new SharedArrayBuffer(4);
  const workers = Array.from({ length: clients }, () => new Worker(CLIENT, { eval: true, workerData: { url, token, bodies, next } }));
  try {
    await Promise.all(workers.map((w) => new Promise((resolve, reject) => w.once('message', resolve).once('error', reject))));
    const results = await Promise.all(
      workers.map((w) => {
        const done = new Promise<{ ok: boolean; message?: string }>((resolve, reject) => w.once('message', resolve).once('error', reject));
        w.postMessage('go');
        return done;
      }),
    );
    const failed = results.find((r) => !r.ok);
    if (failed) throw new Error(failed.message);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
};

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

/**
 * Issue 6: HTTP ingest (batches of 1,000, one client and four, each on its own thread) beside parse + validate of the same bytes
 * in process (the limit: what ingest must do anyway), and the latency of a host state `?at=` a time on a
 * store of `size` events (median, p99), folded from the newest per-host snapshot.
 */
export default defineFigure({
  name: 'ingest',
  issue: 6,
  sizes: { quick: [1e4], full: [1e5, 1e6, 1e7] },
  async measure(size, ctx) {
    const measurements: Measurement[] = [];
    // HTTP ingest is measured on at most 1e6 events: beyond that it is the same steady state, only longer
    const ingestSize = Math.min(size, 1_000_000);
    const events = [...simulateFleet({ seed: 6, hosts: 16, events: ingestSize, traces: true })];
    const bodies = bodiesOf(events);
    const bytes = bodies.reduce((n, b) => n + b.length, 0);

    // the limit: parse + validate the same bytes in this process
    const p0 = performance.now();
    let valid = 0;
    for (const body of bodies) for (const line of body.split('\n')) if (line && parseEvent(JSON.parse(line)).ok) valid++;
    const parseRate = valid / ((performance.now() - p0) / 1000);
    ctx.log(`${events.length} events, ${(bytes / 1e6).toFixed(1)} MB NDJSON; parse+validate ${Math.round(parseRate).toLocaleString('en')} events/s`);

    for (const clients of [1, 4]) {
      const svc = await startTestService({ dataDir: path.join(ctx.tmpDir, `svc-${clients}`), analytics: { enabled: false }, http: { ratePerMinute: 1_000_000, bodyLimitBytes: 64 * 1024 * 1024 } });
      try {
        const t0 = performance.now();
        await postFromClients(clients, `${svc.url}/v1/events`, TEST_TOKENS.ingest, bodies);
        const rate = events.length / ((performance.now() - t0) / 1000);
        measurements.push({
          label: `HTTP ingest, batches of ${BATCH}, ${clients} client(s), durable`,
          value: rate,
          unit: 'events/s',
          higherIsBetter: true,
          reference: { label: 'parse + validate of the same bytes in process', value: parseRate, kind: 'raw-limit' },
          targetRatio: 0.5,
        });
      } finally {
        await svc.dispose();
      }
    }

    // the same path without HTTP, in this process: body split, parse + validate, durable append, live fold, with
    // as many concurrent batches as the HTTP run had clients. What it reaches is what HTTP ingest could reach with
    // a free HTTP layer: the part of the gap that is the server's own work, not the transport's.
    for (const concurrency of [1, 4]) {
      const svc = await startTestService({ dataDir: path.join(ctx.tmpDir, `direct-${concurrency}`), analytics: { enabled: false } });
      try {
        let next = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            for (let i = next++; i < bodies.length; i = next++) {
              const { items, lineErrors } = splitBody(bodies[i]!, 'application/x-ndjson');
              const summary = await svc.ingest.ingest(items, 'events', lineErrors);
              if (summary.accepted + summary.duplicate !== items.length) throw new Error(`in-process ingest rejected ${summary.rejected} event(s)`);
              void svc.live.notify();
            }
          }),
        );
        await svc.live.notify();
        const rate = events.length / ((performance.now() - t0) / 1000);
        measurements.push({
          label: `in-process ingest (the HTTP path without HTTP), batches of ${BATCH}, ${concurrency} at a time, durable`,
          value: rate,
          unit: 'events/s',
          higherIsBetter: true,
          reference: { label: 'parse + validate of the same bytes in process', value: parseRate, kind: 'raw-limit' },
        });
      } finally {
        await svc.dispose();
      }
    }

    // ?at= latency on a store of `size` events: appended straight to the store (HTTP ingest measured above)
    const dataDir = path.join(ctx.tmpDir, 'at');
    const store = getSqliteEventStore({ path: path.join(dataDir, 'events.sqlite'), durability: 'normal' });
    let appended = 0;
    let firstNs = 0n;
    let lastNs = 0n;
    const hosts = new Set<string>();
    const pending = new Map<string, IommuEvent[]>();
    const flush = async () => {
      for (const [host, list] of pending) await store.appendToStream(hostStreamName(host), list);
      pending.clear();
    };
    const appendSource = size <= ingestSize ? events : simulateFleet({ seed: 6, hosts: 64, events: size, traces: true });
    let inBatch = 0;
    for (const raw of appendSource) {
      const r = parseEvent(raw);
      if (!r.ok) continue;
      const e = r.value;
      if (firstNs === 0n) firstNs = BigInt(e.time);
      lastNs = BigInt(e.time);
      hosts.add(e.host);
      const list = pending.get(e.host) ?? [];
      list.push(e);
      pending.set(e.host, list);
      if (++inBatch >= 5_000) {
        await flush();
        inBatch = 0;
      }
      appended++;
    }
    await flush();
    await store.close();
    ctx.log(`store of ${appended} events, ${hosts.size} hosts, ready for ?at=`);

    const svc = await startTestService({ dataDir, analytics: { enabled: false }, http: { ratePerMinute: 1_000_000 } });
    try {
      const hostList = [...hosts];
      const span = lastNs - firstNs;
      const latencies: number[] = [];
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
      const rounds = ctx.mode === 'quick' ? 50 : 200;
      for (let i = 0; i < rounds; i++) {
        const host = hostList[Math.floor(rand() * hostList.length)]!;
        const at = firstNs + BigInt(Math.floor(rand() * 1e6)) * (span / 1_000_000n);
        const t0 = performance.now();
        const res = await fetch(`${svc.url}/v1/hosts/${host}/state?at=${at}`, { headers: { authorization: `Bearer ${TEST_TOKENS.read}` } });
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
      }
      latencies.sort((a, b) => a - b);
      const t0 = performance.now();
      for (let i = 0; i < 50; i++) await (await fetch(`${svc.url}/healthz`)).arrayBuffer();
      const healthMs = (performance.now() - t0) / 50;
      for (const [label, p] of [['median', 0.5], ['p99', 0.99]] as const) {
        measurements.push({
          label: `host state ?at= a time, ${label} (store of ${appended} events)`,
          value: percentile(latencies, p),
          unit: 'ms',
          higherIsBetter: false,
          reference: { label: 'GET /healthz round trip (the HTTP floor)', value: healthMs, kind: 'raw-limit' },
        });
      }
    } finally {
      await svc.dispose();
    }
    return measurements;
  },
});
