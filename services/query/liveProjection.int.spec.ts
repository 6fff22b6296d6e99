import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../schemas/index.js';
import { getSqliteEventStore } from '../eventStore/index.js';
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
