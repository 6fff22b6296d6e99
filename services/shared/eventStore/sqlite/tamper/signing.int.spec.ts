import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, isAppError } from '../../../../../schemas/index.js';
import { exitCodeFor } from '../../../../cli/exitCodes.js';
import { getSqliteEventStore } from '../sqliteEventStore.js';
import { PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, readPublicKey } from './signing.js';
import { verifySqliteStore } from './verifyStore.js';

let dir: string;
let path: string;

/** a store with a few events, sealed on close */
const sealedStore = async (keyDir?: false): Promise<void> => {
  const store = getSqliteEventStore({ path, durability: 'normal', writer: 'inline', ...(keyDir === false ? { keyDir } : {}) });
  const b = createEventBuilder({ host: 'h1' });
  await store.appendToStream(hostStreamName('h1'), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
  await store.close();
};
/** opens (and closes) the store again: what it threw, or undefined */
const openError = async (): Promise<unknown> => {
  try {
    await getSqliteEventStore({ path, durability: 'normal', writer: 'inline' }).close();
  } catch (e) {
    return e;
  }
  return undefined;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-signing-'));
  path = join(dir, 'events.sqlite');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the store signing key', () => {
  it('hardening #13: a signing key deleted after the store sealed is never silently replaced; the open is refused naming the file and how to rotate', async () => {
    await sealedStore();
    const privPath = join(dir, PRIVATE_KEY_FILE);
    const oldPublic = readFileSync(join(dir, PUBLIC_KEY_FILE), 'utf8');
    unlinkSync(privPath);
    const error = await openError();
    expect(isAppError(error)).toBe(true);
    expect((error as Error).message).toContain(privPath);
    expect((error as Error).message).toMatch(/missing.*1 signed checkpoint.*rotate keys on purpose/s);
    expect(exitCodeFor(error)).toBe(2);
    // nothing was minted: the old seals still verify with the old public key
    expect(existsSync(privPath)).toBe(false);
    expect(readFileSync(join(dir, PUBLIC_KEY_FILE), 'utf8')).toBe(oldPublic);
    const db = new Database(path, { readonly: true });
    db.defaultSafeIntegers(true);
    try {
      expect(verifySqliteStore(db, readPublicKey(join(dir, PUBLIC_KEY_FILE))).ok).toBe(true);
    } finally {
      db.close();
    }
  });

  it('hardening #13: a garbage signing key file is refused naming the file, not with a bare decoder error', async () => {
    await sealedStore();
    const privPath = join(dir, PRIVATE_KEY_FILE);
    writeFileSync(privPath, 'not a key at all\n');
    const error = await openError();
    expect(isAppError(error)).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`^${privPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read the store's signing key`));
    expect(exitCodeFor(error)).toBe(2);
    expect(readFileSync(privPath, 'utf8')).toBe('not a key at all\n');
  });

  it('hardening #13: a store that never sealed (a brand-new one, or one run without keys) mints its key pair', async () => {
    await sealedStore(false);
    expect(existsSync(join(dir, PRIVATE_KEY_FILE))).toBe(false);
    expect(await openError()).toBeUndefined();
    expect(existsSync(join(dir, PRIVATE_KEY_FILE))).toBe(true);
    expect(existsSync(join(dir, PUBLIC_KEY_FILE))).toBe(true);
  });
});
