import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, isAppError, type IommuEvent } from '../../../../schemas/index.js';
import { describeWithEngine } from '../../testing/engines.js';
import { mountTmpfs, tmpfsAvailability, type SmallFilesystem } from '../../testing/tmpfs.js';
import { getSqliteEventStore, type SqliteEventStore } from './sqliteEventStore.js';

let fs: SmallFilesystem;
let store: SqliteEventStore | undefined;
const warnings: string[] = [];
const logger = { warn: (_fields: object, msg: string) => void warnings.push(msg) };

const batch = (b: ReturnType<typeof createEventBuilder>, n: number): IommuEvent[] =>
  Array.from({ length: n }, (_, i) => b.event('IommufdOpened', { ictx: `1:${i}`, outcome: { ok: true } }, { labels: ['x'.repeat(100)] }));

describeWithEngine('tmpfs', tmpfsAvailability(), 'SqliteEventStore > disk full', () => {
  beforeEach(() => {
    fs = mountTmpfs(2 * 1024 * 1024);
    warnings.length = 0;
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    fs.unmount();
  });

  it.each(['thread', 'inline'] as const)('hardening #8: while the disk is full the %s store is not ready; once space returns a probe makes it ready and appends work', async (writer) => {
    store = getSqliteEventStore({ path: join(fs.dir, 'events.sqlite'), writer, logger });
    await store.ready();
    const b = createEventBuilder({ host: 'full' });
    const stream = hostStreamName('full');
    await store.appendToStream(stream, batch(b, 10));
    const giveBack = fs.fill();
    const failed = await store.appendToStream(stream, batch(b, 200)).then(() => undefined, (e: unknown) => e);
    expect(isAppError(failed) && failed.kind === 'unavailable').toBe(true);
    const notReady = await store.ready().then(() => undefined, (e: unknown) => e);
    expect(isAppError(notReady) && notReady.kind === 'unavailable').toBe(true);
    expect((notReady as Error).message).toMatch(/writes are failing.*full/);
    giveBack();
    await store.ready();
    const after = await store.appendToStream(stream, batch(b, 5));
    expect(after.outcomes).toEqual(Array(5).fill('appended'));
  });

  it.each(['thread', 'inline'] as const)('hardening #8: closing the %s store while the disk is full does not throw past the failed final seal, and says so', async (writer) => {
    store = getSqliteEventStore({ path: join(fs.dir, 'events.sqlite'), writer, logger, sealIntervalMs: 3_600_000 });
    await store.ready();
    const b = createEventBuilder({ host: 'full' });
    // the first commit seals, the second leaves its events unsealed until close
    await store.appendToStream(hostStreamName('full'), batch(b, 5));
    await store.appendToStream(hostStreamName('full'), batch(b, 20));
    fs.fill();
    const closing = store;
    store = undefined;
    await expect(closing.close()).resolves.toBeUndefined();
    expect(warnings.join('\n')).toMatch(/final seal failed/);
  });
});
