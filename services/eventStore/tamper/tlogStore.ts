import { hash, randomBytes } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';
import { IllegalStateError } from '../../../schemas/index.js';
import { openCheckpoint, signCheckpoint, type NoteSigner, type NoteVerifier, type OpenCheckpointResult } from './checkpoint.js';
import { borderIndexes, borderLevels, consistencyProof, HASH_LEN, inclusionProof, nodeHashInto, rootOf, sizeOfStoredCount, storedHashCount, treeHash, type HashReader } from './merkle.js';

/**
 * The store's transparency log: one RFC 9162 Merkle tree over every event in position order, kept in the
 * same SQLite file and the same write transaction as the events.
 *
 * Leaf i (0-based) is the event at position i + 1; its leaf data is
 * `iommutrail/leaf/v1\n<position>\n<stream>\n<revision>\n<canonical event JSON>`, so the leaf pins where the
 * event sits (position, stream, revision) and every field a query selects on (id, host, seq, time, type,
 * groups, devices are inside the JSON; `verify` checks the columns and index rows derived from it).
 *
 * Tables: `tlog_hashes` (every complete subtree hash, by Go tlog's stored-hash index: about 2 per event, kept
 * in runs of up to {@link RUN} consecutive hashes per row, so an append inserts a row per 32 events or so),
 * `tlog_checkpoints` (signed C2SP checkpoints, by tree size), `tlog_meta` (the log's origin).
 */
export const LEAF_FORMAT = 'iommutrail/leaf/v1';

/** the leaf data of an event, as a string (its UTF-8 bytes are hashed) */
export const leafText = (position: bigint | number, stream: string, revision: bigint | number, json: string): string =>
  `${LEAF_FORMAT}\n${position}\n${stream}\n${revision}\n${json}`;

/** RFC 9162 leaf hash of {@link leafText}: one hash call (U+0000 is the 0x00 prefix byte in UTF-8) */
export const eventLeafHash = (position: bigint | number, stream: string, revision: bigint | number, json: string): Buffer =>
  hash('sha256', `\u0000${leafText(position, stream, revision, json)}`, 'buffer');

/** {@link eventLeafHash} written into `out` at `at` (see {@link nodeHashInto} for why a binary string) */
export const eventLeafHashInto = (position: bigint | number, stream: string, revision: bigint | number, json: string, out: Buffer, at: number): void => {
  out.write(hash('sha256', `\u0000${leafText(position, stream, revision, json)}`, 'binary'), at, 'binary');
};

/** at most this many consecutive stored hashes per row: few rows per append, short reads per proof */
export const RUN = 64;

/** reads stored hashes by index (each from the run that holds it) */
export const hashReaderOf = (db: Database): HashReader => {
  const run = db.prepare<[number], { id: bigint | number; hash: Buffer }>('SELECT id, hash FROM tlog_hashes WHERE id <= ? ORDER BY id DESC LIMIT 1');
  return (indexes) =>
    indexes.map((i) => {
      const row = run.get(i);
      const at = row ? (i - Number(row.id)) * HASH_LEN : -1;
      if (!row || at < 0 || at + HASH_LEN > row.hash.length) throw new IllegalStateError(`transparency log: stored hash ${i} is missing; run verify`);
      return row.hash.subarray(at, at + HASH_LEN);
    });
};

/** every stored hash in index order, as [index, hash] (a malformed run yields what it holds; verify compares) */
export function* storedHashes(db: Database): Generator<[number, Buffer]> {
  for (const row of db.prepare<[], { id: bigint | number; hash: Buffer }>('SELECT id, hash FROM tlog_hashes ORDER BY id').iterate()) {
    const first = Number(row.id);
    for (let k = 0; k * HASH_LEN < row.hash.length; k++) yield [first + k, row.hash.subarray(k * HASH_LEN, (k + 1) * HASH_LEN)];
  }
}

/** the tree size the stored hashes describe */
export const storedTreeSize = (db: Database): number => {
  const last = db.prepare<[], { id: bigint | number; len: bigint | number }>('SELECT id, length(hash) AS len FROM tlog_hashes ORDER BY id DESC LIMIT 1').get();
  if (!last) return 0;
  const count = Number(last.id) + Math.floor(Number(last.len) / HASH_LEN);
  const size = sizeOfStoredCount(count);
  if (size === undefined) throw new IllegalStateError(`transparency log: ${count} stored hashes match no tree size; run verify`);
  return size;
};

/** the right border, appended to in place on the writer's hot path; `next` is the next stored-hash index */
interface LiveRange {
  size: number;
  next: number;
  readonly border: [number, Buffer][];
}

const loadRange = (db: Database, read: HashReader): LiveRange => {
  const size = storedTreeSize(db);
  const hashes = read(borderIndexes(size));
  const levels = borderLevels(size);
  return { size, next: storedHashCount(size), border: levels.map((l, i): [number, Buffer] => [l, hashes[i]!]) };
};

/** the log's origin line (minted once per store: a checkpoint of another store never passes for this one) */
export const logOrigin = (db: Database): string | undefined =>
  db.prepare<[], { value: string }>("SELECT value FROM tlog_meta WHERE name = 'origin'").get()?.value;

export interface StoredCheckpoint {
  readonly size: number;
  readonly note: string;
}

export const storedCheckpoints = (db: Database): StoredCheckpoint[] =>
  db
    .prepare<[], { size: bigint | number; note: string }>('SELECT size, note FROM tlog_checkpoints ORDER BY size')
    .all()
    .map((r) => ({ size: Number(r.size), note: r.note }));

export const latestCheckpoint = (db: Database): StoredCheckpoint | undefined => storedCheckpoints(db).at(-1);

export interface Tlog {
  /** adds the events of `rows` (9 values per event, the writer's insert layout) as leaves, in the open transaction */
  appendRows(rows: readonly unknown[]): void;
  /** drops the cached right border (a rolled-back write): the next append reloads it from the file */
  forget(): void;
  /** signs and stores a checkpoint of the tree as it stands, when it grew since the last one */
  checkpoint(signer: Omit<NoteSigner, 'name'>): string | undefined;
  size(): number;
}

export interface OpenTlogOptions {
  /** told once when a store from before the tree gets its tree built from the events */
  readonly onBuild?: (events: number) => void;
  /** the origin a new log gets @defaultValue `iommutrail.local/log-<random>` */
  readonly origin?: string;
}

/**
 * Opens the tree of a writable store: mints the origin of a new log, builds the tree once over the events of
 * a store from before it (or catches up a tree behind the events), then keeps the right border in memory.
 */
export const openTlog = (db: Database, options: OpenTlogOptions = {}): Tlog => {
  const read = hashReaderOf(db);
  const multi = new Map<number, Statement>();
  // `hashes` holds consecutive stored hashes from index `first` on (an append's always are): rows of up to RUN
  const insertHashes = (first: number, hashes: Buffer): void => {
    const rows: unknown[] = [];
    for (let off = 0; off < hashes.length; off += RUN * HASH_LEN) rows.push(first + off / HASH_LEN, hashes.subarray(off, Math.min(hashes.length, off + RUN * HASH_LEN)));
    for (let off = 0; off < rows.length; off += 200) {
      const chunk = rows.length <= 200 ? rows : rows.slice(off, off + 200);
      const n = chunk.length / 2;
      let stmt = multi.get(n);
      if (!stmt) multi.set(n, (stmt = db.prepare(`INSERT INTO tlog_hashes (id, hash) VALUES ${Array(n).fill('(?,?)').join(',')}`)));
      stmt.run(chunk);
    }
  };
  let range: LiveRange | undefined;
  const current = (): LiveRange => (range ??= loadRange(db, read));
  /**
   * Adds leaves (appendLeaf's steps, in place), writing the leaf hash and each subtree hash it completes into
   * one buffer at the next stored indexes, then stores that buffer in rows: one copy of 32 bytes per hash,
   * no per-hash array entries, no regrouping.
   */
  const addLeaves = (count: number, leafInto: (k: number, out: Buffer, at: number) => void): void => {
    if (count === 0) return;
    const r = current();
    const first = r.next;
    // a leaf stores itself plus one hash per subtree it completes: at most 2·count + log2(size) in all
    const out = Buffer.allocUnsafe((2 * count + 64) * HASH_LEN);
    let at = 0;
    const b = r.border;
    for (let k = 0; k < count; k++) {
      leafInto(k, out, at);
      // the border holds views into this buffer (it stays alive while they do: a few buffers at most)
      let h = out.subarray(at, (at += HASH_LEN));
      let level = 0;
      while (b.length > 0 && b[b.length - 1]![0] === level) {
        nodeHashInto(b.pop()![1], h, out, at);
        h = out.subarray(at, (at += HASH_LEN));
        level += 1;
      }
      b.push([level, h]);
      r.size += 1;
    }
    r.next += at / HASH_LEN;
    insertHashes(first, out.subarray(0, at));
  };
  // leaf i is the event at position i + 1: anything else means the tree and the events disagree
  const leafInto = (position: bigint, stream: string, revision: bigint, json: string, size: number, out: Buffer, at: number): void => {
    if (Number(position) !== size + 1) {
      throw new IllegalStateError(`transparency log: event at position ${position} does not follow the tree of ${size} leaves; run verify`);
    }
    eventLeafHashInto(position, stream, revision, json, out, at);
  };

  db.transaction(() => {
    if (logOrigin(db) === undefined) {
      db.prepare("INSERT INTO tlog_meta (name, value) VALUES ('origin', ?)").run(options.origin ?? `iommutrail.local/log-${randomBytes(8).toString('hex')}`);
    }
    const head = Number(db.prepare<[], { head: bigint | number | null }>('SELECT max(position) AS head FROM events').get()?.head ?? 0);
    const size = current().size;
    if (size >= head) return;
    options.onBuild?.(head - size);
    // pages, not an open iterator: the connection inserts between them
    const page = db
      .prepare<[number, number], { position: bigint; stream: string; revision: bigint; json: string }>(
        'SELECT position, stream, revision, json FROM events WHERE position > ? ORDER BY position LIMIT ?',
      )
      .safeIntegers(true);
    for (;;) {
      const start = current().size;
      const rows = page.all(start, 10_000);
      addLeaves(rows.length, (k, out, at) => leafInto(rows[k]!.position, rows[k]!.stream, rows[k]!.revision, rows[k]!.json, start + k, out, at));
      if (rows.length < 10_000) break;
    }
  }).immediate();

  return {
    appendRows: (rows) => {
      const start = current().size;
      addLeaves(rows.length / 9, (k, out, at) => leafInto(rows[9 * k] as bigint, rows[9 * k + 2] as string, rows[9 * k + 3] as bigint, rows[9 * k + 6] as string, start + k, out, at));
    },
    forget: () => {
      range = undefined;
    },
    checkpoint: (signer) => {
      const r = current();
      const last = db.prepare<[], { size: bigint | number }>('SELECT max(size) AS size FROM tlog_checkpoints').get()?.size;
      if (r.size === 0 || (last !== null && last !== undefined && Number(last) >= r.size)) return undefined;
      const origin = logOrigin(db)!;
      const note = signCheckpoint({ origin, size: r.size, root: rootOf(r) }, { name: origin, ...signer });
      db.prepare('INSERT INTO tlog_checkpoints (size, note) VALUES (?, ?)').run(r.size, note);
      return note;
    },
    size: () => current().size,
  };
};

/** the signer's verifier for a store's checkpoints: the key's name is the log's origin */
export const storeVerifier = (origin: string, publicKey: NoteVerifier['publicKey']): NoteVerifier => ({ name: origin, publicKey });

/** opens a checkpoint of this log: signed by one of `keys` under the log's origin, and naming that origin */
export const openLogCheckpoint = (note: string, origin: string, keys: readonly NoteVerifier['publicKey'][]): OpenCheckpointResult => {
  const opened = openCheckpoint(
    note,
    keys.map((k) => storeVerifier(origin, k)),
  );
  if (opened.ok && opened.value.checkpoint.origin !== origin) {
    return { ok: false, reason: `checkpoint of another log (origin ${opened.value.checkpoint.origin}, expected ${origin})` };
  }
  return opened;
};

/** RFC 9162 consistency proof between two sizes of the store's tree */
export const storeConsistencyProof = (db: Database, first: number, second: number): Buffer[] => consistencyProof(first, second, hashReaderOf(db));

/** RFC 9162 inclusion proof of the event at `position` in the store's tree of `size` leaves */
export const storeInclusionProof = (db: Database, position: number, size: number): Buffer[] => inclusionProof(position - 1, size, hashReaderOf(db));

/** MTH of the first `size` leaves from the stored hashes */
export const storedRoot = (db: Database, size: number): Buffer => treeHash(size, hashReaderOf(db));
