import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type {
  ExpectedVersionConflictError} from '../../../schemas/index.js';
import {
  assertEvent,
  createEventBuilder,
  hostStreamName,
  isConflictError,
  isValidationError,
  type IommuEvent,
  type RecordedEvent,
} from '../../../schemas/index.js';
import type { EventStore } from './eventStore.js';

/**
 * The one behavioural contract of {@link EventStore}: every adapter's spec calls {@link testEventStoreContract}.
 * The suite never branches on the adapter; real differences come in as {@link ContractOptions}. It never
 * assumes an empty store either (an EventStoreDB server is shared): each test uses fresh host names and
 * looks only at its own streams.
 */
export interface StoreUnderTest {
  readonly store: EventStore;
  /** closes this store and opens the same data again, as a restarted process would */
  reopen(): Promise<EventStore>;
  /** closes whatever is open and removes temporary data */
  dispose(): Promise<void>;
}

export interface ContractOptions {
  /** a new store (fresh data for embedded adapters, a connection for servers) */
  readonly open: () => Promise<StoreUnderTest>;
  /** how long a live subscription may take to deliver, ms @defaultValue 5000 */
  readonly liveDeliveryTimeoutMs?: number;
}

const uniqueHost = (): string => `t-${randomBytes(5).toString('hex')}`;

const collect = async (it: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> => {
  const out: RecordedEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
};

const ids = (rs: readonly RecordedEvent[]): string[] => rs.map((r) => r.event.id);

const waitFor = async (check: () => boolean, timeoutMs: number, what: string): Promise<void> => {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** a small history of one host: topology with groups 7 and 12, then device-only operations */
const history = (host: string, startNs = 1_732_400_000_000_000_000n) => {
  const b = createEventBuilder({ host, startNs, stepNs: 1_000n });
  return {
    builder: b,
    events: [
      b.event('TopologySnapshotTaken', {
        capabilities: { iommu: true, interruptRemapping: true },
        groups: [
          { group: 7, devices: ['0000:01:00.0', '0000:01:00.1'] },
          { group: 12, devices: ['0000:03:00.0'] },
        ],
        devices: [
          { device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'nouveau', group: 7 },
          { device: '0000:01:00.1', vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 7 },
          { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: 12 },
        ],
      }),
      b.event('DriverUnbound', { device: '0000:03:00.0' }),
      b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' }),
      b.event('DriverUnbound', { device: '0000:01:00.0', driver: 'nouveau' }),
      b.event('VfioGroupOpened', { group: 12, groupFd: '4242:3', outcome: { ok: true } }),
    ] as IommuEvent[],
  };
};

export const testEventStoreContract = (title: string, options: ContractOptions): void => {
  const liveTimeout = options.liveDeliveryTimeoutMs ?? 5000;
  const withStore = async (body: (sut: StoreUnderTest) => Promise<void>): Promise<void> => {
    const sut = await options.open();
    try {
      await body(sut);
    } finally {
      await sut.dispose();
    }
  };

  describe(`${title} > append`, () => {
    it('given no stream, when appending with no_stream, then the events get revisions 0.. in order', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const { events } = history(host);
        const r = await store.appendToStream(hostStreamName(host), events, { expectedRevision: 'no_stream' });
        expect(r.nextExpectedRevision).toBe(BigInt(events.length - 1));
        expect(r.outcomes).toEqual(events.map(() => 'appended'));
        const read = await collect(store.readStream(hostStreamName(host)));
        expect(ids(read)).toEqual(events.map((e) => e.id));
        expect(read.map((x) => x.streamPosition)).toEqual(events.map((_, i) => BigInt(i)));
        expect(read.at(-1)!.globalPosition).toBe(r.lastPosition);
      }));

    it('given a stream at revision n, when appending with exactly n, then it succeeds; with another revision it conflicts and writes nothing', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const { events, builder } = history(host);
        const stream = hostStreamName(host);
        const first = await store.appendToStream(stream, events.slice(0, 2));
        const next = await store.appendToStream(stream, events.slice(2, 3), { expectedRevision: first.nextExpectedRevision });
        expect(next.nextExpectedRevision).toBe(first.nextExpectedRevision + 1n);
        const late = builder.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
        const error = await store.appendToStream(stream, [late], { expectedRevision: first.nextExpectedRevision }).catch((e: unknown) => e);
        expect(isConflictError(error)).toBe(true);
        expect((error as ExpectedVersionConflictError).streamName).toBe(stream);
        const noStream = await store.appendToStream(stream, [late], { expectedRevision: 'no_stream' }).catch((e: unknown) => e);
        expect(isConflictError(noStream)).toBe(true);
        expect(await collect(store.readStream(stream))).toHaveLength(3);
      }));

    it('given stored events, when the same ids are appended again with a stale revision, then they are reported duplicate and not stored twice', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const { events, builder } = history(host);
        const stream = hostStreamName(host);
        const first = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
        const again = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
        expect(again.outcomes).toEqual(events.map(() => 'duplicate'));
        expect(again.conflicts).toEqual([]);
        expect(again.nextExpectedRevision).toBe(first.nextExpectedRevision);
        const extra = builder.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
        const mixed = await store.appendToStream(stream, [events[0]!, extra, extra]);
        expect(mixed.outcomes).toEqual(['duplicate', 'appended', 'duplicate']);
        expect(ids(await collect(store.readStream(stream)))).toEqual([...events, extra].map((e) => e.id));
      }));

    it('hardening #12: given a stored event, when an event with the same id but other content is appended, then it is a conflict naming the stored event and nothing of it is written', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const { events, builder } = history(host);
        const stream = hostStreamName(host);
        await store.appendToStream(stream, events.slice(0, 3));
        const [stored] = (await collect(store.readStream(stream, { fromRevision: 1n, maxCount: 1 }))) as [RecordedEvent];
        const changed = { ...events[1]!, seq: 999 } as IommuEvent;
        const fresh = builder.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
        const r = await store.appendToStream(stream, [changed, fresh, events[2]!]);
        expect(r.outcomes).toEqual(['conflict', 'appended', 'duplicate']);
        expect(r.conflicts).toEqual([
          {
            index: 0,
            stored: { id: events[1]!.id, streamName: stream, revision: 1n, position: stored.globalPosition, host, seq: events[1]!.seq },
          },
        ]);
        const read = await collect(store.readStream(stream));
        expect(ids(read)).toEqual([...events.slice(0, 3), fresh].map((e) => e.id));
        expect(read[1]!.event.seq).toBe(events[1]!.seq);
      }));

    it('hardening #12: given one append holding an id twice with different content, then the second is a conflict naming the first, and a third equal copy is a duplicate', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const { events } = history(host);
        const stream = hostStreamName(host);
        const changed = { ...events[0]!, seq: 999 } as IommuEvent;
        const r = await store.appendToStream(stream, [events[0]!, changed, events[0]!]);
        expect(r.outcomes).toEqual(['appended', 'conflict', 'duplicate']);
        expect(r.conflicts.map((c) => ({ index: c.index, id: c.stored.id, revision: c.stored.revision, seq: c.stored.seq }))).toEqual([
          { index: 1, id: events[0]!.id, revision: 0n, seq: events[0]!.seq },
        ]);
        const read = await collect(store.readStream(stream));
        expect(read).toHaveLength(1);
        expect(r.conflicts[0]!.stored.position).toBe(read[0]!.globalPosition);
      }));

    it('hardening #12: given a stored event, when it is re-sent with its id in upper case, then the catalogue normalises the id and the store answers duplicate', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const raw = createEventBuilder({ host }).raw('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
        const stream = hostStreamName(host);
        await store.appendToStream(stream, [assertEvent(raw)]);
        const upper = assertEvent({ ...raw, id: String(raw.id).toUpperCase() });
        const r = await store.appendToStream(stream, [upper]);
        expect(r.outcomes).toEqual(['duplicate']);
        expect(await collect(store.readStream(stream))).toHaveLength(1);
      }));

    it('issue 23: given appends to several streams in one appendToStreams, then each is answered in input order as appendToStream would, a failing one failing alone, and a stream appended twice keeps call order', () =>
      withStore(async ({ store }) => {
        const [h1, h2, h3] = [uniqueHost(), uniqueHost(), uniqueHost()];
        const a = history(h1).events;
        const b = history(h2).events;
        const c = history(h3).events;
        await store.appendToStream(hostStreamName(h2), b.slice(0, 1));
        const results = await store.appendToStreams([
          { streamName: hostStreamName(h1), events: a.slice(0, 2), options: { expectedRevision: 'no_stream' } },
          { streamName: hostStreamName(h2), events: b.slice(1), options: { expectedRevision: 'no_stream' } },
          { streamName: hostStreamName(h3), events: c },
          { streamName: hostStreamName(h1), events: [...a.slice(1, 2), ...a.slice(2)], options: { expectedRevision: 1n } },
          { streamName: hostStreamName(h3), events: [a[0]!] },
        ]);
        expect(results.map((r) => r.ok)).toEqual([true, false, true, true, false]);
        expect(results[0]).toMatchObject({ ok: true, result: { nextExpectedRevision: 1n, outcomes: ['appended', 'appended'] } });
        expect(isConflictError((results[1] as { error: unknown }).error)).toBe(true);
        expect(results[3]).toMatchObject({ ok: true, result: { nextExpectedRevision: BigInt(a.length - 1), outcomes: ['duplicate', ...a.slice(2).map(() => 'appended')] } });
        expect(isValidationError((results[4] as { error: unknown }).error)).toBe(true);
        expect(ids(await collect(store.readStream(hostStreamName(h1))))).toEqual(a.map((e) => e.id));
        expect(ids(await collect(store.readStream(hostStreamName(h2))))).toEqual([b[0]!.id]);
        expect(ids(await collect(store.readStream(hostStreamName(h3))))).toEqual(c.map((e) => e.id));
      }));

    it('given an event of another host, when appending it to a host stream, then a validation error names the event', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const other = history(uniqueHost()).events[0]!;
        const error = await store.appendToStream(hostStreamName(host), [other]).catch((e: unknown) => e);
        expect(isValidationError(error)).toBe(true);
        expect((error as Error).message).toContain('events[0].host');
      }));
  });

  describe(`${title} > read`, () => {
    it('given a stream, when reading forwards from a revision or backwards from the end, then order and bounds hold', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const { events } = history(host);
        const stream = hostStreamName(host);
        await store.appendToStream(stream, events);
        expect(ids(await collect(store.readStream(stream, { fromRevision: 2n })))).toEqual(events.slice(2).map((e) => e.id));
        expect(ids(await collect(store.readStream(stream, { direction: 'backwards', maxCount: 2 })))).toEqual(
          [events[4]!, events[3]!].map((e) => e.id),
        );
        expect(ids(await collect(store.readStream(stream, { direction: 'backwards', fromRevision: 1n })))).toEqual(
          [events[1]!, events[0]!].map((e) => e.id),
        );
        expect(await collect(store.readStream(hostStreamName(uniqueHost())))).toEqual([]);
      }));

    it('time travel #2: given interleaved appends to two streams, when reading a stream up to a global position, then exactly its events at or before it come back, in both directions', () =>
      withStore(async ({ store }) => {
        const a = history(uniqueHost());
        const b = history(uniqueHost());
        const streamA = hostStreamName(a.events[0]!.host);
        await store.appendToStream(streamA, a.events.slice(0, 2));
        await store.appendToStream(hostStreamName(b.events[0]!.host), b.events);
        await store.appendToStream(streamA, a.events.slice(2));
        const stored = await collect(store.readStream(streamA));
        const bound = stored[2]!.globalPosition;
        expect(ids(await collect(store.readStream(streamA, { toPosition: bound })))).toEqual(a.events.slice(0, 3).map((e) => e.id));
        expect(ids(await collect(store.readStream(streamA, { fromRevision: 1n, toPosition: bound - 1n })))).toEqual([a.events[1]!.id]);
        expect(ids(await collect(store.readStream(streamA, { direction: 'backwards', toPosition: bound, maxCount: 2 })))).toEqual([a.events[2]!.id, a.events[1]!.id]);
        expect(await collect(store.readStream(streamA, { toPosition: stored[0]!.globalPosition - 1n }))).toEqual([]);
      }));

    it('given appends to several streams, when reading all after a position, then events come in commit order with rising positions', () =>
      withStore(async ({ store }) => {
        const before = await store.headPosition();
        const a = history(uniqueHost());
        const b = history(uniqueHost());
        await store.appendToStream(hostStreamName(a.events[0]!.host), a.events.slice(0, 2));
        await store.appendToStream(hostStreamName(b.events[0]!.host), b.events.slice(0, 3));
        await store.appendToStream(hostStreamName(a.events[0]!.host), a.events.slice(2));
        const mine = new Set([...a.events, ...b.events].map((e) => e.id));
        const all = (await collect(store.readAll({ after: before }))).filter((r) => mine.has(r.event.id));
        expect(ids(all)).toEqual([...a.events.slice(0, 2), ...b.events.slice(0, 3), ...a.events.slice(2)].map((e) => e.id));
        for (let i = 1; i < all.length; i++) expect(all[i]!.globalPosition > all[i - 1]!.globalPosition).toBe(true);
        expect(await store.headPosition()).toBeGreaterThanOrEqual(all.at(-1)!.globalPosition);
        const page = await collect(store.readAll({ after: all[1]!.globalPosition, maxCount: 2 }));
        expect(page.map((r) => r.globalPosition)).toEqual([all[2]!.globalPosition, all[3]!.globalPosition]);
      }));

    it('given a topology and device operations, when reading by group, device or time, then exactly the matching events come back', () =>
      withStore(async ({ store }) => {
        const host = uniqueHost();
        const { events } = history(host);
        const other = history(uniqueHost()).events;
        await store.appendToStream(hostStreamName(host), events);
        await store.appendToStream(hostStreamName(other[0]!.host), other);
        const byGroup12 = await collect(store.readByIndex({ host, group: 12 }));
        // the snapshot names group 12; the driver events name only its device, filed under its group
        expect(ids(byGroup12)).toEqual([events[0]!, events[1]!, events[2]!, events[4]!].map((e) => e.id));
        const byGroup7 = await collect(store.readByIndex({ host, group: 7 }));
        expect(ids(byGroup7)).toEqual([events[0]!, events[3]!].map((e) => e.id));
        const byDevice = await collect(store.readByIndex({ host, device: '0000:01:00.0' }));
        expect(ids(byDevice)).toEqual([events[0]!, events[3]!].map((e) => e.id));
        const both = await collect(store.readByIndex({ host, group: 12, device: '0000:03:00.0' }));
        expect(ids(both)).toEqual([events[0]!, events[1]!, events[2]!].map((e) => e.id));
        const t1 = BigInt(events[1]!.time);
        const t3 = BigInt(events[3]!.time);
        const byTime = await collect(store.readByIndex({ host, fromTimeNs: t1, toTimeNs: t3 }));
        expect(ids(byTime)).toEqual(events.slice(1, 4).map((e) => e.id));
        const groupAndTime = await collect(store.readByIndex({ host, group: 12, fromTimeNs: t1, toTimeNs: t3 }));
        expect(ids(groupAndTime)).toEqual([events[1]!, events[2]!].map((e) => e.id));
        const paged = await collect(store.readByIndex({ host, group: 12, after: byGroup12[1]!.globalPosition, maxCount: 1 }));
        expect(ids(paged)).toEqual([events[2]!.id]);
        expect(await collect(store.readByIndex({ host, group: 99 }))).toEqual([]);
      }));
  });

  describe(`${title} > subscribe`, () => {
    it('given stored events, when subscribing, then it catches up, signals it, and then receives live appends', () =>
      withStore(async ({ store }) => {
        const from = await store.headPosition();
        const host = uniqueHost();
        const { events } = history(host);
        await store.appendToStream(hostStreamName(host), events.slice(0, 3));
        const seen: RecordedEvent[] = [];
        let caughtUpAt = -1;
        const sub = await store.subscribe({
          subscriberName: `sub-${host}`,
          fromPosition: from,
          handle: (batch) => {
            seen.push(...batch.filter((r) => r.event.host === host));
          },
          onCaughtUp: () => (caughtUpAt = seen.length),
        });
        await waitFor(() => caughtUpAt >= 0, liveTimeout, 'catch-up');
        expect(caughtUpAt).toBe(3);
        await store.appendToStream(hostStreamName(host), events.slice(3));
        await waitFor(() => seen.length === events.length, liveTimeout, 'live events');
        await sub.stop();
        expect(ids(seen)).toEqual(events.map((e) => e.id));
        expect(sub.position()).toBe(seen.at(-1)!.globalPosition);
      }));

    it('given a subscriber that stopped, when it restarts after more appends, then it resumes exactly after its checkpoint', () =>
      withStore(async (sut) => {
        const from = await sut.store.headPosition();
        const host = uniqueHost();
        const { events } = history(host);
        const name = `resume-${host}`;
        const seen: string[] = [];
        const handle = (batch: readonly RecordedEvent[]): void => {
          for (const r of batch) if (r.event.host === host) seen.push(r.event.id);
        };
        await sut.store.appendToStream(hostStreamName(host), events.slice(0, 2));
        const first = await sut.store.subscribe({ subscriberName: name, fromPosition: from, handle });
        await waitFor(() => seen.length === 2, liveTimeout, 'first two events');
        await first.stop();
        await sut.store.appendToStream(hostStreamName(host), events.slice(2));
        const reopened = await sut.reopen();
        // fromPosition only applies when no checkpoint is stored: here the checkpoint wins
        const second = await reopened.subscribe({ subscriberName: name, fromPosition: from, handle });
        await waitFor(() => seen.length >= events.length, liveTimeout, 'remaining events');
        await second.stop();
        expect(seen).toEqual(events.map((e) => e.id));
      }));

    it('given a handler that throws, when the batch fails, then the error is reported and the checkpoint stays before it', () =>
      withStore(async ({ store }) => {
        const from = await store.headPosition();
        const host = uniqueHost();
        const { events } = history(host);
        await store.appendToStream(hostStreamName(host), events);
        const boom = new Error('projector failed');
        let reported: unknown;
        const sub = await store.subscribe({
          subscriberName: `fail-${host}`,
          fromPosition: from,
          batchSize: 1,
          handle: (batch) => {
            if (batch.some((r) => r.event.id === events[2]!.id)) throw boom;
          },
          onError: (e) => (reported = e),
        });
        await waitFor(() => reported !== undefined, liveTimeout, 'the error');
        await expect(sub.stop()).rejects.toBe(boom);
        expect(reported).toBe(boom);
        const all = await collect(store.readStream(hostStreamName(host)));
        expect(sub.position()).toBe(all[1]!.globalPosition);
      }));

    it('given many concurrent appends to many streams, when a live subscriber runs, then it gets every event once in position order', () =>
      withStore(async ({ store }) => {
        const from = await store.headPosition();
        const hosts = Array.from({ length: 8 }, uniqueHost);
        const mine = new Set(hosts);
        const seen: RecordedEvent[] = [];
        const sub = await store.subscribe({
          subscriberName: `hwm-${hosts[0]}`,
          fromPosition: from,
          batchSize: 7,
          handle: (batch) => {
            seen.push(...batch.filter((r) => mine.has(r.event.host)));
          },
        });
        const builders = hosts.map((h) => createEventBuilder({ host: h }));
        const appends: Promise<unknown>[] = [];
        for (let round = 0; round < 5; round++) {
          builders.forEach((b, i) => {
            appends.push(store.appendToStream(hostStreamName(hosts[i]!), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]));
          });
        }
        await Promise.all(appends);
        const expected = hosts.length * 5;
        await waitFor(() => seen.length >= expected, liveTimeout, 'all concurrent events');
        await sub.stop();
        expect(seen).toHaveLength(expected);
        expect(new Set(ids(seen)).size).toBe(expected);
        for (let i = 1; i < seen.length; i++) expect(seen[i]!.globalPosition > seen[i - 1]!.globalPosition).toBe(true);
        expect(await store.headPosition()).toBeGreaterThanOrEqual(seen.at(-1)!.globalPosition);
      }));
  });
};
