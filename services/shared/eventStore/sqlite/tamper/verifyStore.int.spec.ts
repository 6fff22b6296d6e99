import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../../../schemas/index.js';
import { getSqliteEventStore } from '../sqliteEventStore.js';
import { canonicalJson, chainHash, digestOf } from '../../format/chain.js';
import { leafHash, storedHashIndex } from '../../format/merkle.js';
import { PUBLIC_KEY_FILE, readPublicKey } from './signing.js';
import { eventLeafHash, LEAF_V1, LEAF_V2, leafFormatOf, storedHashes } from './tlogStore.js';
import { verifySqliteStore } from './verifyStore.js';

let dir: string;
let path: string;
const HOST = 'node-a';
const STREAM = hostStreamName(HOST);

const fill = async (count: number): Promise<void> => {
  const store = getSqliteEventStore({ path, durability: 'normal', sealIntervalMs: 60_000 });
  for (const host of [HOST, 'node-b']) {
    const b = createEventBuilder({ host });
    const events = Array.from({ length: count }, (_, i) => b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' }));
    await store.appendToStream(hostStreamName(host), events);
  }
  // close seals the heads
  await store.close();
};

const raw = (): Database.Database => {
  const db = new Database(path);
  db.defaultSafeIntegers(true);
  return db;
};
const verify = () => {
  const db = new Database(path, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return verifySqliteStore(db, readPublicKey(join(dir, PUBLIC_KEY_FILE)));
  } finally {
    db.close();
  }
};
const row = (db: Database.Database, revision: bigint) =>
  db.prepare('SELECT position, id, json, prev_hash, hash FROM events WHERE stream = ? AND revision = ?').get(STREAM, revision) as {
    position: bigint;
    id: string;
    json: string;
    prev_hash: Buffer;
    hash: Buffer;
  };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-tamper-'));
  path = join(dir, 'events.sqlite');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('verify > sqlite store', () => {
  it('given an untouched store, when verified, then it is clean and fully sealed', async () => {
    await fill(10);
    const report = verify();
    expect(report.findings).toEqual([]);
    expect(report).toMatchObject({ ok: true, events: 20, streams: 2, sealedEvents: 20 });
  });

  it("given a row's JSON edited in place, when verified, then that event is named as modified", async () => {
    await fill(10);
    const db = raw();
    const target = row(db, 4n);
    db.prepare('UPDATE events SET json = ? WHERE position = ?').run(target.json.replace('vfio-pci', 'nouveau'), target.position);
    db.close();
    const report = verify();
    expect(report.ok).toBe(false);
    expect(report.findings[0]).toMatchObject({ kind: 'modified', stream: STREAM, revision: 4n, eventId: target.id });
  });

  it('given a row deleted from the middle, when verified, then the removal is named at the next event', async () => {
    await fill(10);
    const db = raw();
    const next = row(db, 6n);
    db.prepare('DELETE FROM events WHERE stream = ? AND revision = 5').run(STREAM);
    db.close();
    const report = verify();
    expect(report.findings[0]).toMatchObject({ kind: 'removed', stream: STREAM, revision: 6n, eventId: next.id });
  });

  it('given the last rows deleted, when verified, then the signed checkpoint reveals the removal', async () => {
    await fill(10);
    const db = raw();
    db.prepare('DELETE FROM events WHERE stream = ? AND revision >= 8').run(STREAM);
    db.close();
    const report = verify();
    expect(report.findings[0]).toMatchObject({ kind: 'removed', stream: STREAM, revision: 8n });
  });

  it('given two rows swapped (their revisions exchanged), when verified, then the reordering is named', async () => {
    await fill(10);
    const db = raw();
    const [a, b] = [row(db, 3n), row(db, 4n)];
    db.transaction(() => {
      db.prepare('UPDATE events SET revision = -1 WHERE position = ?').run(a.position);
      db.prepare('UPDATE events SET revision = 3 WHERE position = ?').run(b.position);
      db.prepare('UPDATE events SET revision = 4 WHERE position = ?').run(a.position);
    })();
    db.close();
    const report = verify();
    expect(report.findings[0]).toMatchObject({ kind: 'reordered', stream: STREAM, revision: 3n, eventId: b.id });
  });

  it('given two rows whose contents were swapped, when verified, then the reordering is named', async () => {
    await fill(10);
    const db = raw();
    const [a, b] = [row(db, 2n), row(db, 7n)];
    db.transaction(() => {
      db.prepare("UPDATE events SET id = 'x', json = ? WHERE position = ?").run(b.json, a.position);
      db.prepare('UPDATE events SET id = ?, json = ? WHERE position = ?').run(a.id, a.json, b.position);
      db.prepare("UPDATE events SET id = ? WHERE id = 'x'").run(b.id);
    })();
    db.close();
    const report = verify();
    expect(report.findings[0]).toMatchObject({ kind: 'reordered', stream: STREAM, revision: 2n });
  });

  it('given a forged row inserted mid-stream with a correctly chained hash, when verified, then the forged event is named as inserted', async () => {
    await fill(10);
    const db = raw();
    const prev = row(db, 4n);
    const forged = createEventBuilder({ host: HOST, firstSeq: 999 }).event('DriverBound', { device: '0000:09:00.0', driver: 'vfio-pci' });
    const json = canonicalJson(forged);
    db.transaction(() => {
      // make room at revision 5 (two steps: the (stream, revision) key is unique)
      db.prepare('UPDATE events SET revision = -revision - 100 WHERE stream = ? AND revision >= 5').run(STREAM);
      db.prepare('UPDATE events SET revision = -revision - 99 WHERE stream = ? AND revision < 0').run(STREAM);
      db.prepare('INSERT INTO events (id, stream, revision, type, time_ns, json, prev_hash, hash) VALUES (?, ?, 5, ?, ?, ?, ?, ?)').run(
        forged.id,
        STREAM,
        forged.type,
        BigInt(forged.time),
        json,
        prev.hash,
        chainHash(prev.hash, digestOf(json)),
      );
    })();
    db.close();
    const report = verify();
    expect(report.findings[0]).toMatchObject({ kind: 'inserted', stream: STREAM, revision: 5n, eventId: forged.id });
  });

  it('given the whole chain rebuilt after an edit, when verified, then the signed checkpoint exposes it', async () => {
    await fill(6);
    const db = raw();
    const rows = db.prepare('SELECT position, json, prev_hash FROM events WHERE stream = ? ORDER BY revision').all(STREAM) as { position: bigint; json: string; prev_hash: Buffer }[];
    let prev = rows[0]!.prev_hash;
    db.transaction(() => {
      rows.forEach((r, i) => {
        const json = i === 2 ? r.json.replace('vfio-pci', 'nouveau') : r.json;
        const hash = chainHash(prev, digestOf(json));
        db.prepare('UPDATE events SET json = ?, prev_hash = ?, hash = ? WHERE position = ?').run(json, prev, hash, r.position);
        prev = hash;
      });
    })();
    db.close();
    const report = verify();
    expect(report.findings[0]).toMatchObject({ kind: 'modified', stream: STREAM });
  });

  it('given a seal signed by another key, when verified with the pinned key, then the seal is rejected', async () => {
    await fill(3);
    const db = raw();
    db.prepare("UPDATE seals SET payload = replace(payload, '\"revision\":\"2\"', '\"revision\":\"1\"')").run();
    db.close();
    const report = verify();
    expect(report.findings.some((f) => f.kind === 'seal' && /bad signature/.test(f.message))).toBe(true);
  });
});

describe('verify > leaf formats', () => {
  it('given a new store, when it appends, then its log has v2 leaves (stream, revision, digest) hashed with the chain and it verifies', async () => {
    await fill(50);
    const db = raw();
    try {
      expect(leafFormatOf(db)).toBe(LEAF_V2);
      const first = row(db, 0n);
      const [, leaf] = [...storedHashes(db)][0]!;
      // leaf 0: 0x00 || "iommutrail/leaf/v2\n<stream>\n<revision>\n" || SHA-256(canonical bytes), from the spec
      const expected = leafHash(Buffer.concat([Buffer.from(`iommutrail/leaf/v2\n${STREAM}\n0\n`), createHash('sha256').update(first.json).digest()]));
      expect(first.position).toBe(1n);
      expect(leaf.equals(expected)).toBe(true);
    } finally {
      db.close();
    }
    expect(verify().findings).toEqual([]);
  });

  it('given a log from before v2 leaves (an origin, no format row), when it is opened and appended to, then it keeps v1 leaves and its old checkpoints still verify', async () => {
    // a store from before the tree, whose log is then created by a build that wrote v1 leaves: origin, no format row
    const old = getSqliteEventStore({ path, durability: 'normal', sealIntervalMs: 60_000, merkleTree: false });
    const b = createEventBuilder({ host: HOST });
    await old.appendToStream(STREAM, Array.from({ length: 20 }, (_, i) => b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' })));
    await old.close();
    const db = raw();
    db.prepare("INSERT INTO tlog_meta (name, value) VALUES ('origin', 'iommutrail.local/log-v1')").run();
    db.close();
    const store = getSqliteEventStore({ path, durability: 'normal', sealIntervalMs: 60_000 });
    await store.appendToStream(STREAM, Array.from({ length: 20 }, (_, i) => b.event('DriverUnbound', { device: `0000:0${i % 8}:00.0` })));
    await store.close();
    const check = raw();
    try {
      expect(leafFormatOf(check)).toBe(LEAF_V1);
      const hashes = [...storedHashes(check)];
      const last = check.prepare('SELECT position, stream, revision, json FROM events ORDER BY position DESC LIMIT 1').get() as { position: bigint; stream: string; revision: bigint; json: string };
      // the last leaf (an appended one, not built at open) is v1: leaf 39 is stored at Go tlog index storedHashIndex(0, 39)
      expect(hashes.find(([i]) => i === storedHashIndex(0, 39))![1].equals(eventLeafHash(last.position, last.stream, last.revision, last.json))).toBe(true);
    } finally {
      check.close();
    }
    expect(verify().findings).toEqual([]);
  });
});
