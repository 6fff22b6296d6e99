import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventDraft } from './eventDraft.js';
import { createShipper } from './shipper.js';
import { createHttpSink } from './sinks/httpSink.js';
import { openSpool, type Spool } from './spool.js';
import { startFakeIngest } from './testing/fakeIngest.js';

const bound = (i: number): EventDraft => ({ type: 'DriverBound', source: 'udev', data: { device: `0000:01:00.${i % 8}`, driver: 'vfio-pci' } });
const newSpool = (): Spool => openSpool({ path: join(mkdtempSync(join(tmpdir(), 'ship-')), 's.sqlite'), host: 'host-a' });
const fast = { initialBackoffMs: 2, maxBackoffMs: 10, batchSize: 7 };

/** waits for a condition by polling an event-loop turn at a time; no wall-clock assertion */
const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 20_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!cond()) throw new Error(`never happened: ${what}`);
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('shipper > HTTP sink through outages', () => {
  it('given a service that refuses (503) and then accepts, when events keep arriving, then all are stored once and in seq order', async () => {
    const ingest = await startFakeIngest({ token: 't0k' });
    cleanups.push(ingest.close);
    const spool = newSpool();
    const shipper = createShipper(spool, createHttpSink({ url: ingest.url, token: 't0k' }), fast);
    cleanups.push(async () => {
      await shipper.stop();
      spool.close();
    });
    ingest.setMode('refuse');
    spool.append(Array.from({ length: 30 }, (_, i) => bound(i)));
    shipper.start();
    await until(() => ingest.requests() >= 3, 'three refused requests');
    spool.append(Array.from({ length: 20 }, (_, i) => bound(i)));
    ingest.setMode('accept');
    await until(() => spool.size() === 0, 'spool drained');
    expect(ingest.stored.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(shipper.stats.failures).toBeGreaterThanOrEqual(3);
  });

  it('given a service that is down (connection refused) and restarts on the same port, when it returns, then the spool drains in order', async () => {
    const first = await startFakeIngest();
    const port = first.port;
    await first.close();
    const spool = newSpool();
    const shipper = createShipper(spool, createHttpSink({ url: `http://127.0.0.1:${port}` }), fast);
    cleanups.push(async () => {
      await shipper.stop();
      spool.close();
    });
    spool.append(Array.from({ length: 25 }, (_, i) => bound(i)));
    shipper.start();
    await until(() => shipper.stats.failures >= 2, 'two failed attempts');
    expect(spool.size()).toBe(25);
    const back = await startFakeIngest({ port });
    cleanups.push(back.close);
    await until(() => spool.size() === 0, 'spool drained');
    expect(back.stored.map((e) => e.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('given the service stored a batch but the answer was lost, when resent, then it answers duplicate and nothing is stored twice', async () => {
    const ingest = await startFakeIngest();
    cleanups.push(ingest.close);
    const spool = newSpool();
    const shipper = createShipper(spool, createHttpSink({ url: ingest.url }), fast);
    cleanups.push(async () => {
      await shipper.stop();
      spool.close();
    });
    ingest.setMode('store-then-fail');
    spool.append(Array.from({ length: 10 }, (_, i) => bound(i)));
    shipper.start();
    await until(() => ingest.stored.length >= 7, 'first batch stored');
    ingest.setMode('accept');
    await until(() => spool.size() === 0, 'spool drained');
    expect(ingest.stored.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(shipper.stats.duplicate).toBeGreaterThan(0);
  });

  it('given an event the service rejects, when shipped, then it is dropped with its reason and the rest are delivered', async () => {
    const ingest = await startFakeIngest({ rejectDevices: ['0000:01:00.3'] });
    cleanups.push(ingest.close);
    const spool = newSpool();
    const rejected: unknown[] = [];
    const logger = { info: () => undefined, warn: () => undefined, error: (o: object) => void rejected.push(o) };
    const shipper = createShipper(spool, createHttpSink({ url: ingest.url }), { ...fast, logger });
    cleanups.push(() => spool.close());
    spool.append(Array.from({ length: 8 }, (_, i) => bound(i)));
    expect(await shipper.drain()).toBe(true);
    expect(ingest.stored).toHaveLength(7);
    expect(rejected).toEqual([expect.objectContaining({ reason: 'events[3].data.device: refused by test' })]);
  });
});
