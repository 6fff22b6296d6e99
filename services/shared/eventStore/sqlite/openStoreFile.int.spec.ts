import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, isAppError } from '../../../../schemas/index.js';
import { exitCodeFor } from '../../../cli/exitCodes.js';
import { openConfiguredStore } from '../openConfiguredStore.js';
import { getSqliteEventStore } from './sqliteEventStore.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'iommutrail-openfile-'));
  dirs.push(d);
  return d;
};
const config = (dataDir: string) => ({ dataDir, store: { kind: 'sqlite' as const, durability: 'normal' as const } });
const failureOf = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

/** a closed store of a few hundred events (several pages per table), checkpointed into the main file */
const storeWithEvents = async (dataDir: string): Promise<string> => {
  const store = await openConfiguredStore(config(dataDir));
  const b = createEventBuilder({ host: 'h1' });
  const events = Array.from({ length: 400 }, (_, i) => b.event('IommufdOpened', { ictx: `1:${i}`, outcome: { ok: true } }));
  await store.appendToStream(hostStreamName('h1'), events);
  await store.close();
  return join(dataDir, 'events.sqlite');
};

describe('opening the SQLite store file', () => {
  it('hardening #4: a zero-length events.sqlite is refused naming the file, not replaced by a new empty store', async () => {
    const dataDir = tempDir();
    const file = join(dataDir, 'events.sqlite');
    writeFileSync(file, '');
    const error = await failureOf(openConfiguredStore(config(dataDir)));
    expect(isAppError(error)).toBe(true);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/zero length/);
    expect(exitCodeFor(error)).toBe(2);
    expect(statSync(file).size).toBe(0);
  });

  it('hardening #4: a store file that is not a database is refused naming the file (exit 2)', async () => {
    const dataDir = tempDir();
    const file = join(dataDir, 'events.sqlite');
    writeFileSync(file, 'x'.repeat(8192));
    const error = await failureOf(openConfiguredStore(config(dataDir)));
    expect(isAppError(error)).toBe(true);
    expect((error as Error).message).toContain(file);
    expect(exitCodeFor(error)).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe('x'.repeat(8192));
  });

  it('hardening #15: a store file with one overwritten 4 KiB page is refused at start, naming the file and what quick_check found', async () => {
    const dataDir = tempDir();
    const file = await storeWithEvents(dataDir);
    const pages = statSync(file).size / 4096;
    expect(pages).toBeGreaterThan(6);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * Math.floor(pages / 2));
    closeSync(fd);
    const error = await failureOf(openConfiguredStore(config(dataDir)));
    expect(isAppError(error)).toBe(true);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/the store file is corrupt \(SQLite quick_check: /);
    expect(exitCodeFor(error)).toBe(2);
  });

  it('hardening #15: a healthy store passes the start-up check; a file over the budget skips it and says so', async () => {
    const dataDir = tempDir();
    const file = await storeWithEvents(dataDir);
    const checked = getSqliteEventStore({ path: file, writer: 'inline' });
    expect(checked.integrity).toMatchObject({ checked: true });
    await checked.close();
    const skipped = getSqliteEventStore({ path: file, writer: 'inline', quickCheckMaxBytes: 1024 });
    expect(skipped.integrity).toMatchObject({ checked: false });
    await skipped.close();
  });

  it('hardening #15: a store file locked by another process is refused as unavailable (exit 69), naming the file', async () => {
    const dataDir = tempDir();
    const file = join(dataDir, 'events.sqlite');
    // another process mid-way through creating the file: a rollback-journal database under an exclusive lock
    const other = new Database(file);
    other.exec('CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);');
    try {
      let error: unknown;
      try {
        getSqliteEventStore({ path: file, writer: 'inline', busyTimeoutMs: 50 });
      } catch (e) {
        error = e;
      }
      expect(isAppError(error)).toBe(true);
      expect((error as Error).message).toContain(file);
      expect(exitCodeFor(error)).toBe(69);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });

  it('hardening #15: a SQLite lock error that escapes an adapter still exits 69 at the CLI edge, not 1', () => {
    const locked = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    expect(exitCodeFor(locked)).toBe(69);
    expect(exitCodeFor(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }))).toBe(69);
    // any other escaped error is a defect of iommutrail: 70 (EX_SOFTWARE), never 1, which means a finding
    expect(exitCodeFor(new Error('something else'))).toBe(70);
  });
});
