import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, type RecordedEvent } from '../../../schemas/index.js';
import { getSqliteEventStore } from '../../shared/eventStore/index.js';
import { createFleetProjection, foldEvents, violationsAt, type FleetSnapshot } from '../../../projections/index.js';
import { generateHistory } from '../../../projections/testing/generateHistory.js';
import { createIngestService } from '../../shared/ingest/ingestService.js';
import { CHECKPOINT_COST_SHARE, createLiveProjection, EVENTS_PER_STATE_WRITE, QUIET_MS } from './liveProjection.js';
import { openSnapshotStore } from './snapshotStore.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const setup = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iommutrail-live-'));
  dirs.push(dir);
  const path = join(dir, 'events.sqlite');
  const store = getSqliteEventStore({ path, durability: 'normal', keyDir: false });
  // another writer on the same file, as a Kafka consumer process would be
  const other = getSqliteEventStore({ path, durability: 'normal', keyDir: false });
  // no poll during the test: only the append notice or an explicit notify may move the projection
  const live = createLiveProjection({ store, snapshots: openSnapshotStore(dir), pollMs: 3_600_000 });
  await live.start();
  return {
    store,
    other,
    live,
    dispose: async () => {
      await live.stop();
      await Promise.all([store.close(), other.close()]);
    },
  };
};

describe('live projection > events appended in this process', () => {
  it('given a started projection, when this process appends, then the events are folded by the time the append resolves, without a read', async () => {
    const sut = await setup();
    const a = createEventBuilder({ host: 'a' });
    const r = await sut.store.appendToStream(hostStreamName('a'), [a.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
    expect(sut.live.position()).toBe(r.lastPosition);
    expect(sut.live.hostNames()).toEqual(['a']);
    await sut.dispose();
  });

  it('given another writer appended in between, when this process appends, then nothing is skipped: the gap is read from the store', async () => {
    const sut = await setup();
    const a = createEventBuilder({ host: 'a' });
    const b = createEventBuilder({ host: 'b' });
    await sut.store.appendToStream(hostStreamName('a'), [a.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
    await sut.other.appendToStream(hostStreamName('b'), [b.event('DriverBound', { device: '0000:02:00.0', driver: 'vfio-pci' })]);
    const last = await sut.store.appendToStream(hostStreamName('a'), [a.event('DriverUnbound', { device: '0000:01:00.0' })]);
    await sut.live.notify();
    expect(sut.live.position()).toBe(last.lastPosition);
    expect(sut.live.hostNames()).toEqual(['a', 'b']);
    expect(sut.live.host('b')).toBeDefined();
    await sut.dispose();
  });
});

describe('live projection > a catch-up and the append notice racing', () => {
  it('given a backlog from another writer being read while this process keeps appending, then every event is folded exactly once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommutrail-live-'));
    dirs.push(dir);
    const path = join(dir, 'events.sqlite');
    const store = getSqliteEventStore({ path, durability: 'normal', keyDir: false });
    const other = getSqliteEventStore({ path, durability: 'normal', keyDir: false });
    const real = createFleetProjection();
    const folds = new Map<string, number>();
    const fold = { ...real, evolve: (s: Parameters<typeof real.evolve>[0], e: Parameters<typeof real.evolve>[1], p?: bigint) => {
      folds.set(e.id, (folds.get(e.id) ?? 0) + 1);
      return real.evolve(s, e, p);
    } };
    const live = createLiveProjection({ store, snapshots: openSnapshotStore(dir), pollMs: 3_600_000, fold });
    await live.start();
    const a = createEventBuilder({ host: 'a' });
    const b = createEventBuilder({ host: 'b' });
    const ev = (builder: typeof a, i: number) => builder.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' });
    // a backlog from another writer: several pages for the catch-up to read
    await other.appendToStream(hostStreamName('b'), Array.from({ length: 3_500 }, (_, i) => ev(b, i)));
    const catchUp = live.notify();
    const own: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) own.push(store.appendToStream(hostStreamName('a'), [ev(a, i), ev(a, i + 1)]));
    await Promise.all(own);
    await catchUp;
    await live.notify();
    expect(folds.size).toBe(3_540);
    expect([...folds.values()].every((n) => n === 1)).toBe(true);
    expect(live.position()).toBe(await store.headPosition());
    await live.stop();
    await Promise.all([store.close(), other.close()]);
  });
});

describe('live projection > a projection defect', () => {
  it('given an event the fold throws on, then that host is marked uncertain and later events of every host are still folded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommutrail-live-'));
    dirs.push(dir);
    const store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', keyDir: false });
    const real = createFleetProjection();
    const a = createEventBuilder({ host: 'a' });
    const b = createEventBuilder({ host: 'b' });
    const poison = a.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
    const fold = { ...real, evolve: (s: Parameters<typeof real.evolve>[0], e: Parameters<typeof real.evolve>[1], p?: bigint) => {
      if (e.id === poison.id) throw new Error('simulated defect');
      return real.evolve(s, e, p);
    } };
    const live = createLiveProjection({ store, snapshots: openSnapshotStore(dir), pollMs: 3_600_000, fold });
    await live.start();
    await store.appendToStream(hostStreamName('a'), [a.event('DriverBound', { device: '0000:02:00.0', driver: 'vfio-pci' }), poison, a.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' })]);
    await store.appendToStream(hostStreamName('b'), [b.event('DriverBound', { device: '0000:04:00.0', driver: 'vfio-pci' })]);
    await live.notify();
    expect(live.host('a')?.uncertain?.reason).toBe('projection error: simulated defect');
    expect(Object.keys(live.host('a')?.devices ?? {}).sort()).toEqual(['0000:02:00.0', '0000:03:00.0']);
    expect(Object.keys(live.host('b')?.devices ?? {})).toEqual(['0000:04:00.0']);
    await live.stop();
    await store.close();
  });
});

const captureWarnings = () => {
  const lines: { msg: string; level: number; movedTo?: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  return { logger, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) , lines };
};

const openStore = (dir: string, name = 'events.sqlite') => getSqliteEventStore({ path: join(dir, name), durability: 'normal', keyDir: false });

/** a live projection over a store in `dir`, started; stopping it checkpoints */
const startLive = async (dir: string, store: ReturnType<typeof openStore>, logger?: pino.Logger, extra: { snapshotEvery?: number; checkpointMs?: number; keepPerHost?: number } = {}) => {
  const snapshots = openSnapshotStore(dir, { ...(logger ? { logger } : {}), ...(extra.keepPerHost ? { keepPerHost: extra.keepPerHost } : {}) });
  const live = createLiveProjection({
    store,
    snapshots,
    pollMs: 3_600_000,
    ...(logger ? { logger } : {}),
    ...(extra.snapshotEvery ? { snapshotEvery: extra.snapshotEvery } : {}),
    ...(extra.checkpointMs !== undefined ? { checkpointMs: extra.checkpointMs } : {}),
  });
  await live.start();
  return { live, snapshots, stop: async () => (await live.stop(), snapshots.close()) };
};

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'iommutrail-live-'));
  dirs.push(dir);
  return dir;
};

const driverEvents = (host: string, n: number) => {
  const b = createEventBuilder({ host });
  return Array.from({ length: n }, (_, i) => b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' }));
};

/** a fresh data dir whose event store holds n events of host a */
const storeWithHostA = async (n: number) => {
  const dir = tempDir();
  const store = openStore(dir);
  await store.appendToStream(hostStreamName('a'), driverEvents('a', n));
  return { dir, store };
};

/** a data dir whose projections.sqlite holds host a (20 events) and whose event store file was then deleted */
const checkpointThenDeleteStore = async (): Promise<string> => {
  const { dir, store } = await storeWithHostA(20);
  const first = await startLive(dir, store);
  expect(first.live.hostNames()).toEqual(['a']);
  await first.stop();
  await store.close();
  for (const f of ['events.sqlite', 'events.sqlite-wal', 'events.sqlite-shm']) rmSync(join(dir, f), { force: true });
  return dir;
};

describe('live projection > derived state that does not match the store', () => {
  it('hardening #4: given snapshots of a fleet, when the event store is replaced by an empty one, then the snapshots are discarded with a warning, not served', async () => {
    const dir = await checkpointThenDeleteStore();
    const store = openStore(dir);
    const log = captureWarnings();
    const second = await startLive(dir, store, log.logger);
    expect(second.live.hostNames()).toEqual([]);
    expect(second.live.host('a')).toBeUndefined();
    expect(log.warnings().join('\n')).toMatch(/event store ends at 0.*discarded, rebuilding/);
    await second.stop();
    await store.close();
  });

  it('hardening #4: given snapshots folded from one store, when started on another store with as many events, then they are discarded and the fleet is folded from this store', async () => {
    const dir = await checkpointThenDeleteStore();
    const store = openStore(dir);
    await store.appendToStream(hostStreamName('b'), driverEvents('b', 25));
    const log = captureWarnings();
    const second = await startLive(dir, store, log.logger);
    expect(second.live.hostNames()).toEqual(['b']);
    expect(second.live.host('b')?.eventCount).toBe(25);
    expect(log.warnings().join('\n')).toMatch(/another event store.*discarded, rebuilding/);
    await second.stop();
    await store.close();
  });

  it('given snapshots of this store, when restarted, then they are used (no warning) and the tail is folded', async () => {
    const { dir, store } = await storeWithHostA(20);
    const first = await startLive(dir, store);
    await first.stop();
    const log = captureWarnings();
    const second = await startLive(dir, store, log.logger);
    expect(second.live.host('a')?.eventCount).toBe(20);
    expect(log.warnings()).toEqual([]);
    await second.stop();
    await store.close();
  });
});

describe('live projection > a corrupt projections.sqlite', () => {
  it('hardening #13: given a corrupt projections.sqlite, when started, then it is moved aside as projections.sqlite.corrupt-<time>, a warning names it, and the fleet is refolded', async () => {
    const { dir, store } = await storeWithHostA(10);
    writeFileSync(join(dir, 'projections.sqlite'), Buffer.alloc(8192, 0x5a));
    const log = captureWarnings();
    const sut = await startLive(dir, store, log.logger);
    expect(sut.live.host('a')?.eventCount).toBe(10);
    const aside = readdirSync(dir).filter((f) => /^projections\.sqlite\.corrupt-\d{4}-\d\d-\d\dT[\d-]+Z$/.test(f));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]!))).toEqual(Buffer.alloc(8192, 0x5a));
    const warned = log.lines.find((l) => l.level === 40);
    expect(warned?.msg).toMatch(/corrupt: moved aside, rebuilding/);
    expect(warned?.movedTo).toBe(join(dir, aside[0]!));
    await sut.stop();
    await store.close();
  });
});

describe('live projection > bounded derived data', () => {
  it('hardening #7: given many checkpoints and snapshots, then projections.sqlite keeps one checkpoint per host and at most keepPerHost older snapshots', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const sut = await startLive(dir, store, undefined, { snapshotEvery: 10, checkpointMs: 0, keepPerHost: 4 });
    const events = { a: driverEvents('a', 400), b: driverEvents('b', 400) };
    for (let i = 0; i < 400; i += 20) {
      await store.appendToStream(hostStreamName('a'), events.a.slice(i, i + 20));
      await store.appendToStream(hostStreamName('b'), events.b.slice(i, i + 20));
      await sut.live.notify();
    }
    const db = new Database(join(dir, 'projections.sqlite'), { readonly: true });
    const count = (sql: string) => (db.prepare(sql).all() as { host: string; n: number }[]).map((r) => [r.host, r.n]);
    expect(count('SELECT host, count(*) AS n FROM host_checkpoints GROUP BY host ORDER BY host')).toEqual([['a', 1], ['b', 1]]);
    expect(count('SELECT host, count(*) AS n FROM host_snapshots GROUP BY host ORDER BY host')).toEqual([['a', 4], ['b', 4]]);
    db.close();
    // time travel still starts from a kept snapshot and folds to the same state as the whole stream
    const at = { position: (await store.headPosition()) - 101n };
    const state = await sut.live.hostStateAt('a', at);
    const whole = foldEvents(createFleetProjection(), (await readAll(store)).filter((r) => r.globalPosition <= at.position && r.event.host === 'a'));
    expect(state.hosts.a).toEqual(whole.hosts.a);
    await sut.stop();
    await store.close();
  });
});

describe('live projection > time travel by wall clock', () => {
  it('hardening #5: one event dated in the future does not hide the later events of its host from ?at=, and the answer names the clock step', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const b = createEventBuilder({ host: 'a', startNs: 1_767_225_600_000_000_000n }); // 2026-01-01
    const events = Array.from({ length: 400 }, (_, i) =>
      b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' }, i === 99 ? { atNs: 4_102_444_800_000_000_000n } : i === 100 ? { atNs: 1_767_225_600_000_000_000n + 100_000_000n } : {}),
    );
    await store.appendToStream(hostStreamName('a'), events);
    const sut = await startLive(dir, store);
    const at = { timeNs: 4_102_358_400_000_000_000n }; // 2099-12-31
    expect((await sut.live.hostStateAt('a', at)).hosts.a?.eventCount).toBe(400);
    expect(sut.live.clockNotMonotonicAt('a', at).map((c) => c.event.eventId)).toEqual([events[100]!.id]);
    // before the jump the clock is monotonic: the state at a time between events is the plain prefix
    const early = { timeNs: BigInt(events[50]!.time) };
    expect((await sut.live.hostStateAt('a', early)).hosts.a?.eventCount).toBe(51);
    expect(sut.live.clockNotMonotonicAt('a', early)).toEqual([]);
    // after it: the events dated ≤ T after the step count, and the future-dated one recorded before them too
    const later = { timeNs: BigInt(events[200]!.time) };
    expect((await sut.live.hostStateAt('a', later)).hosts.a?.eventCount).toBe(201);
    expect(sut.live.clockNotMonotonicAt('a', later).map((c) => c.event.eventId)).toEqual([events[100]!.id]);
    await sut.stop();
    await store.close();
  });
});

describe('live projection > time travel reads', () => {
  it('time travel #1: given a host with snapshots, when asked for its state at a position, then the store hands over its events from the snapshot up to that position and at most the one past it', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const events = driverEvents('a', 300);
    await store.appendToStream(hostStreamName('a'), events);
    await store.appendToStream(hostStreamName('b'), driverEvents('b', 50));
    // every event the projection's stream reads were given
    const given: bigint[] = [];
    const counting = {
      ...store,
      readStream: (name: string, opts?: Parameters<typeof store.readStream>[1]) => ({
        async *[Symbol.asyncIterator]() {
          for await (const r of store.readStream(name, opts)) {
            given.push(r.globalPosition);
            yield r;
          }
        },
      }),
    };
    const snapshots = openSnapshotStore(dir);
    const live = createLiveProjection({ store: counting, snapshots, pollMs: 3_600_000, snapshotEvery: 100 });
    await live.start();
    const at = { position: 150n };
    const state = await live.hostStateAt('a', at);
    expect(state.hosts.a?.eventCount).toBe(150);
    const recorded = [];
    for await (const r of store.readStream(hostStreamName('a'), { maxCount: 150 })) recorded.push(r);
    expect(state).toEqual(foldEvents(createFleetProjection({}), recorded));
    // from the snapshot after event 100 on: 50 events, then at most the one past the position where the fold stops
    // (the read is bounded by the host's next snapshot: a bound by position alone made the store scan the rest of the stream)
    expect(given.slice(0, 50)).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(101 + i)));
    expect(given.slice(50)).toEqual([151n]);
    await live.stop();
    snapshots.close();
    await store.close();
  });
});

describe('live projection > time travel snapshots', () => {
  it('time travel #3: given a host whose history closes violations, then its history snapshots carry none of them (counted as dropped), and ?at= answers its state, what was open then and how many closed as a full fold does', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const events = generateHistory({ events: 3_000, hosts: 1 });
    const host = events[0]!.host;
    await store.appendToStream(hostStreamName(host), events);
    const sut = await startLive(dir, store, undefined, { snapshotEvery: 500 });
    const db = new Database(join(dir, 'projections.sqlite'), { readonly: true });
    const states = (db.prepare('SELECT state FROM host_snapshots ORDER BY position').all() as { state: string }[]).map((r) => (JSON.parse(r.state) as FleetSnapshot).state);
    db.close();
    expect(states.length).toBeGreaterThanOrEqual(5);
    for (const s of states) expect(s.violations.closed).toEqual([]);
    expect(states.at(-1)!.violations.closedDropped).toBeGreaterThan(0);
    const recorded: RecordedEvent[] = [];
    for await (const r of store.readStream(hostStreamName(host))) recorded.push(r);
    for (const n of [1_234, 2_999]) {
      const at = { position: recorded[n - 1]!.globalPosition };
      const state = await sut.live.hostStateAt(host, at);
      const folded = foldEvents(createFleetProjection({}), recorded.slice(0, n));
      expect(state.hosts[host]).toEqual(folded.hosts[host]);
      expect(violationsAt(state, at)).toEqual(violationsAt(folded, at));
      expect(state.violations.closed.length + state.violations.closedDropped).toBe(folded.violations.closed.length + folded.violations.closedDropped);
    }
    await sut.stop();
    await store.close();
  });
});

describe('live projection > sequence facts', () => {
  it('hardening #15: given another process appends some of a host\'s events, then the sequence report comes from the store\'s events and shows no gap', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const other = openStore(dir);
    const sut = await startLive(dir, store);
    const ingest = createIngestService({ store, facts: sut.live });
    const [e1, e2, e3] = driverEvents('a', 3);
    await ingest.ingest([e1]);
    await other.appendToStream(hostStreamName('a'), [e2!]);
    await ingest.ingest([e3]);
    await sut.live.notify();
    expect(sut.live.sequenceReport('a')).toMatchObject({ maxSeq: 3, gaps: [], gapsOpened: 0, outOfOrder: 0 });
    await sut.stop();
    await Promise.all([store.close(), other.close()]);
  });
});

const readAll = async (store: ReturnType<typeof openStore>) => {
  const out = [];
  for await (const r of store.readAll({})) out.push(r);
  return out;
};

describe('live projection > time travel cost does not grow with history (issue 23)', () => {
  /** host a's events in runs of `aRun`, each followed by `bRun` of host b, so a's positions are spread over the store */
  const interleaved = async (store: ReturnType<typeof openStore>, runs: number, aRun: number, bRun: number) => {
    const a = createEventBuilder({ host: 'a' });
    const b = createEventBuilder({ host: 'b' });
    for (let i = 0; i < runs; i++) {
      await store.appendToStream(hostStreamName('a'), Array.from({ length: aRun }, (_, j) => a.event('DriverBound', { device: `0000:0${j % 8}:00.0`, driver: 'vfio-pci' })));
      await store.appendToStream(hostStreamName('b'), Array.from({ length: bRun }, (_, j) => b.event('DriverBound', { device: `0000:0${j % 8}:00.0`, driver: 'vfio-pci' })));
    }
  };
  const recordedOf = async (store: ReturnType<typeof openStore>, host: string): Promise<RecordedEvent[]> => {
    const out: RecordedEvent[] = [];
    for await (const r of store.readStream(hostStreamName(host))) out.push(r);
    return out;
  };

  it('time travel #23: given a host with a long history after the point asked for, when asked for its state at a position, then the store is asked for at most snapshotEvery of its events (a bound by position alone scanned the rest of the stream) and the answer is a full fold up to it', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    await interleaved(store, 30, 40, 10);
    const asked: { maxCount?: number; toPosition?: bigint }[] = [];
    const spying = { ...store, readStream: (name: string, opts?: Parameters<typeof store.readStream>[1]) => (asked.push({ ...opts }), store.readStream(name, opts)) };
    const snapshots = openSnapshotStore(dir);
    const live = createLiveProjection({ store: spying, snapshots, pollMs: 3_600_000, snapshotEvery: 100 });
    await live.start();
    const a = await recordedOf(store, 'a');
    const head = await store.headPosition();
    const fold = createFleetProjection({});
    for (let p = 1n; p <= head; p += 13n) {
      asked.length = 0;
      const state = await live.hostStateAt('a', { position: p });
      expect(state).toEqual(foldEvents(fold, a.filter((r) => r.globalPosition <= p)));
      expect(asked).toHaveLength(1);
      expect(asked[0]!.maxCount).toBeDefined();
      expect(asked[0]!.maxCount!).toBeLessThanOrEqual(100);
    }
    // after a restart, with the host's state still on disk: where it stands is read from its checkpoint alone
    await live.stop();
    snapshots.close();
    const reopened = openSnapshotStore(dir);
    const restarted = createLiveProjection({ store: spying, snapshots: reopened, pollMs: 3_600_000, snapshotEvery: 100 });
    await restarted.start();
    for (const p of [7n, 640n, 1_203n, head - 15n, head]) {
      asked.length = 0;
      expect(await restarted.hostStateAt('a', { position: p })).toEqual(foldEvents(fold, a.filter((r) => r.globalPosition <= p)));
      expect(asked[0]!.maxCount!).toBeLessThanOrEqual(100);
    }
    expect(restarted.residentHosts()).toBe(0);
    // events no fold has seen yet (another writer, not announced): read up to the position, and answered
    const other = openStore(dir);
    await interleaved(other, 2, 40, 10);
    const more = await recordedOf(store, 'a');
    const last = more.at(-1)!.globalPosition;
    expect(await restarted.hostStateAt('a', { position: last })).toEqual(foldEvents(fold, more));
    await restarted.stop();
    reopened.close();
    await Promise.all([store.close(), other.close()]);
  });

  it('time travel #23: given a host that gets fewer than snapshotEvery events between checkpoints, and a restart, then it still gets a history snapshot after every snapshotEvery of its events (each checkpoint and restart reset the count, so such a host had none and ?at= folded its whole history)', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const writer = openStore(dir);
    const a = createEventBuilder({ host: 'a' });
    const batch = (n: number) => Array.from({ length: n }, (_, j) => a.event('DriverBound', { device: `0000:0${j % 8}:00.0`, driver: 'vfio-pci' }));
    let sut = await startLive(dir, store, undefined, { snapshotEvery: 100, checkpointMs: 0 });
    for (let i = 0; i < 20; i++) {
      await writer.appendToStream(hostStreamName('a'), batch(30));
      await sut.live.notify();
      if (i === 9) {
        await sut.stop();
        sut = await startLive(dir, store, undefined, { snapshotEvery: 100, checkpointMs: 0 });
      }
    }
    await sut.stop();
    const db = new Database(join(dir, 'projections.sqlite'), { readonly: true });
    const revisions = (db.prepare("SELECT revision FROM host_snapshots WHERE host = 'a' ORDER BY revision").all() as { revision: number }[]).map((r) => Number(r.revision));
    db.close();
    expect(revisions).toEqual([99, 199, 299, 399, 499, 599]);
    await Promise.all([store.close(), writer.close()]);
  });
});

describe('live projection > checkpoint during ingest', () => {
  it('newhost #23: given an ingest of new hosts (one event each) still going on, when a catch-up finds nothing new right after a fold, then no checkpoint writes every new host mid-ingest; once nothing is folded for a while it does', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const snapshots = openSnapshotStore(dir);
    let clock = 0;
    const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000, checkpointMs: 10_000, now: () => clock });
    await live.start();
    // given: the checkpoint interval passed, and a batch of new hosts folded (fewer events than EVENTS_PER_STATE_WRITE per host)
    clock = 20_000;
    for (const host of ['a', 'b', 'c', 'd']) await store.appendToStream(hostStreamName(host), driverEvents(host, 1));
    await live.notify();
    // when: a second catch-up at once (each ingest request and the poll ask for one) finds nothing new
    await live.notify();
    // then: the ingest has not paused, so no state is written
    expect(snapshots.marker()).toBeUndefined();
    expect(snapshots.checkpointOf('a')).toBeUndefined();
    // and once nothing was folded for longer than the quiet time, the next catch-up writes them
    clock = 20_000 + QUIET_MS;
    await live.notify();
    expect(snapshots.marker()?.position).toBe(live.position());
    expect(snapshots.checkpointOf('d')?.host).toBe('d');
    await live.stop();
    snapshots.close();
    await store.close();
  });

  it('hosts #23: given a checkpoint that took long (many hosts to write) while events keep coming, when the next one would be due by interval and events folded, then it waits until the time since the last one is CHECKPOINT_COST_SHARE times its cost', async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const opened = openSnapshotStore(dir);
    let clock = 0;
    // every checkpoint write takes 2 s of the (fake) clock
    const snapshots: typeof opened = { ...opened, saveCheckpoints: (rows, marker) => { opened.saveCheckpoints(rows, marker); clock += 2_000; } };
    const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000, checkpointMs: 10_000, now: () => clock });
    await live.start();
    const feed = async (host: string, at: number) => {
      clock = at;
      await store.appendToStream(hostStreamName(host), driverEvents(host, EVENTS_PER_STATE_WRITE));
      await live.notify();
    };
    // given: a first checkpoint, at the interval with enough events folded, that took 2 s
    await feed('a', 10_000);
    expect(snapshots.marker()?.position).toBe(live.position());
    const first = snapshots.marker()!.position;
    // when: events keep coming (never quiet) past the interval, with enough folded per host to write
    await feed('b', 22_500);
    await feed('c', 23_000);
    // then: not yet, as 2 s of writing every 10 s would be a fifth of the ingest's time
    expect(snapshots.marker()?.position).toBe(first);
    expect(snapshots.checkpointOf('b')).toBeUndefined();
    await feed('e', 12_000 + CHECKPOINT_COST_SHARE * 2_000 - 500);
    expect(snapshots.marker()?.position).toBe(first);
    // and once the time since the last one reached CHECKPOINT_COST_SHARE times its cost, it is taken
    await feed('d', 12_000 + CHECKPOINT_COST_SHARE * 2_000);
    expect(snapshots.marker()?.position).toBe(live.position());
    expect(snapshots.checkpointOf('d')?.host).toBe('d');
    await live.stop();
    opened.close();
    await store.close();
  });

  it('hosts2 #23: given an append of this process still being committed for longer than QUIET_MS (a slow fsync), when a catch-up looks for a checkpoint, then the ingest does not count as paused: no checkpoint of every host folded until the append settled', async () => {
    const dir = tempDir();
    const real = openStore(dir);
    // a commit the writer has not answered yet: what a loaded disk does to every batch of an ingest
    let committing = false;
    const store: typeof real = { ...real, appendsInFlight: () => (committing ? new Promise<void>(() => undefined) : real.appendsInFlight?.()) };
    const snapshots = openSnapshotStore(dir);
    let clock = 0;
    const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000, checkpointMs: 10_000, now: () => clock });
    await live.start();
    const feed = async (host: string, n: number, at: number) => {
      clock = at;
      await store.appendToStream(hostStreamName(host), driverEvents(host, n));
      await live.notify();
    };
    // given: a first checkpoint, then new hosts with one event each (not enough per host to be worth writing)
    await feed('a', EVENTS_PER_STATE_WRITE, 10_000);
    const first = snapshots.marker()!.position;
    await feed('b', 1, 21_000);
    await feed('c', 1, 21_100);
    expect(snapshots.marker()?.position).toBe(first);
    // when: the next batch is being committed, QUIET_MS and more after the last fold
    committing = true;
    clock = 21_100 + QUIET_MS + 500;
    await live.notify();
    // then: no checkpoint (the fold waits for the writer, the ingest goes on)
    expect(snapshots.marker()?.position).toBe(first);
    expect(snapshots.checkpointOf('b')).toBeUndefined();
    // and once nothing is in flight any more, the pause is one: the checkpoint is taken
    committing = false;
    await live.notify();
    expect(snapshots.marker()?.position).toBe(live.position());
    expect(snapshots.checkpointOf('b')?.host).toBe('b');
    await live.stop();
    snapshots.close();
    await real.close();
  });
});

describe('live projection > announced batches (issue 23)', () => {
  /** a started projection over a store that counts the events read back from it, and another writer on its file */
  const startCounting = async () => {
    const dir = tempDir();
    const real = openStore(dir);
    const other = openStore(dir);
    let read = 0;
    const store: typeof real = {
      ...real,
      readAll: (opts) => {
        const inner = real.readAll(opts);
        return { [Symbol.asyncIterator]: async function* () { for await (const r of inner) { read++; yield r; } } };
      },
    };
    const sut = await startLive(dir, store);
    const close = async () => {
      await sut.stop();
      await Promise.all([real.close(), other.close()]);
    };
    return { store, other, sut, readBack: () => read, close };
  };

  it('catchup #23: given another process appended between two of this process\'s batches, then only its events (the gap) are read from the store, the announced batch is folded as handed over', async () => {
    const { store, other, sut, readBack, close } = await startCounting();
    const [a1, a2, a3] = driverEvents('a', 3);
    const [b1] = driverEvents('b', 1);
    await store.appendToStream(hostStreamName('a'), [a1!]);
    await other.appendToStream(hostStreamName('b'), [b1!]);
    await store.appendToStream(hostStreamName('a'), [a2!, a3!]);
    await sut.live.notify();
    expect(sut.live.position()).toBe(4n);
    expect(sut.live.hostNames()).toEqual(['a', 'b']);
    expect(sut.live.sequenceReport('a')).toMatchObject({ maxSeq: 3, gaps: [] });
    expect(readBack()).toBe(1);
    await close();
  });

  it('catchup #23: consecutive ingested batches are folded from the announcement, the store is not read (not even when a catch-up runs while a batch is committed and not yet announced)', async () => {
    // given a started projection whose store counts the events read back from it, and an ingest through it
    const { store, other, sut, readBack, close } = await startCounting();
    const ingest = createIngestService({ store, facts: sut.live });
    const events = driverEvents('a', 4);
    // when one batch is ingested, then another whose commit a catch-up (the poll, an ingest's notify) meets
    // before the store announced it
    await ingest.ingest([events[0], events[1]]);
    const second = ingest.ingest([events[2], events[3]]);
    // the store hands the batch to its writer on the next turn; then, without giving the writer's answer a
    // turn (microtasks only), wait until the batch is committed and ask for a catch-up
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let spins = 0; (await other.headPosition()) < 4n && spins < 1e7; spins++);
    expect(await other.headPosition()).toBe(4n);
    const caughtUp = sut.live.notify();
    await second;
    await caughtUp;
    // then every event is folded, and none of them was read back from the store
    expect(sut.live.position()).toBe(4n);
    expect(sut.live.sequenceReport('a')).toMatchObject({ maxSeq: 4, gaps: [] });
    expect(readBack()).toBe(0);
    await close();
  });
});
