import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../../../schemas/index.js';
import { getSqliteEventStore } from '../sqliteEventStore.js';
import { canonicalJson, chainHash, digestOf } from '../../format/chain.js';
import { formatFinding, type VerifyReport } from './findings.js';
import { PUBLIC_KEY_FILE, readPublicKey } from './signing.js';
import { openTlog } from './tlogStore.js';
import { STREAM_HEADS_BEFORE_V6 } from '../testing/olderSchema.js';
import type { ExternalCheckpoint } from './tlogVerify.js';
import { verifySqliteStore } from './verifyStore.js';

/**
 * The tamper suite of issue 20: each way an attacker with write access to the data folder (but not the
 * private key) can edit a store, and the finding `verify` must name. The attacker's tools are this
 * project's own code: they recompute chains and the Merkle tree exactly as the writer does.
 */
let dir: string;
let path: string;
const A = 'node-a';
const B = 'node-b';

/** positions 1-10 node-a, checkpoint; 11-20 node-b, checkpoint; 21-30 node-a, checkpoint at close */
const fill = async (): Promise<void> => {
  const store = getSqliteEventStore({ path, durability: 'normal', sealIntervalMs: 3_600_000, writer: 'inline' });
  const builders: Record<string, ReturnType<typeof createEventBuilder>> = { [A]: createEventBuilder({ host: A }), [B]: createEventBuilder({ host: B }) };
  for (const host of [A, B, A]) {
    const events = Array.from({ length: 10 }, (_, i) => builders[host]!.event('DeviceAddedToGroup', { device: `0000:0${i % 8}:00.0`, group: 10 + (i % 3) }));
    await store.appendToStream(hostStreamName(host), events);
    await store.seal();
  }
  await store.close();
};

const raw = (): Database.Database => {
  const db = new Database(path);
  db.defaultSafeIntegers(true);
  return db;
};
const tamper = (edit: (db: Database.Database) => void): void => {
  const db = raw();
  try {
    db.transaction(() => edit(db))();
  } finally {
    db.close();
  }
};
const verify = (external: ExternalCheckpoint[] = []): VerifyReport => {
  const db = new Database(path, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return verifySqliteStore(db, readPublicKey(join(dir, PUBLIC_KEY_FILE)), { external });
  } finally {
    db.close();
  }
};
const lines = (r: VerifyReport): string => r.findings.map(formatFinding).join('\n');
const at = (db: Database.Database, position: number) =>
  db.prepare('SELECT * FROM events WHERE position = ?').get(position) as { id: string; stream: string; revision: bigint; json: string; prev_hash: Buffer; hash: Buffer; time_ns: bigint };
/** the attacker recomputes the whole Merkle tree from the (edited) events */
const rebuildTree = (db: Database.Database): void => {
  db.prepare('DELETE FROM tlog_hashes').run();
  openTlog(db);
};
/** the attacker recomputes a stream's chain from `fromRevision` on (its head is its last event) */
const rechain = (db: Database.Database, stream: string, fromRevision: bigint): void => {
  const rows = db.prepare('SELECT position, json, prev_hash FROM events WHERE stream = ? AND revision >= ? ORDER BY revision').all(stream, fromRevision) as {
    position: bigint;
    json: string;
    prev_hash: Buffer;
  }[];
  let prev = rows[0]!.prev_hash;
  for (const r of rows) {
    const hash = chainHash(prev, digestOf(r.json));
    db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE position = ?').run(prev, hash, r.position);
    prev = hash;
  }
};
/** event 5 edited, its chain and the whole tree recomputed, every seal deleted */
const rewriteHistory = (db: Database.Database): void => {
  const e = at(db, 5);
  db.prepare('UPDATE events SET json = ? WHERE position = 5').run(e.json.replace('"group":11', '"group":12'));
  rechain(db, e.stream, e.revision);
  rebuildTree(db);
  db.prepare('DELETE FROM seals').run();
};
const checkpointNote = (size: number): string => {
  const db = raw();
  try {
    return (db.prepare('SELECT note FROM tlog_checkpoints WHERE size = ?').get(size) as { note: string }).note;
  } finally {
    db.close();
  }
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-tamper-suite-'));
  path = join(dir, 'events.sqlite');
  await fill();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('tamper suite > store', () => {
  it('given an untouched store, when verified, then it is clean: 30 leaves, all under a signed checkpoint', () => {
    const r = verify([{ label: 'witness.note', note: checkpointNote(20) }]);
    expect(lines(r)).toBe('');
    expect(r.log).toEqual({ size: 30, signedSize: 30, checkpoints: 3 });
  });

  it('tamper #1: an event modified, the chain and the Merkle tree recomputed, every seal deleted: the checkpoints it contradicts are named', () => {
    tamper(rewriteHistory);
    const r = verify();
    expect(r.ok).toBe(false);
    expect(lines(r)).toMatch(/the store contradicts store checkpoint of size 10: .*positions 1\.\.10 were rewritten/);
    expect(lines(r)).toMatch(/contradicts store checkpoint of size 20/);
  });

  it('tamper #1b: the same, with every checkpoint deleted too: the store is named as carrying no signed checkpoint', () => {
    tamper((db) => {
      rewriteHistory(db);
      db.prepare('DELETE FROM tlog_checkpoints').run();
    });
    expect(lines(verify())).toMatch(/SEAL: no signed checkpoint covers the store's 30 event\(s\): its checkpoints were deleted/);
  });

  it("tamper #2: a stream's last 10 events deleted with the seal and checkpoint that covered them (older ones remain), tree trimmed: a witness's checkpoint names the truncation", () => {
    const witnessed = checkpointNote(30);
    tamper((db) => {
      db.prepare('DELETE FROM events WHERE position > 20').run();
      db.prepare('DELETE FROM seals WHERE id = (SELECT max(id) FROM seals)').run();
      db.prepare('DELETE FROM tlog_checkpoints WHERE size = 30').run();
      rebuildTree(db);
    });
    const r = verify([{ label: 'witness.note', note: witnessed }]);
    expect(lines(r)).toMatch(/REMOVED: truncated: checkpoint witness\.note \(size 30\) covers 30 events, the store holds 20: positions 21\.\.30 were deleted/);
  });

  it("tamper #2b: a stream's last events deleted while others' events follow: the deleted positions are named from the store alone", () => {
    tamper((db) => {
      db.prepare('DELETE FROM events WHERE position BETWEEN 5 AND 10').run();
      db.prepare('DELETE FROM seals').run();
    });
    expect(lines(verify())).toMatch(/REMOVED: the events at positions 5\.\.10 were deleted/);
  });

  it("tamper #3: a forged event appended at a stream's tail with a correct chain link, index rows and tree leaf: named as covered by no signed checkpoint", () => {
    const forged = createEventBuilder({ host: A, firstSeq: 21 }).event('DeviceAddedToGroup', { device: '0000:09:00.0', group: 99 });
    tamper((db) => {
      const head = db.prepare('SELECT revision, hash FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1').get(hostStreamName(A)) as { revision: bigint; hash: Buffer };
      const json = canonicalJson(forged);
      const hash = chainHash(head.hash, digestOf(json));
      const row = [31n, forged.id, hostStreamName(A), head.revision + 1n, forged.type, BigInt(forged.time), json, head.hash, hash];
      db.prepare('INSERT INTO events (position, id, stream, revision, type, time_ns, json, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)').run(row);
      for (const key of ['g:99', 'd:0000:09:00.0']) {
        db.prepare('INSERT OR IGNORE INTO index_keys (host, key) VALUES (?, ?)').run(A, key);
        db.prepare('INSERT INTO event_index (key_id, position) SELECT id, 31 FROM index_keys WHERE host = ? AND key = ?').run(A, key);
      }
      // the tree catches up over the forged row, exactly as the writer would have added it
      openTlog(db);
    });
    const r = verify();
    expect(r.ok).toBe(false);
    expect(lines(r)).toMatch(/UNSIGNED: positions 31\.\.31 \(1 event\(s\)\) are covered by no signed checkpoint, from position 31 \(host node-a, seq 21, event [^)]+\)/);
  });

  it('tamper #4: every seal and every checkpoint deleted, events untouched: named', () => {
    tamper((db) => {
      db.prepare('DELETE FROM seals').run();
      db.prepare('DELETE FROM tlog_checkpoints').run();
    });
    expect(lines(verify())).toMatch(/no signed checkpoint covers the store's 30 event\(s\)/);
  });

  it.each([
    ['id', "UPDATE events SET id = '01935b16-0000-7000-8000-000000000000' WHERE position = 7", /edited column id \(01935b16-0000-7000-8000-000000000000 stored, .* hashed\) at position 7 \(host node-a, seq 7, event /],
    ['time_ns', 'UPDATE events SET time_ns = 1 WHERE position = 7', /edited column time_ns \(1 stored, \d+ hashed\) at position 7 \(host node-a, seq 7/],
    ['type', "UPDATE events SET type = 'DriverBound' WHERE position = 7", /edited column type \(DriverBound stored, DeviceAddedToGroup hashed\) at position 7/],
  ])('tamper #5: the %s column edited (not hashed before): the event is named', (_col, sql, want) => {
    tamper((db) => db.prepare(sql).run());
    expect(lines(verify())).toMatch(want);
  });

  it('tamper #5: an event_index row deleted (export --group would silently skip the event): the event and the missing key are named', () => {
    tamper((db) => db.prepare("DELETE FROM event_index WHERE position = 12 AND key_id IN (SELECT id FROM index_keys WHERE key LIKE 'g:%')").run());
    expect(lines(verify())).toMatch(/edited index rows of position 12 \(host node-b, seq 2, event [^)]+\): missing g:11/);
  });

  it('tamper #5: an event_index row pointed at another event: both sides are named', () => {
    tamper((db) => db.prepare("UPDATE event_index SET position = 13 WHERE position = 12 AND key_id IN (SELECT id FROM index_keys WHERE key = 'd:0000:01:00.0')").run());
    expect(lines(verify())).toMatch(/position 12 .*missing d:0000:01:00\.0[\s\S]*position 13 .*extra d:0000:01:00\.0/);
  });

  it('tamper #6: an event edited in place, the tree left alone: the event is named (position, host, seq, id) and the checkpoint it contradicts', () => {
    tamper((db) => db.prepare("UPDATE events SET json = replace(json, '\"group\":10', '\"group\":12') WHERE position = 14").run());
    const out = lines(verify());
    expect(out).toMatch(/position 14 \(host node-b, seq 4, event [^)]+\) does not match the transparency log's stored hashes/);
    expect(out).toMatch(/the store contradicts store checkpoint of size 20/);
  });

  it('tamper #7: a checkpoint whose root was edited (a forged fork) is refused, naming it', () => {
    const note = checkpointNote(20).replace(/^([^\n]*\n[^\n]*\n)[^\n]*\n/, `$1${Buffer.alloc(32, 7).toString('base64')}\n`);
    expect(note).not.toBe(checkpointNote(20));
    const r = verify([{ label: 'edited.note', note }]);
    expect(lines(r)).toMatch(/SEAL: checkpoint edited\.note: bad signature/);
  });
});

describe('tamper suite > store upgrades', () => {
  it('given a store from before the Merkle tree, when opened writable, then the tree is built once (said in the log) and it verifies', async () => {
    tamper((db) => {
      // a v2 file: no tree, and no row check (v4)
      db.exec('DROP TABLE tlog_hashes; DROP TABLE tlog_checkpoints; DROP TABLE tlog_meta; ALTER TABLE events DROP COLUMN crc');
      db.exec(STREAM_HEADS_BEFORE_V6);
      db.pragma('user_version = 2');
    });
    const said: object[] = [];
    const store = getSqliteEventStore({ path, writer: 'inline', logger: { warn: (fields, message) => said.push({ ...fields, message }) } });
    await store.close();
    expect(said).toEqual([expect.objectContaining({ events: 30, message: expect.stringMatching(/building the transparency-log Merkle tree once/) })]);
    const r = verify();
    expect(lines(r)).toBe('');
    expect(r.log).toMatchObject({ size: 30, signedSize: 30 });
  });

  it('tamper #16: a store from before the Merkle tree with more than 10,000 events opens writable and gets its tree built (the build wrote while its read iterator was open: "connection is busy")', async () => {
    const big = getSqliteEventStore({ path, writer: 'inline', merkleTree: false, sealIntervalMs: 3_600_000 });
    const b = createEventBuilder({ host: 'node-big' });
    await big.appendToStream(hostStreamName('node-big'), Array.from({ length: 12_000 }, (_, i) => b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' })));
    await big.close();
    tamper((db) => {
      // a v2 file: no tree, and no row check (v4)
      db.exec('DROP TABLE tlog_hashes; DROP TABLE tlog_checkpoints; DROP TABLE tlog_meta; ALTER TABLE events DROP COLUMN crc');
      db.exec(STREAM_HEADS_BEFORE_V6);
      db.pragma('user_version = 2');
    });
    const store = getSqliteEventStore({ path, writer: 'inline' });
    await store.close();
    const r = verify();
    expect(lines(r)).toBe('');
    expect(r.log).toMatchObject({ size: 12_030, signedSize: 12_030 });
  });

  it('given a rejected append (a version conflict) between good ones, when verified, then the tree never took the rejected events', async () => {
    const store = getSqliteEventStore({ path, writer: 'inline' });
    const b = createEventBuilder({ host: 'node-c' });
    await store.appendToStream(hostStreamName('node-c'), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
    await expect(store.appendToStream(hostStreamName('node-c'), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })], { expectedRevision: 5n })).rejects.toThrow();
    await store.appendToStream(hostStreamName('node-c'), [b.event('DriverBound', { device: '0000:02:00.0', driver: 'vfio-pci' })]);
    await store.close();
    const r = verify();
    expect(lines(r)).toBe('');
    expect(r.log).toMatchObject({ size: 32, signedSize: 32 });
  });
});
