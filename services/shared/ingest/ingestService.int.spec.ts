import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError, createEventBuilder, hostStreamName, type IommuEvent } from '../../../schemas/index.js';
import { appendTogether, type AppendOptions, type AppendResult, type EventStore } from '../eventStore/eventStore.js';
import { getSqliteEventStore, type SqliteEventStore } from '../eventStore/index.js';
import { createIngestService } from './ingestService.js';

const dirs: string[] = [];
const stores: SqliteEventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const openStore = (): SqliteEventStore => {
  const dir = mkdtempSync(join(tmpdir(), 'iommutrail-ingest-'));
  dirs.push(dir);
  const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal' });
  stores.push(store);
  return store;
};

/** the real store, with every append call recorded and, when asked, held back or failed */
const recording = (store: EventStore, behaviour: { hold?: Promise<void>; failCall?: number } = {}) => {
  const calls: { stream: string; seqs: number[]; settledAt?: number }[] = [];
  let clock = 0;
  const wrapped: EventStore = Object.create(store) as EventStore;
  wrapped.appendToStream = async (stream: string, events: readonly IommuEvent[], options?: AppendOptions): Promise<AppendResult> => {
    const call = { stream, seqs: events.map((e) => e.seq) } as (typeof calls)[number];
    calls.push(call);
    const n = calls.length;
    try {
      if (n === behaviour.failCall) throw new Error(`append ${n} failed`);
      const result = store.appendToStream(stream, events, options);
      if (behaviour.hold) await behaviour.hold;
      return await result;
    } finally {
      call.settledAt = ++clock;
    }
  };
  // every append of a multi-stream append goes through the wrapper
  wrapped.appendToStreams = appendTogether(wrapped.appendToStream);
  return { store: wrapped, calls };
};

const eventsOf = (host: string, count: number): IommuEvent[] => {
  const b = createEventBuilder({ host });
  return Array.from({ length: count }, (_, i) => b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' }));
};

describe('ingest service > slices', () => {
  it('given a lone batch with a host’s events shuffled across slices, when ingested, then the stream holds them in seq order, all accepted without warnings', async () => {
    const store = openStore();
    const { store: spy, calls } = recording(store);
    const ingest = createIngestService({ store: spy, options: { sliceSize: 3 } });
    const a = eventsOf('a', 7);
    const b = eventsOf('b', 4);
    const batch = [a[6], b[3], a[0], a[5], b[0], a[1], a[4], b[2], a[3], b[1], a[2]];

    const summary = await ingest.ingest(batch);

    expect(summary).toMatchObject({ accepted: 11, duplicate: 0, rejected: 0 });
    expect(summary.results.every((r) => r.status === 'accepted' && r.warnings === undefined)).toBe(true);
    expect(summary.results.map((r) => r.id)).toEqual(batch.map((e) => e!.id));
    expect(calls.length).toBeGreaterThan(2);
    for (const host of ['a', 'b']) {
      const stored: number[] = [];
      for await (const r of store.readStream(hostStreamName(host))) stored.push(r.event.seq);
      expect(stored).toEqual([...stored].sort((x, y) => x - y));
      expect(stored).toHaveLength(host === 'a' ? 7 : 4);
    }
  });

  it('given a batch with invalid events between valid ones, when ingested in slices, then the invalid ones are rejected by index and their neighbours stored', async () => {
    const store = openStore();
    const ingest = createIngestService({ store, options: { sliceSize: 2 } });
    const a = eventsOf('a', 3);
    const summary = await ingest.ingest([a[0], { type: 'DriverBound' }, a[1], 'nonsense', a[2]]);
    expect(summary).toMatchObject({ accepted: 3, rejected: 2 });
    expect(summary.results.map((r) => r.status)).toEqual(['accepted', 'rejected', 'accepted', 'rejected', 'accepted']);
    expect(summary.results[1]!.errors![0]!.path).toMatch(/^events\[1\]/);
  });

  it('given one slice with three hosts interleaved, an invalid event and a re-sent one among them, when ingested, then each answer names its own index, host and seq, one append per host', async () => {
    const store = openStore();
    const { store: spy, calls } = recording(store);
    const ingest = createIngestService({ store: spy });
    const [a, b, c] = [eventsOf('a', 3), eventsOf('b', 2), eventsOf('c', 3)];
    await ingest.ingest([b[0]]);
    calls.length = 0;
    const batch: unknown[] = [c[2], a[1], b[1], { host: 'b', seq: 9 }, c[0], a[0], b[0], a[2], c[1]];

    const summary = await ingest.ingest(batch);

    expect(summary).toMatchObject({ accepted: 7, duplicate: 1, rejected: 1 });
    expect(summary.results.map((r) => [r.index, r.status, r.host, r.seq])).toEqual(
      batch.map((e, i) => (i === 3 ? [3, 'rejected', undefined, undefined] : [i, e === b[0] ? 'duplicate' : 'accepted', (e as IommuEvent).host, (e as IommuEvent).seq])),
    );
    expect(summary.results.map((r) => r.id)).toEqual(batch.map((e, i) => (i === 3 ? undefined : (e as IommuEvent).id)));
    expect(calls.map((x) => [x.stream, x.seqs])).toEqual([
      [hostStreamName('a'), [1, 2, 3]],
      [hostStreamName('b'), [1, 2]],
      [hostStreamName('c'), [1, 2, 3]],
    ]);
  });

  it('given a request already in flight, when a second one arrives, then the second goes to the store whole (one append per host)', async () => {
    const store = openStore();
    let release!: () => void;
    const { store: spy, calls } = recording(store, { hold: new Promise<void>((r) => (release = r)) });
    const ingest = createIngestService({ store: spy, options: { sliceSize: 2 } });

    const first = ingest.ingest(eventsOf('a', 6));
    await new Promise((r) => setTimeout(r, 20));
    const sliced = calls.length;
    const second = ingest.ingest(eventsOf('b', 6));
    await new Promise((r) => setTimeout(r, 20));
    release();
    await Promise.all([first, second]);

    expect(sliced).toBe(3);
    expect(calls.filter((c) => c.stream === hostStreamName('b'))).toHaveLength(1);
  });

  it('given one slice’s append fails, when ingested, then the error is thrown only once every other append of the request settled', async () => {
    const store = openStore();
    const { store: spy, calls } = recording(store, { failCall: 1 });
    const ingest = createIngestService({ store: spy, options: { sliceSize: 2 } });

    await expect(ingest.ingest(eventsOf('a', 6))).rejects.toThrow(/append 1 failed/);

    expect(calls).toHaveLength(3);
    expect(calls.every((c) => c.settledAt !== undefined)).toBe(true);
  });

  it('given the store refuses one event for good (not retriable), when its host\'s slice is appended, then only that event is rejected, by the store, and its neighbours are stored', async () => {
    const store = openStore();
    const a = eventsOf('a', 4);
    const refusing: EventStore = Object.create(store) as EventStore;
    refusing.appendToStream = (stream, events, options) =>
      events.some((e) => e.id === a[2]!.id) ? Promise.reject(new ValidationError('event too large for the store')) : store.appendToStream(stream, events, options);
    refusing.appendToStreams = appendTogether(refusing.appendToStream);
    const ingest = createIngestService({ store: refusing });

    const summary = await ingest.ingest(a);

    expect(summary).toMatchObject({ accepted: 3, rejected: 1, duplicate: 0, conflict: 0 });
    expect(summary.results[2]).toMatchObject({ status: 'rejected', rejectedBy: 'store', errors: [{ path: 'events[2]', message: 'validation: event too large for the store' }] });
    const stored: string[] = [];
    for await (const r of store.readStream(hostStreamName('a'))) stored.push(r.event.id);
    expect(stored).toEqual([a[0]!.id, a[1]!.id, a[3]!.id]);
  });
});
