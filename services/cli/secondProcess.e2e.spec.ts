import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it, vi } from 'vitest';
import { main } from './main.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('hardening #15: serve on a data folder whose files another process holds locked exits 69 (unavailable) with one line, not 1', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iommutrail-second-'));
  dirs.push(dataDir);
  // the other process: mid-way through writing the projections file under an exclusive lock
  const other = new Database(join(dataDir, 'projections.sqlite'));
  other.exec('CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);');
  const err: string[] = [];
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await main(['serve', '--data-dir', dataDir, '--port', '0', '--no-analytics']);
    expect(code).toBe(69);
    expect(err.at(-1)).toMatch(/^iommutrail: .*locked/);
  } finally {
    error.mockRestore();
    other.exec('ROLLBACK');
    other.close();
  }
});
