import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate, SCHEMA_VERSION } from './migrations.js';

describe('sqlite migrations', () => {
  it('given a v1 file with index rows, when migrated to the current version, then each row keeps its host, key and position', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommutrail-migrate-'));
    const db = new Database(join(dir, 'v1.sqlite'));
    db.defaultSafeIntegers(true);
    migrate(db, 1);
    const put = db.prepare('INSERT INTO event_index (host, key, position) VALUES (?, ?, ?)');
    put.run('a', 'g:7', 1n);
    put.run('a', 'g:7', 5n);
    put.run('b', 'd:0000:01:00.0', 2n);
    migrate(db);
    expect(db.pragma('user_version', { simple: true })).toBe(BigInt(SCHEMA_VERSION));
    const rows = db.prepare('SELECT k.host, k.key, i.position FROM event_index i JOIN index_keys k ON k.id = i.key_id ORDER BY i.position').all();
    expect(rows).toEqual([
      { host: 'a', key: 'g:7', position: 1n },
      { host: 'b', key: 'd:0000:01:00.0', position: 2n },
      { host: 'a', key: 'g:7', position: 5n },
    ]);
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('given a file from a newer build, when opened, then it is refused naming both versions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommutrail-migrate-'));
    const db = new Database(join(dir, 'new.sqlite'));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    expect(() => migrate(db)).toThrow(new RegExp(`v${SCHEMA_VERSION + 1} is newer than this build \\(v${SCHEMA_VERSION}\\)`));
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
