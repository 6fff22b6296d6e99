import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { historyEvents } from '../projections/testing/generateHistory.js';
import { hostStreamName, type IommuEvent } from '../schemas/index.js';
import { getSqliteEventStore, type StreamAppend } from '../services/shared/eventStore/index.js';
import { ROW_CHECK_VERSION, SCHEMA_VERSION } from '../services/shared/eventStore/sqlite/migrations.js';
import type { BenchContext } from './harness.js';

/** a file's size with its WAL beside it */
export const bytes = (file: string): number => {
  let n = 0;
  for (const f of [file, `${file}-wal`]) {
    try {
      n += statSync(f).size;
    } catch {
      // no WAL file
    }
  }
  return n;
};

export interface HistoryOptions {
  readonly events: number;
  readonly hosts: number;
}

/** a written (closed) store of a generated history, and each host's last seq (to append after it) */
export interface HistoryStore {
  readonly storeFile: string;
  readonly lastSeq: ReadonlyMap<string, number>;
  readonly events: number;
  readonly hosts: number;
}

/** events handed to the store per multi-stream append (one transaction); at most two such appends in flight */
const BATCH = 100_000;
/** the generator's shape per host: 4 NIC groups and a GPU group (small hosts) */
const SHAPE = { nicGroups: 4, gpuGroups: 1 } as const;

/**
 * Writes a generated history of `events` events over `hosts` hosts into `storeFile` through the product's
 * durable append path (`appendToStreams`: each batch of every host's events one transaction, as the ingest
 * pipeline hands slices over), as it is generated: at most 3×BATCH events exist at once, whatever the history
 * (1e7 events, 1e5 hosts). Returns with the store closed and its WAL folded into the file.
 */
const writeHistory = async (storeFile: string, options: HistoryOptions): Promise<HistoryStore> => {
  const store = getSqliteEventStore({ path: storeFile, durability: 'normal', keyDir: false });
  const lastSeq = new Map<string, number>();
  let buffered = new Map<string, IommuEvent[]>();
  let count = 0;
  let inBatch = 0;
  const inFlight: Promise<void>[] = [];
  const flush = async (): Promise<void> => {
    const appends: StreamAppend[] = [...buffered].map(([host, events]) => ({ streamName: hostStreamName(host), events }));
    buffered = new Map();
    inBatch = 0;
    inFlight.push(
      store.appendToStreams(appends).then((results) => {
        const failed = results.find((r) => !r.ok);
        if (failed && !failed.ok) throw failed.error;
      }),
    );
    // a bounded backlog: the store writes one batch while the next is made
    if (inFlight.length >= 2) await inFlight.shift();
  };
  for (const e of historyEvents({ events: options.events, hosts: options.hosts, ...SHAPE })) {
    count++;
    lastSeq.set(e.host, e.seq);
    const list = buffered.get(e.host);
    if (list) list.push(e);
    else buffered.set(e.host, [e]);
    if (++inBatch >= BATCH) await flush();
  }
  if (inBatch > 0) await flush();
  await Promise.all(inFlight);
  await store.close();
  // what a copy or a read-only open needs: one file, every commit in it
  const db = new Database(storeFile);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { storeFile, lastSeq, events: count, hosts: lastSeq.size };
};

const here = dirname(fileURLToPath(import.meta.url));
/** where prepared stores are kept between runs (never inside the repository) */
export const benchCacheDir = (): string => process.env.IOMMUTRAIL_BENCH_CACHE ?? join(homedir(), '.cache', 'iommutrail', 'bench');

/**
 * What a prepared store depends on: the generator's source, this writer's shape and batch, the store's schema
 * and row-check versions. A change to any of them names another cache entry, so a stale store is never reused.
 */
const cacheKey = (options: HistoryOptions): string =>
  createHash('sha256')
    .update(readFileSync(join(here, '..', 'projections', 'testing', 'generateHistory.ts')))
    .update(JSON.stringify({ ...SHAPE, BATCH, SCHEMA_VERSION, ROW_CHECK_VERSION, events: options.events, hosts: options.hosts }))
    .digest('hex')
    .slice(0, 16);

interface Manifest {
  readonly key: string;
  readonly events: number;
  readonly hosts: number;
  readonly lastSeq: readonly (readonly [string, number])[];
  readonly builtAt: string;
  readonly buildSeconds: number;
}

/**
 * A generated history's store for a figure. In full mode it is prepared once and kept under
 * {@link benchCacheDir} (keyed by {@link cacheKey}; a stale entry of the same size is removed when a new one is
 * built), so reruns measure without rebuilding it; quick mode writes it into the figure's tmpDir. `use`:
 * - 'read': the file itself, to be opened read-only (the cache entry is not changed);
 * - 'copy': a private copy in `ctx.tmpDir` (events.sqlite), for a figure that appends to it or starts a service on it.
 */
export const historyStore = async (
  ctx: Pick<BenchContext, 'mode' | 'tmpDir' | 'log'>,
  options: HistoryOptions,
  use: 'read' | 'copy',
): Promise<HistoryStore> => {
  const target = join(ctx.tmpDir, 'events.sqlite');
  const t0 = process.hrtime.bigint();
  const seconds = (): string => (Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1);
  if (ctx.mode === 'quick') {
    const built = await writeHistory(target, options);
    ctx.log(`store: ${built.events} events over ${built.hosts} hosts written in ${seconds()} s (quick mode: not cached)`);
    return built;
  }
  const key = cacheKey(options);
  const prefix = `history-${options.events}-${options.hosts}-`;
  const entry = join(benchCacheDir(), `${prefix}${key}`);
  const manifestFile = join(entry, 'manifest.json');
  if (!existsSync(manifestFile)) {
    mkdirSync(benchCacheDir(), { recursive: true });
    for (const stale of readdirSync(benchCacheDir()).filter((d) => d.startsWith(prefix)))
      rmSync(join(benchCacheDir(), stale), { recursive: true, force: true });
    // built beside, then renamed: an interrupted build never looks like a cache entry
    const building = `${entry}.building-${process.pid}`;
    mkdirSync(building, { recursive: true });
    const built = await writeHistory(join(building, 'events.sqlite'), options);
    const manifest: Manifest = { key, events: built.events, hosts: built.hosts, lastSeq: [...built.lastSeq], builtAt: new Date().toISOString(), buildSeconds: Number(seconds()) };
    writeFileSync(join(building, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
    renameSync(building, entry);
    ctx.log(`store: ${built.events} events over ${built.hosts} hosts written in ${seconds()} s, cached at ${entry}`);
  } else ctx.log(`store: from the cache ${entry} (not rebuilt)`);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  const cached = join(entry, 'events.sqlite');
  const storeFile = use === 'read' ? cached : target;
  if (use === 'copy') {
    const c0 = process.hrtime.bigint();
    copyFileSync(cached, target);
    ctx.log(`store: copied for this figure (${(statSync(target).size / 2 ** 30).toFixed(2)} GiB) in ${(Number(process.hrtime.bigint() - c0) / 1e9).toFixed(1)} s`);
  }
  return { storeFile, lastSeq: new Map(manifest.lastSeq), events: manifest.events, hosts: manifest.hosts };
};
