import { createHash, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../../../schemas/index.js';
import { getSqliteEventStore, type SqliteEventStore } from '../sqliteEventStore.js';
import { exportBundle, verifyBundle } from './bundle.js';
import { canonicalJson, toHex } from '../../format/chain.js';
import { formatFinding, type VerifyReport } from './findings.js';
import { loadSigningKeys, PUBLIC_KEY_FILE, readPublicKey } from './signing.js';
import { verifySqliteStore } from './verifyStore.js';

/**
 * Issue 23: a seal signs the heads that moved since the previous seal and the hash of that seal's bytes; verify
 * rebuilds the head set by replaying the seals in order. A fleet of many hosts then pays for the hosts that
 * were active, not for every host at every seal.
 */
let dir: string;
let path: string;
const STREAMS = 300;
const host = (i: number): string => `node-${String(i).padStart(4, '0')}`;

const open = (): SqliteEventStore => getSqliteEventStore({ path, durability: 'normal', sealIntervalMs: 3_600_000, writer: 'inline' });
const builders = new Map<string, ReturnType<typeof createEventBuilder>>();
const appendOne = (store: SqliteEventStore, h: string): Promise<unknown> => {
  let b = builders.get(h);
  if (!b) builders.set(h, (b = createEventBuilder({ host: h })));
  return store.appendToStream(hostStreamName(h), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
};

/** seal 1: every one of STREAMS hosts has one event; seal 2: hosts 1 and 2 moved; seal 3: host 3 moved */
const fill = async (): Promise<void> => {
  const store = open();
  await Promise.all(Array.from({ length: STREAMS }, (_, i) => appendOne(store, host(i))));
  await store.seal();
  await Promise.all([appendOne(store, host(1)), appendOne(store, host(2))]);
  await store.seal();
  await appendOne(store, host(3));
  await store.close();
};

const raw = (): Database.Database => {
  const db = new Database(path);
  db.defaultSafeIntegers(true);
  return db;
};
const seals = (): { id: bigint; payload: string; signature: string }[] => {
  const db = raw();
  try {
    return db.prepare<[], { id: bigint; payload: string; signature: string }>('SELECT id, payload, signature FROM seals ORDER BY id').all();
  } finally {
    db.close();
  }
};
const tamper = (edit: (db: Database.Database) => void): void => {
  const db = raw();
  try {
    db.transaction(() => edit(db))();
  } finally {
    db.close();
  }
};
const verify = (): VerifyReport => {
  const db = new Database(path, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return verifySqliteStore(db, readPublicKey(join(dir, PUBLIC_KEY_FILE)));
  } finally {
    db.close();
  }
};
const lines = (r: VerifyReport): string => r.findings.map(formatFinding).join('\n');
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-seals-'));
  path = join(dir, 'events.sqlite');
  builders.clear();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('incremental seals (issue 23)', () => {
  it("issue 23 seals: a seal's size follows the streams that changed, not the number of streams", async () => {
    // given a store of 300 streams, sealed once
    await fill();
    // when two streams, then one, moved before the next seals
    const [first, second, third] = seals();
    // then the first seal lists all 300 heads, the later ones only the streams that moved
    expect((JSON.parse(first!.payload) as { heads: unknown[] }).heads).toHaveLength(STREAMS);
    expect((JSON.parse(second!.payload) as { heads: { stream: string }[] }).heads.map((h) => h.stream)).toEqual([hostStreamName(host(1)), hostStreamName(host(2))]);
    expect((JSON.parse(third!.payload) as { heads: { stream: string }[] }).heads.map((h) => h.stream)).toEqual([hostStreamName(host(3))]);
    expect(second!.payload.length).toBeLessThan(first!.payload.length / 50);
  });

  it('issue 23 seals: each seal names the hash of the one before it and the log position it covers', async () => {
    await fill();
    const [first, second, third] = seals().map((s) => JSON.parse(s.payload) as { format: string; previous: string | null; upTo: string });
    expect(first).toMatchObject({ format: 'iommutrail-seal/v2', previous: null, upTo: String(STREAMS) });
    expect(second).toMatchObject({ previous: sha256(seals()[0]!.payload), upTo: String(STREAMS + 2) });
    expect(third).toMatchObject({ previous: sha256(seals()[1]!.payload), upTo: String(STREAMS + 3) });
  });

  it('issue 23 seals: an untouched store sealed incrementally verifies clean, every event sealed (the head set is replayed)', async () => {
    await fill();
    const report = verify();
    expect(lines(report)).toBe('');
    expect(report).toMatchObject({ ok: true, events: STREAMS + 3, streams: STREAMS, sealedEvents: STREAMS + 3, seals: 3 });
    expect(report.warnings.filter((w) => /not yet sealed/.test(w))).toEqual([]);
  });

  it('issue 23 seals: a dropped seal in the middle is named (the next one chains from a seal that is not there)', async () => {
    await fill();
    tamper((db) => db.prepare('DELETE FROM seals WHERE id = 2').run());
    const report = verify();
    expect(report.ok).toBe(false);
    expect(lines(report)).toMatch(/SEAL: signed checkpoint #3: it chains from a seal that is not the one stored before it/);
  });

  it('issue 23 seals: a dropped first seal is named (the oldest seal left chains from a missing one)', async () => {
    await fill();
    tamper((db) => db.prepare('DELETE FROM seals WHERE id = 1').run());
    expect(lines(verify())).toMatch(/SEAL: signed checkpoint #2: it chains from a seal that is not the one stored before it/);
  });

  it('issue 23 seals: two seals swapped are named', async () => {
    await fill();
    tamper((db) => {
      const [, b, c] = db.prepare<[], { id: bigint; payload: string; signature: string }>('SELECT id, payload, signature FROM seals ORDER BY id').all();
      const put = db.prepare('UPDATE seals SET payload = ?, signature = ? WHERE id = ?');
      put.run(c!.payload, c!.signature, b!.id);
      put.run(b!.payload, b!.signature, c!.id);
    });
    expect(lines(verify())).toMatch(/SEAL: signed checkpoint #2: it chains from a seal that is not the one stored before it/);
  });

  it('issue 23 seals: a forged incremental seal (edited head) fails its signature', async () => {
    await fill();
    tamper((db) => db.prepare("UPDATE seals SET payload = replace(payload, '\"revision\":\"1\"', '\"revision\":\"0\"') WHERE id = 2").run());
    expect(lines(verify())).toMatch(/SEAL: signed checkpoint #2: bad signature/);
  });

  it('issue 23 seals: a stream rewritten after a seal that is not the newest is caught by the replayed head set', async () => {
    await fill();
    // host 7 was sealed by seal 1 only; its only event (its head) is removed
    tamper((db) => db.prepare('DELETE FROM events WHERE stream = ?').run(hostStreamName(host(7))));
    expect(lines(verify())).toMatch(new RegExp(`REMOVED: the signed checkpoint covers revision 0 .*stream ${hostStreamName(host(7))}`));
  });

  it('issue 23 seals: a store sealed in the old form (v1, every head) still verifies, and its next seal chains from it', async () => {
    // given a store whose only seal is a v1 seal of every head, as stores sealed before issue 23 hold
    await fill();
    tamper((db) => {
      const keys = loadSigningKeys(dir, { mayMint: false });
      const heads = db
        .prepare<[], { name: string; revision: bigint; position: bigint; hash: Buffer }>('SELECT stream AS name, revision, max(position) AS position, hash FROM events GROUP BY stream ORDER BY name')
        .all()
        .map((h) => ({ stream: h.name, revision: h.revision.toString(), position: h.position.toString(), hash: toHex(h.hash) }));
      const payload = canonicalJson({ format: 'iommutrail-seal/v1', sealedAtNs: '1', keyId: keys.keyId, heads });
      db.prepare('DELETE FROM seals').run();
      db.prepare('INSERT INTO seals (payload, signature) VALUES (?, ?)').run(payload, sign(null, Buffer.from(payload), keys.privateKey).toString('base64'));
    });
    expect(verify()).toMatchObject({ ok: true, sealedEvents: STREAMS + 3 });
    // when the store appends again and seals
    const store = open();
    await appendOne(store, host(9));
    await store.close();
    // then the new seal holds the one head that moved and chains from the v1 seal; the whole store verifies
    const [v1, v2] = seals();
    expect(JSON.parse(v2!.payload)).toMatchObject({ format: 'iommutrail-seal/v2', previous: sha256(v1!.payload), upTo: String(STREAMS + 4) });
    expect((JSON.parse(v2!.payload) as { heads: unknown[] }).heads).toHaveLength(1);
    const report = verify();
    expect(lines(report)).toBe('');
    expect(report).toMatchObject({ ok: true, sealedEvents: STREAMS + 4 });
  });

  it('issue 23 seals: a bundle of a host that did not move since an older seal is sealed at export and verifies', async () => {
    await fill();
    const store = open();
    try {
      // host 5's head is in seal 1 only
      const out = join(dir, 'bundle');
      await exportBundle(store, { host: host(5), outDir: out });
      const report = verifyBundle(out, { publicKey: readPublicKey(join(dir, PUBLIC_KEY_FILE)) });
      expect(report.findings.map(formatFinding)).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      await store.close();
    }
    expect(verify().ok).toBe(true);
  });
});
