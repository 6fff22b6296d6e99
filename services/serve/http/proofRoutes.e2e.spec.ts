import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../schemas/index.js';
import { getSqliteEventStore, type SqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { openCheckpoint } from '../../shared/eventStore/format/checkpoint.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../shared/eventStore/format/merkle.js';
import { PUBLIC_KEY_FILE, readPublicKey } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { problemMiddleware } from './problem.js';
import { createProofRouter } from './proofRoutes.js';

let dir: string;
let store: SqliteEventStore;
let server: Server;
let base: string;
const b = createEventBuilder({ host: 'node-a' });
const get = async (path: string) => {
  const r = await fetch(`${base}${path}`);
  return { status: r.status, text: await r.text() };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-proofs-'));
  store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), writer: 'inline', durability: 'normal', sealIntervalMs: 3_600_000 });
  for (const n of [5, 8]) {
    await store.appendToStream(hostStreamName('node-a'), Array.from({ length: n }, () => b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })));
    await store.seal();
  }
  const app = express();
  app.use(createProofRouter({ db: store.db }));
  app.use(problemMiddleware);
  server = app.listen(0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('http > transparency-log proofs', () => {
  it('given a checkpoint and an inclusion proof served by the API, when an auditor checks them with the public key alone, then the event is in the signed tree', async () => {
    const note = (await get('/v1/log/checkpoint')).text;
    const json = JSON.parse((await get('/v1/log/checkpoint?format=json')).text) as { origin: string; size: number };
    const opened = openCheckpoint(note, [{ name: json.origin, publicKey: readPublicKey(join(dir, PUBLIC_KEY_FILE)) }]);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.value.checkpoint.size).toBe(13);
    const p = JSON.parse((await get('/v1/log/proofs/inclusion?position=7')).text) as { leafIndex: number; size: number; leaf: { format: string; stream: string; revision: number; event: string }; hashes: string[] };
    // a v2 leaf, built as an auditor would from the spec: prefix, stream, revision, SHA-256 of the event's bytes
    expect(p.leaf.format).toBe('iommutrail/leaf/v2');
    const leaf = leafHash(Buffer.concat([Buffer.from(`iommutrail/leaf/v2\n${p.leaf.stream}\n${p.leaf.revision}\n`), createHash('sha256').update(p.leaf.event).digest()]));
    expect(verifyInclusion(p.leafIndex, p.size, leaf, p.hashes.map((h) => Buffer.from(h, 'base64')), opened.value.checkpoint.root)).toBe(true);
    expect(verifyInclusion(p.leafIndex, p.size, leafHash('forged'), p.hashes.map((h) => Buffer.from(h, 'base64')), opened.value.checkpoint.root)).toBe(false);
  });

  it('given two checkpoint sizes, when the API serves the consistency proof, then it proves the older tree is a prefix of the newer', async () => {
    const p = JSON.parse((await get('/v1/log/proofs/consistency?first=5&second=13')).text) as { hashes: string[] };
    const inc = JSON.parse((await get('/v1/log/proofs/inclusion?position=1&size=5')).text) as { hashes: string[] };
    expect(inc.hashes.length).toBeGreaterThan(0);
    const db = store.db;
    const root = (size: number) => {
      const note = (db.prepare('SELECT note FROM tlog_checkpoints WHERE size = ?').get(size) as { note: string }).note;
      return Buffer.from(note.split('\n')[2]!, 'base64');
    };
    expect(verifyConsistency(5, 13, root(5), root(13), p.hashes.map((h) => Buffer.from(h, 'base64')))).toBe(true);
  });

  it('given a position beyond the tree, when asked for its proof, then 400 names the field', async () => {
    const r = await get('/v1/log/proofs/inclusion?position=99');
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/position/);
    expect((await get('/v1/log/proofs/consistency?first=0')).status).toBe(400);
  });
});
