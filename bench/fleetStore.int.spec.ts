import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSqliteEventStore } from '../services/shared/eventStore/index.js';
import { benchCacheDir, historyStore } from './fleetStore.js';

describe('bench fleet store > prepared history stores (issue 23: 1e7 events without rebuilding)', () => {
  let root: string;
  const saved = process.env.IOMMUTRAIL_BENCH_CACHE;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'fleetstore-'));
    process.env.IOMMUTRAIL_BENCH_CACHE = join(root, 'cache');
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.IOMMUTRAIL_BENCH_CACHE;
    else process.env.IOMMUTRAIL_BENCH_CACHE = saved;
    rmSync(root, { recursive: true, force: true });
  });
  const ctxIn = (name: string, lines: string[]) => ({ mode: 'full' as const, tmpDir: mkdtempSync(join(root, name)), log: (l: string) => lines.push(l) });

  it('given no cache entry, when a full run asks twice, then the store is written once and the second run reads it from the cache', async () => {
    const first: string[] = [];
    const built = await historyStore(ctxIn('a', first), { events: 600, hosts: 7 }, 'read');
    const second: string[] = [];
    const again = await historyStore(ctxIn('b', second), { events: 600, hosts: 7 }, 'read');

    expect(first.join('\n')).toMatch(/written in .* cached at /);
    expect(second.join('\n')).toMatch(/from the cache .* \(not rebuilt\)/);
    expect(again.storeFile).toBe(built.storeFile);
    expect([again.events, again.hosts]).toEqual([600, 7]);
    expect([...again.lastSeq]).toEqual([...built.lastSeq]);
    const store = getSqliteEventStore({ path: again.storeFile, readOnly: true, keyDir: false });
    let n = 0;
    for await (const _ of store.readAll()) n++;
    await store.close();
    expect(n).toBe(600);
  });

  it('given a cached store, when a figure asks for a copy, then it gets its own file with the same events in its tmpDir', async () => {
    const ctx = ctxIn('c', []);
    const copy = await historyStore(ctx, { events: 600, hosts: 7 }, 'copy');
    expect(copy.storeFile).toBe(join(ctx.tmpDir, 'events.sqlite'));
    expect(copy.storeFile.startsWith(benchCacheDir())).toBe(false);
    const store = getSqliteEventStore({ path: copy.storeFile, durability: 'normal', keyDir: false });
    expect(await store.headPosition()).toBe(600n);
    await store.close();
  });

  it('keeps the cache outside the repository by default', () => {
    delete process.env.IOMMUTRAIL_BENCH_CACHE;
    try {
      expect(benchCacheDir()).toBe(join(homedir(), '.cache', 'iommutrail', 'bench'));
      expect(benchCacheDir().startsWith(resolve(import.meta.dirname, '..'))).toBe(false);
    } finally {
      process.env.IOMMUTRAIL_BENCH_CACHE = join(root, 'cache');
    }
    expect(existsSync(join(root, 'cache'))).toBe(true);
  });
});
