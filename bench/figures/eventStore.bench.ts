import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { createEventBuilder, hostStreamName, type IommuEvent } from '../../schemas/index.js';
import { getSqliteEventStore } from '../../services/shared/eventStore/index.js';
import { migrate } from '../../services/shared/eventStore/sqlite/migrations.js';
import { defineFigure, type BenchContext, type Measurement } from '../harness.js';

/**
 * Issue 5: the SQLite event store, durable (synchronous=FULL, WAL), beside in the same run
 * - the raw limit: the very rows the store wrote (events with their canonical JSON and chain hashes, index
 *   rows, stream heads), copied out and inserted by plain better-sqlite3 into the same schema in one
 *   transaction: what SQLite alone costs for this data;
 * - a minimal table for context: JSON.stringify + insert of (id, stream, revision, type, time, JSON) in one
 *   transaction, i.e. what an event log without tamper evidence and indexes would cost; read back with one
 *   SELECT + JSON.parse;
 * - the peer: Emmett's SQLite event store (@event-driven-io/emmett-sqlite 0.38.5) appending the same events
 *   in the same batches, and reading them back with its batch reader.
 * Ours does more per event than the raw rows: canonical JSON (RFC 8785), two sha256 for the chain, the
 * idempotency key, group/device index rows; reads go through the catalogue's parse (G5). Its single writer runs
 * on a worker thread, so the caller's thread computes canonical JSON and the chain while the writer inserts:
 * two cores at work where the raw limit uses one (the figure is the store as shipped, not a per-core cost).
 * The peer lives in bench/peer (own package: its sqlite3 compiles from source for minutes); full mode
 * installs it when missing, quick mode skips it with a printed reason.
 */
const HOSTS = 16;
const BATCH = 1000;
const PEER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'peer');
const PEER_PKG = '@event-driven-io/emmett-sqlite';

const fleet = (total: number): IommuEvent[][] => {
  const builders = Array.from({ length: HOSTS }, (_, h) => createEventBuilder({ host: `bench-${h}` }));
  const perHost: IommuEvent[][] = builders.map(() => []);
  for (let i = 0; i < total; i++) {
    const h = i % HOSTS;
    const b = builders[h]!;
    const device = `0000:0${(i >> 4) % 8}:00.0`;
    const e = i % 3 === 0 ? b.raw('DriverBound', { device, driver: 'vfio-pci' }) : i % 3 === 1 ? b.raw('DriverUnbound', { device }) : b.raw('VfioGroupOpened', { group: (i >> 4) % 32, groupFd: '4242:3', outcome: { ok: true } });
    perHost[h]!.push(e as IommuEvent);
  }
  return perHost;
};

/** batches of BATCH per host stream, interleaved across hosts (as a fleet's ingest would hand them over) */
const batches = (perHost: IommuEvent[][]): { stream: string; events: IommuEvent[] }[] => {
  const out: { stream: string; events: IommuEvent[] }[] = [];
  const longest = Math.max(...perHost.map((p) => p.length));
  for (let off = 0; off < longest; off += BATCH) {
    perHost.forEach((events, h) => {
      const slice = events.slice(off, off + BATCH);
      if (slice.length > 0) out.push({ stream: hostStreamName(`bench-${h}`), events: slice });
    });
  }
  return out;
};

const perSecond = (n: number, start: bigint): number => n / (Number(process.hrtime.bigint() - start) / 1e9);

const measureOurs = async (work: { stream: string; events: IommuEvent[] }[], total: number, dir: string) => {
  const store = getSqliteEventStore({ path: join(dir, 'ours.sqlite'), durability: 'full' });
  await store.ready();
  const perStream = new Map<string, IommuEvent[][]>();
  for (const w of work) perStream.set(w.stream, [...(perStream.get(w.stream) ?? []), w.events]);
  let t = process.hrtime.bigint();
  // each host stream appends its batches one after another (as a host's collector would), the hosts
  // concurrently: their appends share commits (group commit) and the store's writer thread overlaps them
  await Promise.all([...perStream].map(async ([stream, list]) => {
    for (const events of list) await store.appendToStream(stream, events);
  }));
  const append = perSecond(total, t);
  t = process.hrtime.bigint();
  let n = 0;
  for await (const _ of store.readAll()) n++;
  const read = perSecond(n, t);
  await store.close();
  if (n !== total) throw new Error(`ours read ${n} of ${total}`);
  return { append, read };
};

/** the store's own rows, re-inserted by plain better-sqlite3 (same schema, one transaction) */
const measureSameRows = (dir: string): number => {
  const src = new Database(join(dir, 'ours.sqlite'), { readonly: true });
  src.defaultSafeIntegers(true);
  const events = src.prepare('SELECT position, id, stream, revision, type, time_ns, json, prev_hash, hash FROM events ORDER BY position').raw().all() as unknown[][];
  const keys = src.prepare('SELECT id, host, key FROM index_keys').raw().all() as unknown[][];
  const index = src.prepare('SELECT key_id, position FROM event_index ORDER BY position').raw().all() as unknown[][];
  src.close();
  const db = new Database(join(dir, 'same.sqlite'));
  db.defaultSafeIntegers(true);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  migrate(db);
  const e = db.prepare('INSERT INTO events (position, id, stream, revision, type, time_ns, json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const k = db.prepare('INSERT INTO index_keys (id, host, key) VALUES (?, ?, ?)');
  const i = db.prepare('INSERT INTO event_index (key_id, position) VALUES (?, ?)');
  const t = process.hrtime.bigint();
  db.transaction(() => {
    for (const r of keys) k.run(r);
    for (const r of events) e.run(r);
    for (const r of index) i.run(r);
  })();
  const rate = perSecond(events.length, t);
  db.close();
  return rate;
};

const measureRaw = (work: { stream: string; events: IommuEvent[] }[], total: number, dir: string) => {
  const db = new Database(join(dir, 'raw.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE events (position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, revision INTEGER NOT NULL,
    type TEXT NOT NULL, time_ns INTEGER NOT NULL, json TEXT NOT NULL, UNIQUE (stream, revision))`);
  const insert = db.prepare('INSERT INTO events (id, stream, revision, type, time_ns, json) VALUES (?, ?, ?, ?, ?, ?)');
  const revisions = new Map<string, bigint>();
  let t = process.hrtime.bigint();
  db.transaction(() => {
    for (const w of work) {
      let r = revisions.get(w.stream) ?? -1n;
      for (const e of w.events) insert.run(e.id, w.stream, ++r, e.type, BigInt(e.time), JSON.stringify(e));
      revisions.set(w.stream, r);
    }
  })();
  const append = perSecond(total, t);
  t = process.hrtime.bigint();
  let n = 0;
  for (const row of db.prepare<[], { json: string }>('SELECT json FROM events ORDER BY position').iterate()) {
    JSON.parse(row.json);
    n++;
  }
  const read = perSecond(n, t);
  db.close();
  return { append, read };
};

interface EmmettModule {
  getSQLiteEventStore(o: { fileName: string }): { appendToStream(s: string, e: { type: string; data: unknown }[]): Promise<unknown> };
  sqliteConnection(o: { fileName: string }): { close(): void };
  readMessagesBatch(db: unknown, o: { after: bigint; batchSize: number }): Promise<{ messages: unknown[]; currentGlobalPosition: bigint; areEventsLeft: boolean }>;
}

const loadPeer = async (ctx: BenchContext): Promise<EmmettModule | string> => {
  const installed = existsSync(join(PEER_DIR, 'node_modules', PEER_PKG, 'package.json')) && existsSync(join(PEER_DIR, 'node_modules', 'sqlite3', 'build', 'Release'));
  if (!installed) {
    if (ctx.mode === 'quick') return `peer not installed (run: npm_config_nodedir=/usr npm --prefix bench/peer install; sqlite3 compiles ~4 min)`;
    ctx.log('installing the peer (bench/peer: emmett-sqlite; sqlite3 compiles from source, ~4 minutes)');
    execFileSync('npm', ['--prefix', PEER_DIR, 'install', '--no-audit', '--no-fund'], { stdio: 'inherit', env: { ...process.env, npm_config_nodedir: '/usr' } });
  }
  const require = createRequire(join(PEER_DIR, 'package.json'));
  return (await import(pathToFileURL(require.resolve(PEER_PKG)).href)) as EmmettModule;
};

const measurePeer = async (peer: EmmettModule, work: { stream: string; events: IommuEvent[] }[], total: number, dir: string) => {
  const fileName = join(dir, 'peer.sqlite');
  const store = peer.getSQLiteEventStore({ fileName });
  let t = process.hrtime.bigint();
  // one at a time: concurrent appends make this peer's per-call connections fail (SQLITE_MISUSE)
  for (const w of work) await store.appendToStream(w.stream, w.events.map((e) => ({ type: e.type, data: e })));
  const append = perSecond(total, t);
  const conn = peer.sqliteConnection({ fileName });
  t = process.hrtime.bigint();
  let n = 0;
  let after = 0n;
  for (;;) {
    const r = await peer.readMessagesBatch(conn, { after, batchSize: BATCH });
    n += r.messages.length;
    after = r.currentGlobalPosition;
    if (!r.areEventsLeft || r.messages.length === 0) break;
  }
  const read = perSecond(n, t);
  conn.close();
  return { append, read, n };
};

export default defineFigure({
  name: 'event store (SQLite)',
  issue: 5,
  // from 1e5: a run of 2e4 lasts about as long as the JIT warm-up of the writer thread (0.44× there, measured).
  // Not 1e7: every event and every copied row is held in memory and handed to four stores (over 10 GiB at 1e7);
  // the store at 1e7 is measured by read all, time-travel and restart on a streamed, cached store (fleetStore.ts)
  sizes: { quick: [2_000], full: [100_000, 1_000_000] },
  async measure(size, ctx): Promise<readonly Measurement[]> {
    const work = batches(fleet(size));
    const raw = measureRaw(work, size, ctx.tmpDir);
    const ours = await measureOurs(work, size, ctx.tmpDir);
    const same = measureSameRows(ctx.tmpDir);
    const out: Measurement[] = [
      { label: 'append (batched, durable)', value: ours.append, unit: 'events/s', higherIsBetter: true, reference: { label: 'the same rows by plain better-sqlite3, one transaction', value: same, kind: 'raw-limit' }, targetRatio: 0.7 },
      { label: 'append (batched, durable) vs minimal table', value: ours.append, unit: 'events/s', higherIsBetter: true, reference: { label: 'minimal event table, JSON.stringify + insert, one transaction', value: raw.append, kind: 'raw-limit' } },
      { label: 'read all (parsed)', value: ours.read, unit: 'events/s', higherIsBetter: true, reference: { label: 'raw SELECT + JSON.parse', value: raw.read, kind: 'raw-limit' } },
    ];
    const peer = await loadPeer(ctx);
    if (typeof peer === 'string') {
      ctx.log(`SKIPPED peer (emmett-sqlite): ${peer}`);
      return out;
    }
    const p = await measurePeer(peer, work, size, ctx.tmpDir);
    if (p.n !== size) ctx.log(`peer read ${p.n} of ${size} events`);
    out.push(
      { label: 'append (batched, durable) vs peer', value: ours.append, unit: 'events/s', higherIsBetter: true, reference: { label: 'emmett-sqlite 0.38.5 appendToStream', value: p.append, kind: 'peer' } },
      { label: 'read all vs peer', value: ours.read, unit: 'events/s', higherIsBetter: true, reference: { label: 'emmett-sqlite 0.38.5 readMessagesBatch', value: p.read, kind: 'peer' } },
    );
    return out;
  },
});
