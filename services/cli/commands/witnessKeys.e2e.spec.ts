import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../schemas/index.js';
import { getSqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { PUBLIC_KEY_FILE } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { EXIT } from '../exitCodes.js';
import { createMain } from '../program.js';
import { registerKeys } from './keys.js';
import { registerVerify } from './verify.js';
import { registerWitness } from './witness.js';

const main = createMain([registerVerify, registerWitness, registerKeys]);
let dir: string;
let data: string;
let db: string;
let out: string[];
const b = createEventBuilder({ host: 'node-a' });

const append = async (n: number): Promise<void> => {
  const store = getSqliteEventStore({ path: db, durability: 'normal', writer: 'inline' });
  await store.appendToStream(hostStreamName('node-a'), Array.from({ length: n }, () => b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })));
  await store.close();
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-witness-cli-'));
  data = join(dir, 'data');
  db = join(data, 'events.sqlite');
  out = [];
  vi.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
  vi.spyOn(console, 'error').mockImplementation((s: string) => void out.push(s));
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => out.push(String(s)) > 0);
  await append(6);
  // the witness keeps its own copy of the log's key, outside the data folder
  copyFileSync(join(data, PUBLIC_KEY_FILE), join(dir, 'log.pub'));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const witness = (): Promise<number> =>
  main(['witness', '--db', db, '--state', join(dir, 'w', 'state.json'), '--key', join(dir, 'w', 'witness.key'), '--log-key', join(dir, 'log.pub'), '--out', join(dir, 'w', 'cosigned.note')]);

describe('cli > witness and keys', () => {
  it('given a witness that cosigned, when the store is truncated and its checkpoints trimmed, then the witness exits 1 and verify --checkpoint names the cosigned checkpoint', async () => {
    expect(await witness()).toBe(EXIT.ok);
    const cosigned = readFileSync(join(dir, 'w', 'cosigned.note'), 'utf8');
    expect(cosigned).toMatch(/\n6\n[^\n]+\n\n\u2014 iommutrail\.local\/log-[0-9a-f]+ \S+\n\u2014 iommutrail-witness \S+\n$/);
    const raw = new Database(db);
    raw.exec('DELETE FROM events WHERE position > 3; DELETE FROM tlog_hashes; DELETE FROM tlog_checkpoints; DELETE FROM seals');
    raw.close();
    await append(1);
    out = [];
    expect(await witness()).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/witness REFUSED \(truncated\): the log now claims 4 leaves, but this witness cosigned 6/);
    out = [];
    expect(await main(['verify', '--db', db, '--public-key', join(dir, 'log.pub'), '--checkpoint', join(dir, 'w', 'cosigned.note')])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/truncated: checkpoint .*cosigned\.note \(size 6\) covers 6 events, the store holds 4/);
  });

  it('given keys rotated on purpose, when the store signs on and is verified, then old checkpoints check with the kept old key and new ones with the new key', async () => {
    expect(await main(['keys', 'rotate', '--key-dir', data])).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/rotated the signing key .* the old public key is kept as .*iommutrail-signing\.[0-9a-f]{16}\.pub/);
    await append(3);
    out = [];
    expect(await main(['verify', '--db', db])).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/Merkle tree of 9 leaves, 9 under the latest of 2 signed checkpoint\(s\)/);
    out = [];
    // pinned to the new key alone, the old checkpoint is not trusted; with the old key given, it is
    expect(await main(['verify', '--db', db, '--public-key', join(data, PUBLIC_KEY_FILE)])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/store checkpoint of size 6: not signed by any trusted key/);
    expect(await main(['verify', '--db', db, '--public-key', join(data, PUBLIC_KEY_FILE), '--old-public-key', join(dir, 'log.pub')])).toBe(EXIT.ok);
  });

  it('given no key to rotate, when rotating, then it exits 2 saying a missing key is restored, never replaced', async () => {
    expect(await main(['keys', 'rotate', '--key-dir', join(dir, 'empty')])).toBe(EXIT.badInput);
    expect(out.join('\n')).toMatch(/no signing key to rotate .*restored from a backup, never replaced/);
  });
});
