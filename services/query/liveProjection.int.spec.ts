import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../schemas/index.js';
import { getSqliteEventStore } from '../eventStore/index.js';
import { createFleetProjection } from '../../projections/index.js';
import { createLiveProjection } from './liveProjection.js';
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
