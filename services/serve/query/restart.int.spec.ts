import Database from 'better-sqlite3';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createFleetProjection, foldEvents, type FleetProjection, type FleetState } from '../../../projections/index.js';
import { hostStreamName, parseEvent, type IommuEvent, type RecordedEvent } from '../../../schemas/index.js';
import { getSqliteEventStore, type EventStore } from '../../shared/eventStore/index.js';
import { simulateFleet } from '../../simulator/simulateFleet.js';
import { createLiveProjection } from './liveProjection.js';
import { openSnapshotStore } from './snapshotStore.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'iommutrail-restart-'));
  dirs.push(dir);
  return dir;
};

const fleet = (seed: number, events: number): IommuEvent[] =>
  [...simulateFleet({ seed, hosts: 6, events })].map((input, i) => {
    const r = parseEvent(input, `events[${i}]`);
    if (!r.ok) throw new Error(`simulator event ${i}: ${JSON.stringify(r.error)}`);
    return r.value;
  });

/** appends in the given order, each run of one host's consecutive events as one append */
const append = async (store: EventStore, events: readonly IommuEvent[]): Promise<void> => {
  for (let i = 0; i < events.length; ) {
    let j = i + 1;
    while (j < events.length && events[j]!.host === events[i]!.host) j++;
    await store.appendToStream(hostStreamName(events[i]!.host), events.slice(i, j));
    i = j;
  }
};

const readAll = async (store: EventStore): Promise<RecordedEvent[]> => {
  const out: RecordedEvent[] = [];
  for await (const r of store.readAll({})) out.push(r);
  return out;
};

/** every host folded from the store's events alone: what any restart must answer */
const freshFold = async (store: EventStore): Promise<Map<string, FleetState>> => {
  const byHost = new Map<string, RecordedEvent[]>();
  for (const r of await readAll(store)) byHost.set(r.event.host, [...(byHost.get(r.event.host) ?? []), r]);
  return new Map([...byHost].map(([h, rs]) => [h, foldEvents(createFleetProjection(), rs)]));
};

const warnings = () => {
  const lines: { msg: string; level: number }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  return { logger, lines };
};

const startLive = async (dir: string, store: EventStore, logger?: pino.Logger, extra: { maxResidentHosts?: number; checkpointMs?: number; now?: () => number } = {}) => {
  const snapshots = openSnapshotStore(dir, logger ? { logger } : {});
  const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000, ...(logger ? { logger } : {}), ...extra });
  await live.start();
  return { live, snapshots, stop: async () => (await live.stop(), snapshots.close()) };
};

const statesOf = (live: Awaited<ReturnType<typeof startLive>>['live']) => new Map([...live.hostEntries()].map(([h, s]) => [h, structuredClone(s)]));

describe('live projection > restart (issue 23)', () => {
  for (const seed of [1, 2, 3]) {
    it(`scale #23: given a fleet (seed ${seed}) checkpointed twice with events in between and only some hosts used, when restarted, then every host answers as a fresh fold of the store`, async () => {
      const dir = tempDir();
      const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
      const events = fleet(seed, 1_200);
      const cut1 = 300 + seed * 100;
      const cut2 = cut1 + 250 + seed * 50;
      await append(store, events.slice(0, cut1));
      const first = await startLive(dir, store);
      await first.stop();
      await append(store, events.slice(cut1, cut2));
      // a restart that folds the tail of some hosts and leaves the others on disk, then checkpoints
      const second = await startLive(dir, store);
      const used = second.live.hostNames().filter((_, i) => i % 2 === 0);
      for (const h of used) expect(second.live.host(h)).toBeDefined();
      await second.stop();
      await append(store, events.slice(cut2));
      const third = await startLive(dir, store);
      const expected = await freshFold(store);
      expect(third.live.hostNames()).toEqual([...expected.keys()].sort());
      expect(statesOf(third.live)).toEqual(expected);
      // the metrics' view of open violations agrees without reading states (a fourth start, nothing used)
      await third.stop();
      const fourth = await startLive(dir, store);
      const open = new Map([...fourth.live.openViolationEntries()].map(([h, s]) => [h, Object.keys(s.violations.open).sort()]));
      expect(open).toEqual(new Map([...expected].map(([h, s]) => [h, Object.keys(s.violations.open).sort()])));
      await fourth.stop();
      await store.close();
    });
  }

  it('scale #23: given a checkpoint row that does not parse, when restarted, then the start does not fail, other hosts answer without reading it, and the fleet is refolded from the store once it is used', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    await append(store, fleet(4, 600));
    const first = await startLive(dir, store);
    const [broken, other] = first.live.hostNames();
    await first.stop();
    const db = new Database(join(dir, 'projections.sqlite'));
    db.prepare('UPDATE host_states SET state = substr(state, 1, 100) WHERE host = ?').run(broken);
    db.close();
    const log = warnings();
    const second = await startLive(dir, store, log.logger);
    const expected = await freshFold(store);
    expect(second.live.hostFleetState(other!)).toEqual(expected.get(other!));
    expect(log.lines).toEqual([]);
    // used: the unusable row sends the file aside and every host is folded again
    second.live.host(broken!);
    await second.live.notify();
    expect(statesOf(second.live)).toEqual(expected);
    expect(log.lines.map((l) => l.msg).join('\n')).toMatch(/unusable: refolding every host/);
    expect(readdirSync(dir).some((f) => f.startsWith('projections.sqlite.corrupt-'))).toBe(true);
    await second.stop();
    await store.close();
  });

  it('scale #23: given the last checkpoint torn in the WAL (a crash while writing it), when restarted, then the previous checkpoint and its high-water mark are used and the tail is folded to the same answer', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    const events = fleet(5, 900);
    await append(store, events.slice(0, 400));
    const first = await startLive(dir, store);
    await first.stop();
    const previous = (await store.headPosition());
    await append(store, events.slice(400));
    const second = await startLive(dir, store);
    await second.live.stop();
    // the files as a crash leaves them: the second checkpoint only in the WAL, its last frame half written
    const crashed = tempDir();
    for (const f of ['projections.sqlite', 'projections.sqlite-wal']) copyFileSync(join(dir, f), join(crashed, f));
    second.snapshots.close();
    const wal = join(crashed, 'projections.sqlite-wal');
    expect(existsSync(wal)).toBe(true);
    truncateSync(wal, statSync(wal).size - 100);
    const reopened = openSnapshotStore(crashed);
    expect(reopened.marker()?.position).toBe(previous);
    reopened.close();
    const third = await startLive(crashed, store);
    expect(third.live.position()).toBe(await store.headPosition());
    expect(statesOf(third.live)).toEqual(await freshFold(store));
    await third.stop();
    await store.close();
  });
});

describe('live projection > memory follows the hosts in use (issue 23)', () => {
  it('scale #23: given more hosts than maxResidentHosts, when checkpointed, then the least recently used go back to disk, answer as a fresh fold when used again, and their open violations still count', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    await append(store, fleet(6, 900));
    // the checkpoint's clock stands still: the next checkpoint is due by the events folded alone, not by how long
    // the last one took against the time the test's own steps took (under load it was not due yet: flaky)
    const sut = await startLive(dir, store, undefined, { maxResidentHosts: 2, checkpointMs: 0, now: () => 0 });
    const expected = await freshFold(store);
    expect(sut.live.hostNames()).toHaveLength(6);
    expect(sut.live.residentHosts()).toBe(2);
    const open = new Map([...sut.live.openViolationEntries()].map(([h, s]) => [h, Object.keys(s.violations.open).sort()]));
    expect(open).toEqual(new Map([...expected].map(([h, s]) => [h, Object.keys(s.violations.open).sort()])));
    expect(statesOf(sut.live)).toEqual(expected);
    expect(sut.live.residentHosts()).toBe(6);
    // more events: folded onto states read back from disk, then the next checkpoint sends the idle ones back
    await append(store, fleet(7, 300));
    await sut.live.notify();
    expect(sut.live.residentHosts()).toBe(2);
    expect(statesOf(sut.live)).toEqual(await freshFold(store));
    await sut.stop();
    await store.close();
  });
});

describe('live projection > memory follows the hosts in use between checkpoints (issue 23)', () => {
  it('scale #23: given more hosts than maxResidentHosts and no checkpoint due, when folded, then at most that many states stay in memory, the hosts let go are written ahead of the marker, and a restart after a crash answers as a fresh fold', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    await append(store, fleet(6, 900));
    const first = await startLive(dir, store);
    await first.stop();
    const mark = await store.headPosition();
    // the clock stands still and the interval is an hour: no checkpoint during the fold, only the cap lets hosts go
    const sut = await startLive(dir, store, undefined, { maxResidentHosts: 2, checkpointMs: 3_600_000, now: () => 0 });
    await append(store, fleet(7, 300));
    await sut.live.notify();
    expect(sut.live.residentHosts()).toBe(2);
    expect(sut.snapshots.marker()!.position).toBe(mark);
    const ahead = sut.live.hostNames().filter((h) => sut.snapshots.standingOf(h)!.position > mark);
    expect(ahead.length).toBeGreaterThanOrEqual(4);
    expect(statesOf(sut.live)).toEqual(await freshFold(store));
    // the process dies without a checkpoint: the restart folds from the marker, over the rows written ahead of it
    sut.snapshots.close();
    const restarted = await startLive(dir, store);
    expect(statesOf(restarted.live)).toEqual(await freshFold(store));
    await restarted.stop();
    await store.close();
  });
});

describe('live projection > restart work does not grow with history (issue 23)', () => {
  /** a fold that counts the events it folds, and a store that counts the events it hands over */
  const counted = (store: EventStore) => {
    const real = createFleetProjection();
    const n = { folded: 0, read: 0 };
    const fold: FleetProjection = { ...real, evolve: (s, e, p, opened) => (n.folded++, real.evolve(s, e, p, opened)) };
    const counting: EventStore = {
      ...store,
      readAll: (opts) => ({
        async *[Symbol.asyncIterator]() {
          for await (const r of store.readAll(opts)) {
            n.read++;
            yield r;
          }
        },
      }),
    };
    return { n, fold, store: counting };
  };
  const restartCounting = async (dir: string, store: EventStore) => {
    const c = counted(store);
    const snapshots = openSnapshotStore(dir);
    const lines: { msg: string; folded?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
    const live = createLiveProjection({ store: c.store, snapshots, pollMs: 3_600_000, fold: c.fold, logger });
    await live.start();
    // what the start log tells an operator: how many events the restart folded
    const logged = lines.find((l) => l.msg === 'live projection caught up')?.folded;
    return { live, n: { ...c.n, resident: live.residentHosts(), logged }, stop: async () => (await live.stop(), snapshots.close()) };
  };

  for (const events of [600, 2_400]) {
    it(`scale #23: given a history of ${events} events and a clean stop, when restarted, then no event is folded, no host state is read and one event is read from the store (its identity), whatever the length of the history`, async () => {
      const dir = tempDir();
      const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
      await append(store, fleet(8, events));
      const first = await startLive(dir, store);
      await first.stop();
      const sut = await restartCounting(dir, store);
      expect(sut.n).toEqual({ folded: 0, read: 1, resident: 0, logged: 0 });
      expect(sut.live.position()).toBe(await store.headPosition());
      expect(statesOf(sut.live)).toEqual(await freshFold(store));
      await sut.stop();
      await store.close();
    });
  }

  it('scale #23: given a crash after a checkpoint (no final one), when restarted, then only the events after the persisted high-water mark are folded, and every host answers as a fresh fold', async () => {
    const dir = tempDir();
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    const other = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    const events = fleet(9, 1_000);
    await append(store, events.slice(0, 600));
    // checkpoints after each catch-up: a clock an hour further at every look, so each catch-up finds the ingest
    // quiet (without it, whether the checkpoint at 800 is taken depended on how long the one at 600 took:
    // CHECKPOINT_COST_SHARE, and the test failed about one run in two on a loaded machine)
    let t = 0;
    const crashing = await startLive(dir, store, undefined, { checkpointMs: 0, now: () => (t += 3_600_000) });
    await append(other, events.slice(600, 800));
    await crashing.live.notify();
    const mark = crashing.snapshots.marker()!.position;
    expect(mark).toBe(await store.headPosition());
    // the tail the crash loses: appended, never checkpointed; the process dies without stopping
    await append(other, events.slice(800));
    crashing.snapshots.close();
    const sut = await restartCounting(dir, store);
    const head = await store.headPosition();
    expect(sut.n.folded).toBe(Number(head - mark));
    expect(sut.n.read).toBe(1 + Number(head - mark));
    expect(sut.n.logged).toBe(Number(head - mark));
    expect(statesOf(sut.live)).toEqual(await freshFold(store));
    await sut.stop();
    await Promise.all([store.close(), other.close()]);
  });
});
