import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, isValidationError, type IommuEvent, type RecordedEvent } from '../../../../schemas/index.js';
import type { EventStore } from '../eventStore.js';
import { testEventStoreContract } from '../eventStore.features.js';
import { verifySqliteStore } from './tamper/verifyStore.js';
import { rowCheckOf } from './eventRow.js';
import { SCHEMA_VERSION } from './migrations.js';
import { STREAM_HEADS_BEFORE_V6 } from './testing/olderSchema.js';
import { getSqliteEventStore, type SqliteEventStore } from './sqliteEventStore.js';

// compile-time conformance: the adapter is an EventStore
const _conforms: (o: Parameters<typeof getSqliteEventStore>[0]) => EventStore = getSqliteEventStore;

const openTemp = async (writer: 'thread' | 'inline' = 'thread') => {
  const dir = mkdtempSync(join(tmpdir(), 'iommutrail-sqlite-'));
  const path = join(dir, 'events.sqlite');
  let store: SqliteEventStore = getSqliteEventStore({ path, durability: 'normal', pollIntervalMs: 20, writer });
  return {
    get store() {
      return store;
    },
    reopen: async () => {
      await store.close();
      store = getSqliteEventStore({ path, durability: 'normal', pollIntervalMs: 20, writer });
      return store;
    },
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

testEventStoreContract('SqliteEventStore', { open: () => openTemp('thread') });
testEventStoreContract('SqliteEventStore (inline writer)', { open: () => openTemp('inline') });

/** a store and a second writer on the same file, as another process would be, and one host's stream */
const twoWriters = async (host: string) => {
  const sut = await openTemp();
  const other = getSqliteEventStore({ path: sut.store.path, durability: 'normal', keyDir: false });
  return { sut, other, b: createEventBuilder({ host }), stream: hostStreamName(host) };
};

/** the chain of every stream, checked as `iommutrail verify` does */
const verifyChain = (path: string) => {
  const db = new Database(path, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return verifySqliteStore(db, undefined);
  } finally {
    db.close();
  }
};

describe('SqliteEventStore > two writers, caller arrays', () => {
  it('given a caller that reuses its array right after appending, when the commit is announced, then listeners are told exactly what was stored', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'reuse' });
    const told: string[] = [];
    sut.store.onAppended!((batch) => told.push(...batch.map((r) => `${r.globalPosition}:${r.event.type}`)));
    const buffer: IommuEvent[] = [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }), b.event('DriverUnbound', { device: '0000:01:00.0' })];
    const appended = sut.store.appendToStream(hostStreamName('reuse'), buffer);
    buffer.length = 0;
    buffer.push(b.event('DeviceAddedToGroup', { device: '0000:01:00.0', group: 3 }));
    await appended;
    const stored: string[] = [];
    for await (const r of sut.store.readAll()) stored.push(`${r.globalPosition}:${r.event.type}`);
    expect(told).toEqual(stored);
    expect(stored).toEqual(['1:DriverBound', '2:DriverUnbound']);
    await sut.dispose();
  });

  it('given another writer moved a device to a new group, when this writer appends a device-only event, then it is indexed under the new group', async () => {
    const { sut, other, b, stream } = await twoWriters('moved');
    const device = '0000:01:00.0';
    await sut.store.appendToStream(stream, [b.event('DeviceAddedToGroup', { device, group: 1 })]);
    await sut.store.appendToStream(stream, [b.event('DriverBound', { device, driver: 'vfio-pci' })]);
    await other.appendToStream(stream, [b.event('DeviceRemovedFromGroup', { device, group: 1 }), b.event('DeviceAddedToGroup', { device, group: 2 })]);
    await sut.store.appendToStream(stream, [b.event('DriverUnbound', { device })]);
    const inGroup = async (group: number) => {
      const types: string[] = [];
      for await (const r of sut.store.readByIndex({ host: 'moved', group })) types.push(r.event.type);
      return types;
    };
    expect(await inGroup(2)).toEqual(['DeviceAddedToGroup', 'DriverUnbound']);
    expect(await inGroup(1)).not.toContain('DriverUnbound');
    await other.close();
    await sut.dispose();
  });
});

describe('SqliteEventStore > chain computed ahead of the writer', () => {
  it('given a known head, when a burst of appends holds a conflict and a duplicate, then every guess that broke is recomputed and the chain verifies', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'burst' });
    const stream = hostStreamName('burst');
    const ev = (i: number) => b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' });
    const first = Array.from({ length: 5 }, (_, i) => ev(i));
    await sut.store.appendToStream(stream, first);
    const burst = await Promise.allSettled([
      sut.store.appendToStream(stream, [ev(5), ev(6)], { expectedRevision: 99n }),
      sut.store.appendToStream(stream, [first[2]!, ev(7), ev(8)]),
      sut.store.appendToStream(stream, [ev(9), ev(9 + 1)]),
    ]);
    expect(burst.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    await sut.store.appendToStream(stream, [ev(11)]);
    const revisions: bigint[] = [];
    for await (const r of sut.store.readStream(stream)) revisions.push(r.streamPosition);
    expect(revisions).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i)));
    const path = sut.store.path;
    await sut.store.close();
    expect(verifyChain(path)).toMatchObject({ ok: true, events: 10 });
    await sut.dispose();
  });

  it('given two stores writing one stream of one file, when they alternate, then each corrects its stale guess and the chain verifies', async () => {
    const { sut, other, b, stream } = await twoWriters('shared');
    for (let round = 0; round < 4; round++) {
      await sut.store.appendToStream(stream, [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
      await other.appendToStream(stream, [b.event('DriverUnbound', { device: '0000:01:00.0' })]);
    }
    await other.close();
    const path = sut.store.path;
    await sut.store.close();
    expect(verifyChain(path)).toMatchObject({ ok: true, events: 8 });
    await sut.dispose();
  });
});

describe('SqliteEventStore > specifics', () => {
  it('given a bad durability mode, when opening, then a validation error names the option', () => {
    let error: unknown;
    try {
      getSqliteEventStore({ path: join(tmpdir(), 'never.sqlite'), durability: 'fast' as never });
    } catch (e) {
      error = e;
    }
    expect(isValidationError(error)).toBe(true);
    expect((error as Error).message).toContain('durability');
  });

  it('given durability full, when opening, then WAL and synchronous=FULL are in force and the schema is migrated', async () => {
    const sut = await openTemp();
    const full = getSqliteEventStore({ path: join(sut.store.path + '-full'), durability: 'full' });
    expect(full.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(full.db.pragma('synchronous', { simple: true })).toBe(2n);
    expect(full.db.pragma('user_version', { simple: true })).toBe(BigInt(SCHEMA_VERSION));
    await full.close();
    expect(sut.store.db.pragma('synchronous', { simple: true })).toBe(1n);
    await sut.dispose();
  });

  it('given a store closed with events, when reopened read-only, then reads work and appends are refused', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'ro' });
    await sut.store.appendToStream(hostStreamName('ro'), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
    const path = sut.store.path;
    await sut.store.close();
    const ro = getSqliteEventStore({ path, readOnly: true });
    const read = [];
    for await (const r of ro.readAll()) read.push(r);
    expect(read).toHaveLength(1);
    await expect(ro.appendToStream(hostStreamName('ro'), [])).rejects.toThrow(/read-only/);
    await ro.close();
    await sut.dispose();
  });

  it('given a group read, when SQLite plans it, then it uses the index table rather than scanning events', async () => {
    const sut = await openTemp();
    const plan = sut.store.db
      .prepare(
        'EXPLAIN QUERY PLAN SELECT e.position FROM event_index i JOIN events e ON e.position = i.position WHERE i.key_id = (SELECT id FROM index_keys WHERE host = ? AND key = ?) AND i.position > ? ORDER BY i.position LIMIT 10',
      )
      .all('h', 'g:1', 0n) as { detail: string }[];
    const details = plan.map((p) => p.detail).join(' | ');
    expect(details).toMatch(/SEARCH i USING PRIMARY KEY/);
    expect(details).not.toMatch(/SCAN e/);
    const timePlan = sut.store.db
      .prepare('EXPLAIN QUERY PLAN SELECT position FROM events e WHERE e.stream = ? AND e.position > ? AND e.time_ns >= 1 AND e.time_ns <= 2 ORDER BY e.position')
      .all('host-h', 0n) as { detail: string }[];
    expect(timePlan.map((p) => p.detail).join(' | ')).toMatch(/SEARCH e USING (COVERING )?INDEX events_stream_time/);
    await sut.dispose();
  });

  it('given an onAppended listener, when a group commit holds a conflicting append beside good ones, then it is told exactly the committed events, in position order, equal to what a read returns', async () => {
    const sut = await openTemp();
    const a = createEventBuilder({ host: 'la' });
    const b = createEventBuilder({ host: 'lb' });
    const told: RecordedEvent[] = [];
    const unlisten = sut.store.onAppended!((batch) => told.push(...batch));
    const first = a.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
    const results = await Promise.allSettled([
      sut.store.appendToStream(hostStreamName('la'), [first, a.event('DriverUnbound', { device: '0000:01:00.0' })]),
      sut.store.appendToStream(hostStreamName('lb'), [b.event('DriverUnbound', { device: '0000:02:00.0' })], { expectedRevision: 5n }),
      sut.store.appendToStream(hostStreamName('lb'), [b.event('DriverBound', { device: '0000:02:00.0', driver: 'vfio-pci' })]),
      sut.store.appendToStream(hostStreamName('la'), [first]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const read: RecordedEvent[] = [];
    for await (const r of sut.store.readAll()) read.push(r);
    expect(read).toHaveLength(3);
    expect(told).toEqual(read);
    // the caller's own (immutable) objects: no copy, no re-parse
    expect(told[0]!.event).toBe(first);
    unlisten();
    await sut.store.appendToStream(hostStreamName('la'), [a.event('DriverUnbound', { device: '0000:01:00.0' })]);
    expect(told).toHaveLength(3);
    await sut.dispose();
  });

  it('given a stored row edited to break the catalogue, when read back, then the read fails naming the row and field', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'rd' });
    await sut.store.appendToStream(hostStreamName('rd'), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
    sut.store.db.prepare("UPDATE events SET json = replace(json, '0000:01:00.0', 'not-a-device')").run();
    let error: unknown;
    try {
      for await (const _ of sut.store.readAll()) void _;
    } catch (e) {
      error = e;
    }
    expect(isValidationError(error)).toBe(true);
    expect((error as Error).message).toMatch(/store position 1\.data\.device/);
    await sut.dispose();
  });

  it('reads #1: given appended events, then every row stores the CRC-32 of its stored bytes: the row check a trusted read compares instead of hashing the row twice', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'rc' });
    await sut.store.appendToStream(hostStreamName('rc'), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }), b.event('DriverUnbound', { device: '0000:01:00.0' })]);
    const rows = sut.store.db.prepare('SELECT json, crc FROM events ORDER BY position').all() as { json: string; crc: bigint | null }[];
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r.crc).toBe(BigInt(rowCheckOf(r.json)));
    await sut.dispose();
  });

  it('reads #1: given rows without a row check (written before it) or with a wrong one, when read, then each is trusted through its chain link, or parsed and named when its bytes changed', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'rv' });
    const events = [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }), b.event('DriverUnbound', { device: '0000:01:00.0' })];
    await sut.store.appendToStream(hostStreamName('rv'), events);
    sut.store.db.prepare('UPDATE events SET crc = NULL WHERE position = 1').run();
    sut.store.db.prepare('UPDATE events SET crc = crc + 1 WHERE position = 2').run();
    const read: RecordedEvent[] = [];
    for await (const r of sut.store.readAll()) read.push(r);
    expect(read.map((r) => r.event)).toEqual(events);
    // bytes edited, row check left as it was: not trusted, the parse names the field
    sut.store.db.prepare("UPDATE events SET json = replace(json, '0000:01:00.0', 'not-a-device'), crc = NULL WHERE position = 1").run();
    await expect((async () => {
      for await (const _ of sut.store.readStream(hostStreamName('rv'))) void _;
    })()).rejects.toThrow(/store position 1\.data\.device/);
    await sut.dispose();
  });

  it('reads #1: given a v3 file (no row check column), when opened read-only, then its events read back whole; opened writable, it is migrated and new rows carry the check', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'v3' });
    const first = b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
    await sut.store.appendToStream(hostStreamName('v3'), [first]);
    const path = sut.store.path;
    await sut.store.close();
    const raw = new Database(path);
    raw.exec('ALTER TABLE events DROP COLUMN crc');
    raw.exec(STREAM_HEADS_BEFORE_V6);
    raw.pragma('user_version = 3');
    raw.close();
    const ro = getSqliteEventStore({ path, readOnly: true });
    const read: RecordedEvent[] = [];
    for await (const r of ro.readStream(hostStreamName('v3'))) read.push(r);
    expect(read.map((r) => r.event)).toEqual([first]);
    await ro.close();
    const rw = await sut.reopen();
    await rw.appendToStream(hostStreamName('v3'), [b.event('DriverUnbound', { device: '0000:01:00.0' })]);
    expect(rw.db.prepare('SELECT crc FROM events ORDER BY position').all()).toEqual([{ crc: null }, { crc: expect.any(BigInt) }]);
    const all: RecordedEvent[] = [];
    for await (const r of rw.readAll()) all.push(r);
    expect(all.map((r) => r.event.type)).toEqual(['DriverBound', 'DriverUnbound']);
    await sut.dispose();
  });

  it('reads #1: given more events than several pages, when read whole, from a position or up to a count, then each comes once in position order', async () => {
    const sut = await openTemp();
    const b = createEventBuilder({ host: 'pg' });
    const events = Array.from({ length: 2_500 }, (_, i) => b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' }));
    await sut.store.appendToStream(hostStreamName('pg'), events);
    const positions = async (it: AsyncIterable<RecordedEvent>) => {
      const out: bigint[] = [];
      for await (const r of it) out.push(r.globalPosition);
      return out;
    };
    const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => BigInt(from + i));
    expect(await positions(sut.store.readAll())).toEqual(range(1, 2_500));
    expect(await positions(sut.store.readAll({ after: 70n, maxCount: 1_300 }))).toEqual(range(71, 1_300));
    expect(await positions(sut.store.readStream(hostStreamName('pg'), { fromRevision: 1_000n, toPosition: 2_200n }))).toEqual(range(1_001, 1_200));
    expect(await positions(sut.store.readStream(hostStreamName('pg'), { direction: 'backwards', maxCount: 1_100 }))).toEqual(range(1_401, 1_100).reverse());
    await sut.dispose();
  });
});
