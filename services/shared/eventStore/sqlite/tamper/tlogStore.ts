import { hash, randomBytes } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';
import { IllegalStateError } from '../../../../../schemas/index.js';
import { EVENT_ROW_WIDTH } from '../eventRow.js';
import { digestOf } from '../../format/chain.js';
import { openCheckpoint, signCheckpoint, type NoteSigner, type NoteVerifier, type OpenCheckpointResult } from '../../format/checkpoint.js';
import { borderIndexes, borderLevels, consistencyProof, copyBinary, HASH_LEN, inclusionProof, nodeHashAt, rootOf, sizeOfStoredCount, storedHashCount, treeHash, type CompactRange, type HashReader } from '../../format/merkle.js';

/**
 * The store's transparency log: one RFC 9162 Merkle tree over every event in position order, kept in the
 * same SQLite file and the same write transaction as the events.
 *
 * Leaf i (0-based) is the event at position i + 1. A log's leaf format is fixed when the log is created
 * (`tlog_meta` 'leaf'; a log from before the row has v1):
 * - v2 (new logs): `iommutrail/leaf/v2\n<stream>\n<revision>\n` followed by the 32 bytes of the event's chain
 *   digest SHA-256(canonical JSON). The position is the leaf's index + 1, which an inclusion proof binds, so
 *   the leaf can be hashed before the writer assigns positions, and from the digest the chain step already
 *   computed: the caller's thread hashes it together with the chain (no second pass over the JSON, and off
 *   the writer's critical path);
 * - v1: `iommutrail/leaf/v1\n<position>\n<stream>\n<revision>\n<canonical event JSON>`.
 * Either way the leaf pins where the event sits (position, stream, revision) and every field a query selects
 * on (id, host, seq, time, type, groups, devices are inside the JSON; `verify` checks the columns and index
 * rows derived from it).
 *
 * Tables: `tlog_hashes` (every complete subtree hash, by Go tlog's stored-hash index: about 2 per event, kept
 * in runs of up to {@link RUN} consecutive hashes per row, so an append inserts a row per 32 events or so),
 * `tlog_checkpoints` (signed C2SP checkpoints, by tree size), `tlog_meta` (the log's origin and leaf format).
 */
export const LEAF_V1 = 'iommutrail/leaf/v1';
export const LEAF_V2 = 'iommutrail/leaf/v2';
export type LeafFormat = typeof LEAF_V1 | typeof LEAF_V2;

/** the v1 leaf data of an event, as a string (its UTF-8 bytes are hashed) */
export const leafText = (position: bigint | number, stream: string, revision: bigint | number, json: string): string =>
  `${LEAF_V1}\n${position}\n${stream}\n${revision}\n${json}`;

/**
 * Hashes v2 leaves of one stream: the input (0x00, prefix, revision, digest) is built in one reused buffer,
 * hashed through a view cached per input length: no allocation per leaf but the digest string.
 */
export const leafV2HasherFor = (stream: string): ((revision: bigint | number, digest: Uint8Array, digestAt: number, out: Uint8Array, at: number) => void) => {
  const prefix = Buffer.from(`\u0000${LEAF_V2}\n${stream}\n`, 'utf8');
  const input = Buffer.alloc(prefix.length + 24 + HASH_LEN);
  prefix.copy(input);
  const views: Uint8Array[] = [];
  return (revision, digest, digestAt, out, at) => {
    let n = prefix.length + input.write(`${revision}\n`, prefix.length, 'latin1');
    for (let k = 0; k < HASH_LEN; k++) input[n + k] = digest[digestAt + k]!;
    n += HASH_LEN;
    const view = (views[n] ??= new Uint8Array(input.buffer, input.byteOffset, n));
    copyBinary(hash('sha256', view, 'binary'), out, at);
  };
};

/** the v2 leaf hash of the event whose chain digest sits in `digest` at `digestAt`, written into `out` at `at` */
export const leafV2Into = (stream: string, revision: bigint | number, digest: Uint8Array, digestAt: number, out: Uint8Array, at: number): void =>
  leafV2HasherFor(stream)(revision, digest, digestAt, out, at);

/** v1 leaf (see {@link leafText}) hashed into `out` at `at` */
export const eventLeafHashInto = (position: bigint | number, stream: string, revision: bigint | number, json: string, out: Uint8Array, at: number): void => {
  copyBinary(hash('sha256', `\u0000${leafText(position, stream, revision, json)}`, 'binary'), out, at);
};

/** {@link logLeafHash} written into `out` at `at` */
export const logLeafHashInto = (format: LeafFormat, position: bigint | number, stream: string, revision: bigint | number, json: string, out: Uint8Array, at: number): void => {
  if (format === LEAF_V1) eventLeafHashInto(position, stream, revision, json, out, at);
  else leafV2Into(stream, revision, digestOf(json), 0, out, at);
};

/** RFC 9162 leaf hash of an event in a log of leaf format `format` */
export const logLeafHash = (format: LeafFormat, position: bigint | number, stream: string, revision: bigint | number, json: string): Buffer => {
  const out = Buffer.alloc(HASH_LEN);
  logLeafHashInto(format, position, stream, revision, json, out, 0);
  return out;
};

/** RFC 9162 leaf hash of {@link leafText} (v1): one hash call (U+0000 is the 0x00 prefix byte in UTF-8) */
export const eventLeafHash = (position: bigint | number, stream: string, revision: bigint | number, json: string): Buffer => logLeafHash(LEAF_V1, position, stream, revision, json);

/** the leaf format of a store's log: v1 for a log from before the format was recorded */
export const leafFormatOf = (db: Database): LeafFormat => {
  const v = db.prepare<[], { value: string }>("SELECT value FROM tlog_meta WHERE name = 'leaf'").get()?.value;
  if (v === undefined || v === LEAF_V1) return LEAF_V1;
  if (v === LEAF_V2) return LEAF_V2;
  throw new IllegalStateError(`transparency log: unknown leaf format ${JSON.stringify(v)} (a newer build's log?)`);
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

/**
 * The right border, appended to in place on the writer's hot path: the hash of the complete subtree at level
 * l sits at `border[32·l]` while bit l of `size` is set (no array or view per hash); `next` is the next
 * stored-hash index
 */
interface LiveRange {
  size: number;
  next: number;
  readonly border: Buffer;
}

const MAX_LEVELS = 64;

const loadRange = (db: Database, read: HashReader): LiveRange => {
  const size = storedTreeSize(db);
  const hashes = read(borderIndexes(size));
  const border = Buffer.alloc(MAX_LEVELS * HASH_LEN);
  borderLevels(size).forEach((l, i) => border.set(hashes[i]!, l * HASH_LEN));
  return { size, next: storedHashCount(size), border };
};

/** the range as merkle.ts's CompactRange (copies: the live border changes with the next append) */
const compactOf = (r: LiveRange): CompactRange => ({ size: r.size, border: borderLevels(r.size).map((l): [number, Buffer] => [l, Buffer.from(r.border.subarray(l * HASH_LEN, (l + 1) * HASH_LEN))]) });

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
  /** the log's leaf format: v2 logs take their leaf hashes from the caller ({@link appendRows}) */
  readonly format: LeafFormat;
  /**
   * adds the events of `rows` (the writer's insert layout, {@link EVENT_ROW_WIDTH} values per event) as leaves, in the open
   * transaction; `leaves` (32 bytes per event, in order) are their leaf hashes, required for a v2 log (the
   * writer has the chain digests), ignored for a v1 log (hashed here from the rows)
   */
  appendRows(rows: readonly unknown[], leaves?: Uint8Array): void;
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
   * no per-hash object, array entry or view.
   */
  const addLeaves = (count: number, leafInto: (k: number, out: Buffer, at: number) => void): void => {
    if (count === 0) return;
    const r = current();
    const first = r.next;
    // a leaf stores itself plus one hash per subtree it completes: at most 2·count + log2(size) in all
    const out = Buffer.allocUnsafe((2 * count + MAX_LEVELS) * HASH_LEN);
    const b = r.border;
    let at = 0;
    let size = r.size;
    for (let k = 0; k < count; k++) {
      leafInto(k, out, at);
      let h = at;
      at += HASH_LEN;
      let level = 0;
      // each set low bit of the size is a border subtree this leaf completes: hash it with the new right part
      for (let s = size; s % 2 === 1; s = (s - 1) / 2) {
        nodeHashAt(b, level * HASH_LEN, out, h, out, at);
        h = at;
        at += HASH_LEN;
        level += 1;
      }
      for (let j = 0; j < HASH_LEN; j++) b[level * HASH_LEN + j] = out[h + j]!;
      size += 1;
    }
    r.size = size;
    r.next += at / HASH_LEN;
    insertHashes(first, out.subarray(0, at));
  };
  // leaf i is the event at position i + 1: anything else means the tree and the events disagree
  const checkPosition = (position: bigint, size: number): void => {
    if (Number(position) !== size + 1) {
      throw new IllegalStateError(`transparency log: event at position ${position} does not follow the tree of ${size} leaves; run verify`);
    }
  };
  let format: LeafFormat = LEAF_V2;
  // the rows' own leaves: v1 from the JSON, v2 from the chain digest (hashed again here: the build of an old store, a caller without digests)
  const hashers = new Map<string, ReturnType<typeof leafV2HasherFor>>();
  const leafOfRow = (position: bigint, stream: string, revision: bigint, json: string, out: Buffer, at: number): void => {
    if (format === LEAF_V1) return eventLeafHashInto(position, stream, revision, json, out, at);
    let h = hashers.get(stream);
    if (!h) hashers.set(stream, (h = leafV2HasherFor(stream)));
    h(revision, digestOf(json), 0, out, at);
  };

  db.transaction(() => {
    if (logOrigin(db) === undefined) {
      db.prepare("INSERT INTO tlog_meta (name, value) VALUES ('origin', ?)").run(options.origin ?? `iommutrail.local/log-${randomBytes(8).toString('hex')}`);
      // a new log: v2 leaves (a log that has an origin but no format row is from before v2, and stays v1)
      db.prepare("INSERT INTO tlog_meta (name, value) VALUES ('leaf', ?)").run(LEAF_V2);
    }
    format = leafFormatOf(db);
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
      addLeaves(rows.length, (k, out, at) => {
        const row = rows[k]!;
        checkPosition(row.position, start + k);
        leafOfRow(row.position, row.stream, row.revision, row.json, out, at);
      });
      if (rows.length < 10_000) break;
    }
  }).immediate();

  return {
    get format() {
      return format;
    },
    appendRows: (rows, leaves) => {
      const start = current().size;
      const given = format === LEAF_V2 ? leaves : undefined;
      const w = EVENT_ROW_WIDTH;
      addLeaves(rows.length / w, (k, out, at) => {
        checkPosition(rows[w * k] as bigint, start + k);
        if (given) for (let j = 0; j < HASH_LEN; j++) out[at + j] = given[k * HASH_LEN + j]!;
        else leafOfRow(rows[w * k] as bigint, rows[w * k + 2] as string, rows[w * k + 3] as bigint, rows[w * k + 6] as string, out, at);
      });
    },
    forget: () => {
      range = undefined;
    },
    checkpoint: (signer) => {
      const r = current();
      const last = db.prepare<[], { size: bigint | number }>('SELECT max(size) AS size FROM tlog_checkpoints').get()?.size;
      if (r.size === 0 || (last !== null && last !== undefined && Number(last) >= r.size)) return undefined;
      const origin = logOrigin(db)!;
      const note = signCheckpoint({ origin, size: r.size, root: rootOf(compactOf(r)) }, { name: origin, ...signer });
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
