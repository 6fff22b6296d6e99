import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, type IommuEvent } from '../../../../schemas/index.js';
import { verifySqliteStore } from './tamper/verifyStore.js';
import { getSqliteEventStore, type SqliteEventStore } from './sqliteEventStore.js';

/**
 * Issue 23: a delivery spanning many hosts reaches the single writer as one batch; the writer stores it as one
 * unit (one transaction, one statement reading every head it extends, no head written apart from the events:
 * schema v6), not one savepoint, head read and head update per host. The per-append outcomes (duplicates,
 * conflicts, expected revisions) stay per append.
 */
let dir: string;
let statements: string[];
const HOSTS = 200;
const host = (i: number): string => `node-${String(i).padStart(4, '0')}`;

const open = (): SqliteEventStore =>
  getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', writer: 'inline', sealIntervalMs: 3_600_000, traceWriter: (sql) => statements.push(sql) });
const oneEach = (from = 0): { streamName: string; events: IommuEvent[] }[] =>
  Array.from({ length: HOSTS }, (_, i) => ({ streamName: hostStreamName(host(i)), events: [createEventBuilder({ host: host(i), firstSeq: from + 1 }).event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })] }));
const count = (re: RegExp): number => statements.filter((s) => re.test(s)).length;
/** the writer's statement reading a batch's heads (each stream's last event), and its one-stream form (traced with their parameters) */
const BATCH_HEADS = /\) j JOIN events e ON e\.stream = j\.value/;
const ONE_HEAD = /FROM events WHERE stream = .* ORDER BY revision DESC/;
/** what an append writes: the events, their index and log rows, device groups, a seal; no head of its own */
const APPEND_WRITES = /^(INSERT (OR IGNORE )?INTO|DELETE FROM) (events|event_index|index_keys|device_groups|tlog_hashes|tlog_checkpoints|seals) /;
/** the types of a host's events filed under a group, in order */
const typesUnder = async (store: SqliteEventStore, name: string, group: number): Promise<string[]> => {
  const types: string[] = [];
  for await (const r of store.readByIndex({ host: name, group })) types.push(r.event.type);
  return types;
};
/** the store's file, opened read-only, verifies without a finding */
const expectChainsVerify = async (): Promise<void> => {
  const db = getSqliteEventStore({ path: join(dir, 'events.sqlite'), readOnly: true });
  try {
    expect(verifySqliteStore(db.db, undefined).findings).toEqual([]);
  } finally {
    await db.close();
  }
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-multi-'));
  statements = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('multi-stream append (issue 23)', () => {
  it('issue 23 writer: appends to 200 hosts made together are one transaction with one head read and no head written, not a savepoint, a read and an upsert per host', async () => {
    const store = open();
    try {
      // given appends to 200 hosts issued in the same turn (as the ingest pipeline issues a delivery's), twice:
      // the second round extends the heads the first one left
      for (const round of [0, 1]) {
        statements = [];
        await Promise.all(oneEach(round).map((a) => store.appendToStream(a.streamName, a.events)));
        // then the writer ran one transaction, no savepoint per append, one statement read every head, and
        // nothing but the events (and their index and log rows) was written: a head is its stream's last event
        expect(count(/^BEGIN/)).toBe(1);
        expect(count(/^SAVEPOINT/)).toBeLessThanOrEqual(1);
        expect(count(BATCH_HEADS)).toBe(1);
        expect(count(ONE_HEAD)).toBe(0);
        expect(statements.filter((s) => /^(INSERT|UPDATE|DELETE|REPLACE)/.test(s) && !APPEND_WRITES.test(s))).toEqual([]);
      }
    } finally {
      await store.close();
    }
    // and each second event chains from the first (read back as each stream's head)
    await expectChainsVerify();
  });

  it('issue 23 writer: the index keys and device groups of 200 new hosts (a topology snapshot each) are written by a few statements, not a few per host', async () => {
    const store = open();
    try {
      const snapshots = Array.from({ length: HOSTS }, (_, i) => {
        const b = createEventBuilder({ host: host(i) });
        const devices = ['0000:01:00.0', '0000:02:00.0', '0000:03:00.0'];
        return {
          streamName: hostStreamName(host(i)),
          events: [
            b.event('TopologySnapshotTaken', {
              capabilities: { iommu: true, interruptRemapping: true },
              groups: devices.map((d, g) => ({ group: g + 1, devices: [d] })),
              devices: devices.map((d, g) => ({ device: d, vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: g + 1 })),
            }),
            b.event('DriverBound', { device: '0000:02:00.0', driver: 'vfio-pci' }),
          ],
        };
      });
      statements = [];
      await store.appendToStreams(snapshots);
      expect(count(/index_keys/)).toBeLessThanOrEqual(2);
      // the hosts' stored members read by one statement (a snapshot is compared with them), rewritten by two
      expect(count(/^SELECT host, device, grp FROM device_groups WHERE host IN/)).toBe(1);
      expect(count(/FROM device_groups WHERE host = /)).toBe(0);
      expect(count(/^(DELETE FROM|INSERT INTO) device_groups/)).toBeLessThanOrEqual(2);
      // the device-only event is still filed under its device's group
      expect(await typesUnder(store, host(7), 2)).toEqual(['TopologySnapshotTaken', 'DriverBound']);
    } finally {
      await store.close();
    }
  });

  it('issue 23 writer: a topology snapshot that restates a host\'s groups (read back when not cached) rewrites none of its device-group rows; one that moves a device rewrites them', async () => {
    const snapshot = (b: ReturnType<typeof createEventBuilder>, groupOf3: number) =>
      b.event('TopologySnapshotTaken', {
        capabilities: { iommu: true, interruptRemapping: true },
        groups: [{ group: 1, devices: ['0000:01:00.0'] }, { group: groupOf3, devices: ['0000:03:00.0'] }],
        devices: [
          { device: '0000:01:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: 1 },
          { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: groupOf3 },
        ],
      });
    const b = createEventBuilder({ host: host(1) });
    let store = open();
    await store.appendToStream(hostStreamName(host(1)), [snapshot(b, 3)]);
    // a new writer: nothing cached, the stored members are read
    await store.close();
    store = open();
    try {
      statements = [];
      await store.appendToStream(hostStreamName(host(1)), [snapshot(b, 3)]);
      expect(count(/^(DELETE FROM|INSERT INTO) device_groups/)).toBe(0);
      statements = [];
      await store.appendToStream(hostStreamName(host(1)), [snapshot(b, 4), b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' })]);
      expect(count(/^(DELETE FROM|INSERT INTO) device_groups/)).toBe(2);
      // the device-only event is filed under the device's new group
      expect(await typesUnder(store, host(1), 4)).toEqual(['TopologySnapshotTaken', 'DriverBound']);
    } finally {
      await store.close();
    }
    await expectChainsVerify();
  });

  it('issue 23 writer: appendToStreams answers per append, in order: appended, duplicate, conflict and expected-revision failures stay with their own append', async () => {
    const store = open();
    try {
      const first = oneEach();
      const r1 = await store.appendToStreams(first);
      expect(r1.map((r) => r.ok && r.result.outcomes)).toEqual(first.map(() => ['appended']));
      expect(count(BATCH_HEADS)).toBe(1);
      // a retry of host 0, a conflicting id on host 1, a stale expected revision on host 2, a new event on host 3
      const b3 = createEventBuilder({ host: host(3), firstSeq: 2, startNs: 1_800_000_000_000_000_000n });
      const changed = { ...first[1]!.events[0]!, time: `${first[1]!.events[0]!.time.slice(0, -1)}9` } as IommuEvent;
      const r2 = await store.appendToStreams([
        { streamName: first[0]!.streamName, events: first[0]!.events },
        { streamName: first[1]!.streamName, events: [changed] },
        { streamName: first[2]!.streamName, events: [createEventBuilder({ host: host(2), firstSeq: 2, startNs: 1_800_000_000_000_000_000n }).event('DriverUnbound', { device: '0000:01:00.0' })], options: { expectedRevision: 5n } },
        { streamName: hostStreamName(host(3)), events: [b3.event('DriverUnbound', { device: '0000:01:00.0' })], options: { expectedRevision: 0n } },
      ]);
      expect(r2[0]).toMatchObject({ ok: true, result: { outcomes: ['duplicate'] } });
      expect(r2[1]).toMatchObject({ ok: true, result: { outcomes: ['conflict'], conflicts: [{ index: 0, stored: { id: first[1]!.events[0]!.id } }] } });
      expect(r2[2]).toMatchObject({ ok: false, error: { kind: 'conflict', streamName: first[2]!.streamName } });
      expect(r2[3]).toMatchObject({ ok: true, result: { outcomes: ['appended'], nextExpectedRevision: 1n, lastPosition: BigInt(HOSTS + 1) } });
    } finally {
      await store.close();
    }
    await expectChainsVerify();
  });

  it("issue 23 writer: a host's index keys are read together once a batch names any of them, so its later events need no read of index_keys", async () => {
    // given 200 hosts whose devices A and B joined groups 7 and 8 (four index keys each), and a new writer (nothing cached)
    const b = Array.from({ length: HOSTS }, (_, i) => createEventBuilder({ host: host(i) }));
    const each = (f: (i: number) => IommuEvent[]) => Array.from({ length: HOSTS }, (_, i) => ({ streamName: hostStreamName(host(i)), events: f(i) }));
    let store = open();
    await store.appendToStreams(each((i) => [b[i]!.event('DeviceAddedToGroup', { device: '0000:01:00.0', group: 7 }), b[i]!.event('DeviceAddedToGroup', { device: '0000:02:00.0', group: 8 })]));
    await store.close();
    store = open();
    try {
      // when each host's device A is bound: its keys d:A and g:7 are read, one statement for all hosts
      statements = [];
      await store.appendToStreams(each((i) => [b[i]!.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]));
      expect(count(/index_keys/)).toBe(1);
      // and, the binding being a device-only event filed under the device's group, every host's groups are read by one statement too
      expect(count(/FROM device_groups WHERE host = /)).toBe(0);
      expect(count(/FROM device_groups WHERE host IN/)).toBe(1);
      // then binding device B (keys d:B and g:8, stored, not named since) reads nothing more: they came with the host's others
      statements = [];
      await store.appendToStreams(each((i) => [b[i]!.event('DriverBound', { device: '0000:02:00.0', driver: 'vfio-pci' })]));
      expect(count(/index_keys/)).toBe(0);
      expect(await typesUnder(store, host(9), 8)).toEqual(['DeviceAddedToGroup', 'DriverBound']);
    } finally {
      await store.close();
    }
  });

  it('issue 23 wire format: a packed batch to the writer thread mixing a conflict, a duplicate and a stale expected revision keeps every good append whole, its chain and index right', async () => {
    // given a store whose writer runs on its thread (the packed batch crosses a thread boundary), and one event
    // on each of 200 hosts, so the next round's chains are guessed ahead on this thread
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', sealIntervalMs: 3_600_000 });
    try {
      const first = oneEach();
      await store.appendToStreams(first);
      const next = (i: number) => createEventBuilder({ host: host(i), firstSeq: 2, startNs: 1_800_000_000_000_000_000n });
      const changed = { ...first[1]!.events[0]!, time: `${first[1]!.events[0]!.time.slice(0, -1)}9` } as IommuEvent;
      // when one call appends: a retry of host 0's event, host 1's id with other content, a stale expected
      // revision on host 2, and two events on each other host (a device moved to group 7, then a device-only event)
      const good = Array.from({ length: HOSTS - 3 }, (_, k) => {
        const b = next(k + 3);
        return { streamName: hostStreamName(host(k + 3)), events: [b.event('DeviceAddedToGroup', { device: '0000:01:00.0', group: 7 }), b.event('DriverUnbound', { device: '0000:01:00.0' })] };
      });
      const results = await store.appendToStreams([
        { streamName: first[0]!.streamName, events: first[0]!.events },
        { streamName: first[1]!.streamName, events: [changed] },
        { streamName: first[2]!.streamName, events: [next(2).event('DriverUnbound', { device: '0000:01:00.0' })], options: { expectedRevision: 5n } },
        ...good,
      ]);
      // then each append has its own answer
      expect(results[0]).toMatchObject({ ok: true, result: { outcomes: ['duplicate'] } });
      expect(results[1]).toMatchObject({ ok: true, result: { outcomes: ['conflict'], conflicts: [{ index: 0, stored: { id: first[1]!.events[0]!.id, streamName: first[1]!.streamName } }] } });
      expect(results[2]).toMatchObject({ ok: false, error: { kind: 'conflict', streamName: first[2]!.streamName } });
      expect(results.slice(3).map((r) => r.ok && r.result.outcomes)).toEqual(good.map(() => ['appended', 'appended']));
      expect(results.slice(3).map((r) => r.ok && r.result.nextExpectedRevision)).toEqual(good.map(() => 2n));
      // and the good appends are stored whole, one after another in call order, each filed under its device's new group
      const lastPositions = results.slice(3).map((r) => (r.ok ? r.result.lastPosition : -1n));
      expect(lastPositions).toEqual(good.map((_, k) => BigInt(HOSTS + 2 * (k + 1))));
      for (const i of [3, 100, HOSTS - 1]) {
        const types: string[] = [];
        for await (const r of store.readStream(hostStreamName(host(i)))) types.push(r.event.type);
        expect(types).toEqual(['DriverBound', 'DeviceAddedToGroup', 'DriverUnbound']);
        expect(await typesUnder(store, host(i), 7)).toEqual(['DeviceAddedToGroup', 'DriverUnbound']);
      }
      // the failed and the unchanged streams hold only their first event
      for (const i of [0, 1, 2]) {
        let n = 0;
        for await (const _ of store.readStream(hostStreamName(host(i)))) n++;
        expect(n).toBe(1);
      }
    } finally {
      await store.close();
    }
    // and every chain verifies (the guessed chains of the good appends, the writer's own after the failures)
    await expectChainsVerify();
  });

  it('hosts #23: the chain heads kept for hashing appends ahead of the writer are bounded by maxGuessedHeads, not one per stream ever appended, and the chains stay right', async () => {
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', writer: 'inline', sealIntervalMs: 3_600_000, maxGuessedHeads: 20 });
    try {
      // given appends to 200 hosts, three rounds (each host's head guessed from the round before)
      for (let round = 0; round < 3; round++) await store.appendToStreams(oneEach(round).map((a) => ({ ...a, options: { expectedRevision: 'any' as const } })));
      // then at most 20 heads are kept
      expect(store.guessedHeads()).toBeLessThanOrEqual(20);
      expect(store.guessedHeads()).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
    await expectChainsVerify();
  });
});
