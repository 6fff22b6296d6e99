import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, parseEvent, type IommuEvent } from '../../../schemas/index.js';
import { loadConfig } from '../../shared/config/config.js';
import type { EventStore } from '../../shared/eventStore/eventStore.js';
import { getSqliteEventStore } from '../../shared/eventStore/index.js';
import { createLiveProjection } from './liveProjection.js';
import { openSnapshotStore, type SnapshotStore } from './snapshotStore.js';

/**
 * Issue 23: nothing the live projection holds per host grows with the host's history (closed violations), and
 * what a checkpoint writes stays bounded per event folded, whatever the number of hosts.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'iommutrail-bounds-'));
  dirs.push(d);
  return d;
};
const T0 = 1_732_406_400_000_000_000n;
const SECOND = 1_000_000_000n;
const valid = (raw: unknown): IommuEvent => {
  const r = parseEvent(raw);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

/** a host whose GPU bind is refused while its audio function is on snd_hda_intel, `rounds` times over: each refusal opens a violation, the audio's rebind closes it */
const refusals = (host: string, rounds: number): IommuEvent[] => {
  const b = createEventBuilder({ host, source: 'collector', startNs: T0, stepNs: SECOND });
  const events: unknown[] = [
    b.raw('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true },
      groups: [{ group: 7, devices: ['0000:01:00.0', '0000:01:00.1'] }],
      devices: [
        { device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'vfio-pci', group: 7 },
        { device: '0000:01:00.1', vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 7 },
      ],
    }),
    b.raw('IommufdOpened', { ictx: '1:3', outcome: { ok: true } }),
    b.raw('VfioDeviceOpened', { device: '0000:01:00.0', deviceFd: '1:4', outcome: { ok: true } }),
  ];
  for (let i = 0; i < rounds; i++) {
    events.push(
      b.raw('VfioDeviceBindIommufdIssued', { device: '0000:01:00.0', deviceFd: '1:4', ictx: '1:3', outcome: { ok: false, errno: 'EPERM' } }),
      b.raw('DriverUnbound', { device: '0000:01:00.1', driver: 'snd_hda_intel' }),
      b.raw('DriverBound', { device: '0000:01:00.1', driver: 'snd_hda_intel' }),
    );
  }
  return events.map(valid);
};

const append = async (store: EventStore, events: readonly IommuEvent[]): Promise<void> => {
  for (let i = 0; i < events.length; i += 2_000) await store.appendToStream(hostStreamName(events[i]!.host), events.slice(i, i + 2_000));
};

describe('live projection > closed violations per host (issue 23)', () => {
  it('scale #23: given a host with 3,000 closed violations and the default options, then its state keeps only the newest few (20, trimmed by 2) and counts the rest as dropped', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    await append(store, refusals('h1', 3_000));
    const snapshots = openSnapshotStore(dir);
    const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000 });
    await live.start();
    const log = live.hostFleetState('h1')!.violations;
    const total = log.closed.length + log.closedDropped;
    expect(total).toBe(3_000);
    // kept: the newest, at most the bound plus the tenth it trims by
    expect(log.closed.length).toBeLessThanOrEqual(22);
    expect(log.closed.at(-1)!.closed).toBeDefined();
    await live.stop();
    snapshots.close();
    await store.close();
  });

  it('scale #23: the service keeps at most 20 closed violations per host unless configured otherwise', () => {
    expect(loadConfig({ env: {}, overrides: {} }).projections.closedViolationLimit).toBeLessThanOrEqual(20);
  });
});

/** a snapshot store that counts the host states its checkpoints write */
const countingWrites = (inner: SnapshotStore): SnapshotStore & { written: () => number } => {
  let written = 0;
  return {
    ...inner,
    saveCheckpoints: (rows, marker) => {
      inner.saveCheckpoints(
        (function* () {
          for (const r of rows) {
            written++;
            yield r;
          }
        })(),
        marker,
      );
    },
    written: () => written,
  };
};

describe('live projection > checkpoint memory (issue 23)', () => {
  it('hosts2 #23: given 500 hosts folded since the last checkpoint, when a checkpoint writes them, then the store is handed one row at a time (each state\'s JSON made as it is written, not every host\'s held at once) and every host is written', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    const inner = openSnapshotStore(dir);
    // how many rows were already made when the store took each one
    const madeAhead: number[] = [];
    const snapshots: SnapshotStore = {
      ...inner,
      saveCheckpoints: (rows, marker) => {
        const made = Array.isArray(rows) ? rows.length : 0;
        inner.saveCheckpoints(
          (function* () {
            let taken = 0;
            for (const r of rows) {
              taken++;
              madeAhead.push(Math.max(made, taken) - taken);
              yield r;
            }
          })(),
          marker,
        );
      },
    };
    const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000 });
    await live.start();
    const events = Array.from({ length: 500 }, (_, i) => valid(createEventBuilder({ host: `h${i}`, source: 'collector', startNs: T0, stepNs: SECOND }).raw('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })));
    for (const e of events) await store.appendToStream(hostStreamName(e.host), [e]);
    await live.notify();
    await live.stop();
    expect(madeAhead.length).toBeGreaterThanOrEqual(500);
    expect(Math.max(...madeAhead)).toBe(0);
    for (const e of events) expect(inner.checkpointOf(e.host)?.host).toBe(e.host);
    inner.close();
    await store.close();
  });
});

describe('live projection > checkpoint cost per event (issue 23)', () => {
  it('scale #23: given 2,000 hosts that each get one event per catch-up, when checkpoints are due after every catch-up, then they write at most one host state per four events folded', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    const snapshots = countingWrites(openSnapshotStore(dir));
    const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000, checkpointMs: 0 });
    await live.start();
    const builders = Array.from({ length: 2_000 }, (_, i) => createEventBuilder({ host: `h${i}`, source: 'collector', startNs: T0, stepNs: SECOND }));
    let folded = 0;
    for (let round = 0; round < 4; round++) {
      const events = builders.map((b) => valid(b.raw('DriverBound', { device: '0000:01:00.0', driver: round % 2 === 0 ? 'vfio-pci' : 'igb' })));
      for (const e of events) await store.appendToStream(hostStreamName(e.host), [e]);
      folded += events.length;
      await live.notify();
    }
    expect(live.position()).toBe(BigInt(folded));
    expect(snapshots.written()).toBeGreaterThan(0);
    expect(snapshots.written()).toBeLessThanOrEqual(folded / 4);
    await live.stop();
    snapshots.close();
    await store.close();
  });
});

describe('live projection > checkpoint transactions (issue 23)', () => {
  it('hosts3 #23: given a checkpoint of 3,000 host states of 5 kB each (15 MB), then projections.sqlite-wal stays under 10 MB (written in transactions of a bounded number of rows, the WAL reused between them, not one transaction of every host)', () => {
    const dir = tempDir();
    const snapshots = openSnapshotStore(dir);
    const state = JSON.stringify({ pad: 'x'.repeat(5_000) });
    let walMax = 0;
    const wal = join(dir, 'projections.sqlite-wal');
    snapshots.saveCheckpoints(
      (function* () {
        for (let i = 0; i < 3_000; i++) {
          if (i % 100 === 0 && existsSync(wal)) walMax = Math.max(walMax, statSync(wal).size);
          yield { host: `h${i}`, position: BigInt(i + 1), revision: 0n, timeNs: T0, snapshot: state, open: '{}' };
        }
      })(),
      { position: 3_000n, format: 'test', storeId: null },
    );
    walMax = Math.max(walMax, statSync(wal).size);
    expect(snapshots.restoreIndexAt(3_000n).hosts).toHaveLength(3_000);
    expect(walMax).toBeLessThan(10 * 2 ** 20);
    snapshots.close();
  });

  it('hosts3 #23: given a checkpoint cut short after one host\'s row (a crash between its transactions: the row past the marker), when the service restarts, then both hosts\' states are those of a fold from the start (the row read as it is, its events not folded twice)', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    const a = refusals('a', 6);
    const b = refusals('b', 6);
    // given both hosts folded and checkpointed after their first half
    await append(store, a.slice(0, 10));
    await append(store, b.slice(0, 10));
    const inner = openSnapshotStore(dir);
    let cutShort = false;
    const snapshots: SnapshotStore = {
      ...inner,
      // a crash after host a's row was committed: its row is written, the marker stays the previous checkpoint's
      saveCheckpoints: (rows, marker) => {
        if (!cutShort) return inner.saveCheckpoints(rows, marker);
        const old = inner.marker()!;
        inner.saveCheckpoints(
          (function* () {
            for (const r of rows) if (r.host === 'a') yield r;
          })(),
          old,
        );
      },
    };
    const first = createLiveProjection({ store, snapshots, pollMs: 3_600_000 });
    await first.start();
    await first.stop();
    // when both get the rest of their events and the next checkpoint is cut short after host a's row
    await append(store, a.slice(10));
    await append(store, b.slice(10));
    cutShort = true;
    const second = createLiveProjection({ store, snapshots, pollMs: 3_600_000 });
    await second.start();
    await second.stop();
    expect(inner.checkpointOf('a')!.position).toBeGreaterThan(inner.marker()!.position);
    // then a restart from those checkpoints holds what a fold from the start holds
    const restarted = createLiveProjection({ store, snapshots: inner, pollMs: 3_600_000 });
    await restarted.start();
    const freshSnapshots = openSnapshotStore(tempDir());
    const fresh = createLiveProjection({ store, snapshots: freshSnapshots, pollMs: 3_600_000 });
    await fresh.start();
    for (const host of ['a', 'b']) expect(restarted.hostFleetState(host)).toEqual(fresh.hostFleetState(host));
    await restarted.stop();
    await fresh.stop();
    freshSnapshots.close();
    inner.close();
    await store.close();
  });
});
