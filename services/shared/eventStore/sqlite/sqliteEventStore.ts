import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import {
  IllegalStateError,
  UnavailableError,
  ValidationError,
  isAppError,
  currentVersionOf,
  hostOfStream,
  isEventType,
  parseEvent,
  type IommuEvent,
  type RecordedEvent,
} from '../../../../schemas/index.js';
import type {
  AppendOptions,
  AppendOutcome,
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  ReadByIndexOptions,
  ReadStreamOptions,
  StreamAppend,
  StreamAppendResult,
  SubscribeOptions,
  Subscription,
} from '../eventStore.js';
import { assertAppendable } from '../streamRules.js';
import { runSubscription } from '../subscriptionLoop.js';
import { deviceKey, encodeIndexKeys, groupKey, indexKeysOf, membershipChangeOf, type MembershipChange } from '../indexKeys.js';
import { canonicalJson, chainLink, HASH_BYTES } from '../format/chain.js';
import { loadSigningKeys, publicKeyPem, type SignedSeal, type SigningKeys } from './tamper/signing.js';
import { LEAF_V2, leafFormatOf, leafV2HasherFor, openTlog } from './tamper/tlogStore.js';
import { rowCheckOf } from './eventRow.js';
import { ROW_CHECK_VERSION } from './migrations.js';
import { openStoreFile, type StoreIntegrity } from './openStoreFile.js';
import { fromWireError, lastHashOf, type AppendReply, type AppendRequest } from './sqliteWriter.js';
import { packBatch, unpackReplies } from './packedBatch.js';
import { inlineWriter, threadWriter, type WriterClient } from './writerClient.js';

/**
 * What an acknowledged append survives (SQLite in WAL mode):
 * - `'full'` (default): `synchronous=FULL`, the WAL is fsynced at every commit. Nothing acknowledged is lost on
 *   a process crash, an OS crash or a power failure.
 * - `'normal'`: `synchronous=NORMAL`, fsync only at checkpoints. Nothing is lost on a process crash; on power
 *   failure or OS crash the last transactions acknowledged before it may be lost (the file stays consistent).
 */
export type SqliteDurability = 'full' | 'normal';

export interface SqliteEventStoreOptions {
  /** the database file; its folder is created when missing */
  readonly path: string;
  /** @defaultValue 'full' */
  readonly durability?: SqliteDurability;
  /** open for reading only (verify, export): no migration, no signing, appends fail @defaultValue false */
  readonly readOnly?: boolean;
  /**
   * sign a checkpoint of the chain heads at most this often while appending (and always on close and
   * {@link SqliteEventStore.seal}); 0 seals at every commit @defaultValue 1000
   */
  readonly sealIntervalMs?: number;
  /** where the ed25519 key pair lives; `false` disables sealing @defaultValue the database's folder */
  readonly keyDir?: string | false;
  /** how often a live subscription polls for appends made by other processes @defaultValue 250 */
  readonly pollIntervalMs?: number;
  /**
   * `'verified-hash'`: rows whose bytes match their row check (or, without one, their chain hash) and whose
   * schema version is current skip the schema (see {@link decodeRow}); `'parse'`: every row goes through the
   * catalogue's parse @defaultValue 'verified-hash'
   */
  readonly readValidation?: 'verified-hash' | 'parse';
  /**
   * where the single writer runs: `'thread'`, a worker thread (inserts and fsync overlap the caller's work);
   * `'inline'`, this thread (no thread to start: short-lived tools) @defaultValue 'thread'
   */
  readonly writer?: 'thread' | 'inline';
  /** how long to wait for another process's lock on the file @defaultValue 5000 */
  readonly busyTimeoutMs?: number;
  /** `PRAGMA quick_check` at open on files up to this size, see {@link openStoreFile} @defaultValue 256 MiB */
  readonly quickCheckMaxBytes?: number;
  /** where close() reports what it could not do (a failed final seal) instead of throwing */
  readonly logger?: { warn(fields: object, message: string): void };
  /**
   * keep the transparency log's Merkle tree and checkpoints; **WARNING**: false only for a benchmark's
   * same-run reference (the next open with it on catches the tree up) @defaultValue true
   */
  readonly merkleTree?: boolean;
  /**
   * streams whose chain head this thread keeps, to hash their appends ahead of the writer: the first guessed
   * beyond it are forgotten (their next append is hashed by the writer) @defaultValue {@link MAX_GUESSED_HEADS}
   */
  readonly maxGuessedHeads?: number;
  /** the transparency log's origin, set when the store is created @defaultValue `iommutrail.local/log-<random>` */
  readonly origin?: string;
  /** every statement the writer runs, for diagnostics and tests; only with `writer: 'inline'` (a function does not cross to a thread) */
  readonly traceWriter?: (sql: string) => void;
}

export interface SqliteEventStore extends EventStore {
  readonly path: string;
  readonly durability: SqliteDurability;
  /** what the start-up `PRAGMA quick_check` found (it refuses to open a corrupt file) */
  readonly integrity: StoreIntegrity;
  /**
   * signs a seal now of the chain heads that moved since the last seal, and of `streams`' heads whether they
   * moved or not (an export seals its host's head); undefined without a key or with nothing to sign
   */
  seal(options?: { readonly streams?: readonly string[] }): Promise<SignedSeal | undefined>;
  /**
   * resolves once appends can start without delay (the writer thread is up); rejects if it failed to start, or
   * while writes fail for want of space or an I/O error (until an append, or the one-page write probe this
   * runs then, succeeds)
   */
  ready(): Promise<void>;
  /** the public key that checks this store's seals, PEM; undefined when sealing is off */
  publicKeyPem(): string | undefined;
  /** how many streams' chain heads this thread keeps to hash appends ahead of the writer (diagnostics) */
  guessedHeads(): number;
  /** the underlying connection, for verify/export in this package only */
  readonly db: Database.Database;
  [Symbol.asyncDispose](): Promise<void>;
}

/** a read's row, as an array (better-sqlite3 `raw()`: no object per row): {@link READ_COLUMNS} */
type EventRow = [position: bigint, stream: string, revision: bigint, json: string, crc: bigint | null];
const READ_COLUMNS = ['position', 'stream', 'revision', 'json', 'crc'] as const;
/** the select list of {@link EventRow} from table alias `t`; a file from before the row check (opened read-only, not migrated) has none */
const selectList = (t: string, rowCheck: boolean): string => READ_COLUMNS.map((c) => (c === 'crc' && !rowCheck ? 'NULL' : `${t}.${c}`)).join(', ');
const POSITION = 0;
const REVISION = 2;
interface PendingAppend {
  readonly events: readonly IommuEvent[];
  readonly request: AppendRequest;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: unknown) => void;
}

const PAGE = 1000;
/** the first page of a read: most stream reads of a time-travel fold end within it */
const FIRST_PAGE = 64;
const MAX_BATCH_EVENTS = 4096;
/**
 * streams whose chain head is kept for hashing ahead (issue 23: one per host ever appended, ~400 B each, was
 * kept): as many as the live projection keeps host states (its maxResidentHosts), so a fleet of that size
 * still has its chains hashed on this thread, not by the writer (the slower of the two at 1e4 hosts and more);
 * at most ~40 MB whatever the number of hosts
 */
export const MAX_GUESSED_HEADS = 100_000;
const APPENDED = 'a'.charCodeAt(0);

const DUPLICATE = 'd'.charCodeAt(0);
const outcomesOf = (chars: string): AppendOutcome[] => {
  const out = new Array<AppendOutcome>(chars.length);
  for (let i = 0; i < chars.length; i++) {
    const c = chars.charCodeAt(i);
    out[i] = c === APPENDED ? 'appended' : c === DUPLICATE ? 'duplicate' : 'conflict';
  }
  return out;
};

/** what this thread expects a stream's head to be once what it sent is written: the next append's chain start */
interface GuessedHead {
  readonly hash: Uint8Array;
  /** the revision the next event gets */
  readonly revision: bigint;
}

/**
 * What the writer needs of each event, computed here: the canonical bytes (which the caller's thread can
 * afford while the writer inserts), the index keys and membership moves (pure functions of the event), and
 * the chain when the stream's head is known.
 */
const toRequest = (stream: string, events: readonly IommuEvent[], expected: ExpectedRevision, head: GuessedHead | undefined, leafV2: boolean): AppendRequest => {
  const changes: [number, MembershipChange][] = [];
  const host = hostOfStream(stream);
  const lines = new Array<string>(events.length);
  const prevHash = head?.hash;
  // not pooled: a pooled Buffer would carry its whole pool across the thread boundary
  const hashes = prevHash && events.length > 0 ? new Uint8Array(events.length * HASH_BYTES) : undefined;
  // a v2 log's leaf hashes, from the chain digests (tlogStore.ts): hashed here, off the writer's path
  const leaves = hashes && leafV2 ? new Uint8Array(events.length * HASH_BYTES) : undefined;
  const leafOf = leaves ? leafV2HasherFor(stream) : undefined;
  // revisions stay far below 2^53: a number prints faster than a bigint
  const firstRevision = Number(head?.revision ?? 0n);
  let prev = prevHash;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const json = canonicalJson(e);
    // joined, not concatenated: one flat string. An append of one event (most, over many hosts) keeps its line as
    // it is until the batch is packed, and a concatenation is a tree of pieces that lives that long and is then
    // flattened into a second copy (issue 23: both promoted, ~1 kB per event)
    lines[i] = [e.id, e.type, e.time, encodeIndexKeys(indexKeysOf(e)), json].join('\t');
    if (hashes) {
      const h = chainLink(prev!, json, leaves, i * HASH_BYTES);
      hashes.set(h, i * HASH_BYTES);
      // the digest just written is replaced by the leaf hashed from it
      if (leafOf) leafOf(firstRevision + i, leaves!, i * HASH_BYTES, leaves!, i * HASH_BYTES);
      prev = h;
    }
    const change = membershipChangeOf(e);
    if (change) changes.push([i, change]);
  }
  // joined at once into one flat string: the per-event pieces die young instead of being kept (and copied
  // by the collector) until the batch leaves
  return {
    stream,
    expected,
    hosts: host ?? events.map((e) => e.host),
    lines: lines.join('\n'),
    changes,
    ...(hashes && prevHash ? { chain: { prevHash, hashes, firstRevision: head!.revision, ...(leaves ? { leaves } : {}) } } : {}),
  };
};

/** a row's stored chain link, read only for a row whose row check is missing or does not match */
interface ChainRow {
  prev_hash: Buffer;
  hash: Buffer;
}

/**
 * A stored row back to a RecordedEvent. Trusted rows (the default, `readValidation: 'verified-hash'`) are
 * rebuilt with JSON.parse alone: a row whose bytes are the ones the writer stored, and whose schema version is
 * current, holds the canonical JSON of an event the catalogue already parsed (the port takes parsed events
 * only) and needs no upcast. What tells the bytes are the writer's: the row check stored with them (CRC-32,
 * see eventRow.ts); for a row without one (written before it) or whose check does not match, the chain link
 * (sha256 of the bytes, hashed with the previous link). Any other row goes through the catalogue's parse
 * (G5), so a corrupt row is named, never trusted.
 */
const decodeRow = (row: EventRow, trust: boolean, chainOf: (position: bigint) => ChainRow | undefined): RecordedEvent => {
  const [position, stream, revision, text, crc] = row;
  if (trust) {
    const intact = crc !== null && Number(crc) === rowCheckOf(text);
    const fast = intact || chainHolds(chainOf(position), text) ? parseCurrent(text) : undefined;
    if (fast) return { event: fast, streamName: stream, streamPosition: revision, globalPosition: position };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(`store position ${position}: stored event is not JSON`, [], { cause: e });
  }
  const parsed = parseEvent(json, `store position ${position}`);
  if (!parsed.ok) throw parsed.error;
  return { event: parsed.value, streamName: stream, streamPosition: revision, globalPosition: position };
};

const chainHolds = (chain: ChainRow | undefined, text: string): boolean => chain !== undefined && chainLink(chain.prev_hash, text).equals(chain.hash);

/** the event of a trusted row's bytes, when its schema version is current (else undefined: it takes the parse, which upcasts) */
const parseCurrent = (text: string): IommuEvent | undefined => {
  let json: { type?: unknown; schemaVersion?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    return undefined;
  }
  return isEventType(json.type) && json.schemaVersion === currentVersionOf(json.type) ? (json as IommuEvent) : undefined;
};

/**
 * Pages of rows as an async iterable of events, decoded one at a time as they are taken. Pages grow from
 * {@link FIRST_PAGE} to {@link PAGE} rows: a reader that stops early (a fold up to a point) has fetched little
 * past it, one that reads on pays one statement per PAGE rows. A hand-written iterator rather than an async
 * generator: each event costs one resolved promise, not a generator's suspension and resumption.
 */
const pagedEvents = (
  fetch: (limit: number) => EventRow[],
  advance: (last: EventRow) => void,
  decode: (row: EventRow) => RecordedEvent,
  assertOpen: () => void,
  maxCount?: number,
): AsyncIterable<RecordedEvent> => ({
  [Symbol.asyncIterator]: (): AsyncIterator<RecordedEvent> => {
    let left = maxCount ?? Number.POSITIVE_INFINITY;
    let rows: EventRow[] = [];
    let next = 0;
    let size = FIRST_PAGE;
    let last = left <= 0;
    const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
    return {
      next: () => {
        try {
          if (next === rows.length) {
            if (last) return Promise.resolve(done);
            assertOpen();
            const limit = Math.min(size, left);
            rows = fetch(limit);
            next = 0;
            left -= rows.length;
            last = rows.length < limit || left <= 0;
            if (rows.length === 0) return Promise.resolve(done);
            advance(rows.at(-1)!);
            size = Math.min(PAGE, size * 4);
          }
          return Promise.resolve({ done: false, value: decode(rows[next++]!) });
        } catch (e) {
          // as a generator ends at a throw: nothing more after an error
          last = true;
          rows = [];
          next = 0;
          return Promise.reject(e);
        }
      },
      return: () => {
        last = true;
        rows = [];
        next = 0;
        return Promise.resolve(done);
      },
    };
  },
});

/**
 * The embedded default store: one SQLite file (WAL) holding the per-host streams, the group/device/time
 * indexes, the subscription checkpoints and the signed seals.
 *
 * Appends made in the same tick are group-committed: one transaction (one fsync) for all of them, each in its
 * own savepoint so one caller's conflict does not fail the others.
 *
 * Why subscriptions never skip an event (the high-water-mark problem): SQLite has a single writer, positions
 * are assigned inside the write transaction, and readers see whole commits only. So every snapshot a reader
 * sees holds every position up to its maximum, and reading "after my checkpoint" can never jump over an
 * event that commits later with a smaller position. {@link EventStore.headPosition} is therefore simply the
 * largest committed position.
 */
export const getSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore => {
  const durability = options.durability ?? 'full';
  if (durability !== 'full' && durability !== 'normal') {
    throw new ValidationError(`durability: expected 'full' or 'normal', got ${JSON.stringify(durability)}`, [
      { path: 'durability', message: "expected 'full' or 'normal'" },
    ]);
  }
  const readOnly = options.readOnly ?? false;
  const sealIntervalMs = options.sealIntervalMs ?? 1000;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const trust = (options.readValidation ?? 'verified-hash') === 'verified-hash';

  const { db, integrity } = openStoreFile(options.path, {
    readOnly,
    durability,
    ...(options.busyTimeoutMs !== undefined ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
    ...(options.quickCheckMaxBytes !== undefined ? { quickCheckMaxBytes: options.quickCheckMaxBytes } : {}),
  });
  // created here (not in the writer) so a missing or unreadable key folder fails the open, in this thread
  const keyDir = readOnly || options.keyDir === false ? undefined : (options.keyDir ?? dirname(options.path));
  const loadKeys = (dir: string): SigningKeys => {
    // only a store that has sealed nothing may mint a key pair
    const seals = Number(db.prepare<[], { n: bigint }>('SELECT count(*) AS n FROM seals').get()!.n);
    try {
      return loadSigningKeys(dir, { mayMint: seals === 0, seals });
    } catch (e) {
      db.close();
      throw e;
    }
  };
  const keys: SigningKeys | undefined = keyDir === undefined ? undefined : loadKeys(keyDir);
  if (!readOnly && options.merkleTree !== false) openTlog(db, { ...(options.origin !== undefined ? { origin: options.origin } : {}), onBuild: (n) => options.logger?.warn({ file: options.path, events: n }, 'event store: building the transparency-log Merkle tree once over events stored before it') });

  // a read-only open of a file from before the row check reads without it (every row then checks its chain link)
  const rowCheck = Number(db.pragma('user_version', { simple: true }) as bigint) >= ROW_CHECK_VERSION;
  // rows as arrays: no object per row; `$e` is the events table's select list
  const rowsOf = <P extends unknown[]>(sql: string): Database.Statement<P, EventRow> =>
    db.prepare<P, EventRow>(sql.replace('$e', selectList('e', rowCheck))).raw(true) as Database.Statement<P, EventRow>;
  const q = {
    readAll: rowsOf<[bigint, number]>('SELECT $e FROM events e WHERE position > ? ORDER BY position LIMIT ?'),
    readFwd: rowsOf<[string, bigint, bigint, number]>('SELECT $e FROM events e WHERE stream = ? AND revision >= ? AND position <= ? ORDER BY revision LIMIT ?'),
    readBwd: rowsOf<[string, bigint, bigint, number]>('SELECT $e FROM events e WHERE stream = ? AND revision <= ? AND position <= ? ORDER BY revision DESC LIMIT ?'),
    chainOf: db.prepare<[bigint], ChainRow>('SELECT prev_hash, hash FROM events WHERE position = ?'),
    head: db.prepare<[], { head: bigint | null }>('SELECT max(position) AS head FROM events'),
    checkpoint: db.prepare<[string], { position: bigint }>('SELECT position FROM checkpoints WHERE name = ?'),
  };

  const chainOf = (position: bigint): ChainRow | undefined => q.chainOf.get(position);
  const decode = (row: EventRow): RecordedEvent => decodeRow(row, trust, chainOf);

  // every write goes through the single writer; this connection only reads (and migrated the file above)
  const writerOptions = { path: options.path, durability, keyDir: keyDir ?? (false as const), sealIntervalMs, merkleTree: options.merkleTree !== false };
  const inline = (options.writer ?? 'thread') === 'inline';
  if (options.traceWriter && !inline) throw new ValidationError("traceWriter: needs writer: 'inline'", [{ path: 'traceWriter', message: "needs writer: 'inline'" }]);
  const writer: WriterClient | undefined = readOnly
    ? undefined
    : inline
      ? inlineWriter({ ...writerOptions, ...(options.traceWriter ? { trace: options.traceWriter } : {}) })
      : threadWriter(writerOptions);

  // write health: set when a write failed as unavailable (disk full, I/O error), cleared by the next write that commits
  let writeFailure: Error | undefined;
  const noteWrite = (error?: unknown): void => {
    if (error === undefined) writeFailure = undefined;
    else if (isAppError(error) && error.kind === 'unavailable') writeFailure = error;
  };

  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new IllegalStateError('event store is closed');
  };
  const assertWritable = (): WriterClient => {
    assertOpen();
    if (!writer) throw new IllegalStateError(`store ${options.path} is open read-only`);
    return writer;
  };

  // --- appends (group commit) ---
  // Appends made while the writer is busy are queued and sent together: one transaction (one fsync) for all
  // of them, each in its own savepoint so one caller's conflict does not fail the others. One batch is in
  // flight at a time, so the batches grow as much as the writer is behind (up to MAX_BATCH_EVENTS).
  const queue: PendingAppend[] = [];
  let inFlight: Promise<void> | undefined;
  let flushScheduled = false;
  const wakers = new Set<() => void>();
  const appendListeners = new Set<(batch: readonly RecordedEvent[]) => void>();
  // appendsInFlight's promises: resolved once the batch being written settled (announced, or failed)
  let settleWaiters: (() => void)[] = [];
  const settledBatch = (): void => {
    const waiting = settleWaiters;
    settleWaiters = [];
    for (const resolve of waiting) resolve();
  };

  /*
   * Listeners get the caller's own event objects: the port takes parsed events and callers treat them as
   * immutable values (see EventStore.onAppended), so a follower needs neither a read nor a JSON.parse.
   */
  const announce = (batch: readonly PendingAppend[], replies: readonly AppendReply[]): void => {
    if (appendListeners.size === 0) return;
    const committed: RecordedEvent[] = [];
    batch.forEach((p, i) => {
      const r = replies[i]!;
      if (!r.ok) return;
      let position = r.firstPosition;
      let revision = r.firstRevision;
      for (let k = 0; k < p.events.length; k++) {
        if (r.outcomes.charCodeAt(k) !== APPENDED) continue;
        committed.push({ event: p.events[k]!, streamName: p.request.stream, streamPosition: revision++, globalPosition: position++ });
      }
    });
    if (committed.length === 0) return;
    for (const listener of appendListeners) {
      try {
        listener(committed);
      } catch {
        // a follower's failure is its own: the append is committed and answered regardless
      }
    }
  };

  /*
   * The chain is computed here, ahead of the writer, when this thread knows the stream's head: the hash after
   * every append it has sent or queued, assuming each succeeds without duplicates. The writer checks that
   * assumption (prevHash is its head, no duplicate) and otherwise computes the chain itself, so a wrong guess
   * costs time, never correctness. A stream's guess is dropped when an answer contradicts it, and taken from
   * the writer's answer once nothing newer is pending for that stream.
   */
  const guessedHeads = new Map<string, GuessedHead>();
  const maxGuessedHeads = Math.max(1, options.maxGuessedHeads ?? MAX_GUESSED_HEADS);
  // a guess replaces the stream's in place, and the first guessed go beyond the bound. Not moved to the end at each
  // append (delete, then set) to keep the least recently appended first: over 1e5 streams each such move left a
  // hole in the map's table, rehashed every few thousand moves, ~1.5 µs per append (issue 23); a stream forgotten
  // while still appended to costs one append hashed by the writer
  const guess = (stream: string, head: GuessedHead): void => {
    guessedHeads.set(stream, head);
    if (guessedHeads.size > maxGuessedHeads) guessedHeads.delete(guessedHeads.keys().next().value!);
  };
  // a v2 log: this thread hashes the leaves with the chain (a v1 log's writer hashes them from the JSON)
  const leafV2 = !readOnly && options.merkleTree !== false && leafFormatOf(db) === LEAF_V2;
  const pendingPerStream = new Map<string, number>();
  // Who computes the chain: this thread while the writer is the slower of the two (appends pile up while it
  // commits), the writer while this thread is (parsing, HTTP, projections: the writer would wait for it).
  // Judged again at every answer from the writer.
  let chainHere = true;
  const requestFor = (stream: string, events: readonly IommuEvent[], expected: ExpectedRevision): AppendRequest => {
    const request = toRequest(stream, events, expected, chainHere ? guessedHeads.get(stream) : undefined, leafV2);
    if (request.chain) guess(stream, { hash: lastHashOf(request.chain), revision: request.chain.firstRevision + BigInt(events.length) });
    else guessedHeads.delete(stream);
    pendingPerStream.set(stream, (pendingPerStream.get(stream) ?? 0) + 1);
    return request;
  };
  const learnHead = (request: AppendRequest, reply: AppendReply | undefined): void => {
    const stream = request.stream;
    const left = (pendingPerStream.get(stream) ?? 1) - 1;
    if (left === 0) pendingPerStream.delete(stream);
    else pendingPerStream.set(stream, left);
    if (left === 0 && reply?.ok) guess(stream, { hash: reply.headHash, revision: reply.nextExpectedRevision + 1n });
    // the guesses made on top of this one hold only if it ended where it was guessed to
    else if (!reply?.ok || !request.chain || Buffer.compare(reply.headHash, lastHashOf(request.chain)) !== 0) guessedHeads.delete(stream);
  };

  const flush = (): void => {
    flushScheduled = false;
    if (inFlight || queue.length === 0) return;
    // whole appends, up to about MAX_BATCH_EVENTS: while the writer commits one batch this thread prepares the
    // next, instead of handing over everything at once and then waiting idle
    let take = 1;
    for (let events = queue[0]!.events.length; take < queue.length && events + queue[take]!.events.length <= MAX_BATCH_EVENTS; take++) events += queue[take]!.events.length;
    const batch = queue.splice(0, take);
    const settled = (): void => {
      inFlight = undefined;
      let waiting = 0;
      for (const p of queue) waiting += p.events.length;
      chainHere = waiting >= MAX_BATCH_EVENTS / 2;
      // the next batch goes out before this one's callers run: the writer never waits on them
      if (queue.length > 0) flush();
    };
    inFlight = writer!.append(packBatch(batch.map((p) => p.request))).then(
      (packed) => {
        const replies = unpackReplies(packed);
        settled();
        let appended = false;
        batch.forEach((p, i) => {
          const r = replies[i]!;
          learnHead(p.request, r);
          if (!r.ok) {
            const error = fromWireError(r.error);
            noteWrite(error);
            return p.reject(error);
          }
          noteWrite();
          appended ||= r.outcomes.includes('a');
          p.resolve({ nextExpectedRevision: r.nextExpectedRevision, lastPosition: r.lastPosition, outcomes: outcomesOf(r.outcomes), conflicts: r.conflicts });
        });
        announce(batch, replies);
        settledBatch();
        if (appended) for (const wake of wakers) wake();
      },
      (error: unknown) => {
        settled();
        noteWrite(error);
        for (const p of batch) {
          learnHead(p.request, undefined);
          p.reject(error);
        }
        settledBatch();
      },
    );
  };

  /** queues one append: throws (nothing queued) if the store cannot take it */
  const enqueue = (streamName: string, events: readonly IommuEvent[], opts: AppendOptions, resolve: (r: AppendResult) => void, reject: (e: unknown) => void): void => {
    assertWritable();
    assertAppendable(streamName, events);
    // a copy of the array (not of the events, which are values): a caller may reuse its array at once
    const own = events.slice();
    queue.push({ events: own, request: requestFor(streamName, own, opts.expectedRevision ?? 'any'), resolve, reject });
    if (!flushScheduled && !inFlight) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };

  const appendToStream = (streamName: string, events: readonly IommuEvent[], opts: AppendOptions = {}): Promise<AppendResult> =>
    new Promise<AppendResult>((resolve, reject) => enqueue(streamName, events, opts, resolve, reject));

  /*
   * Every append joins the queue in this turn, so they reach the writer together (one batch: one transaction,
   * one head-reading statement, up to MAX_BATCH_EVENTS), each answered on its own: one promise for the call,
   * not one per stream (issue 23: a delivery spans up to a thousand hosts).
   */
  const appendToStreams = (appends: readonly StreamAppend[]): Promise<StreamAppendResult[]> =>
    new Promise<StreamAppendResult[]>((resolve) => {
      const results = new Array<StreamAppendResult>(appends.length);
      let left = appends.length;
      if (left === 0) return resolve(results);
      const settle = (i: number, r: StreamAppendResult): void => {
        results[i] = r;
        if (--left === 0) resolve(results);
      };
      appends.forEach((a, i) => {
        try {
          enqueue(a.streamName, a.events, a.options ?? {}, (result) => settle(i, { ok: true, result }), (error: unknown) => settle(i, { ok: false, error }));
        } catch (error) {
          settle(i, { ok: false, error });
        }
      });
    });

  // --- reads ---
  const pages = (fetch: (limit: number) => EventRow[], advance: (last: EventRow) => void, maxCount?: number): AsyncIterable<RecordedEvent> =>
    pagedEvents(fetch, advance, decode, assertOpen, maxCount);

  const readAll = (opts: ReadAllOptions = {}): AsyncIterable<RecordedEvent> => {
    let after = opts.after ?? 0n;
    return pages(
      (limit) => q.readAll.all(after, limit),
      (last) => (after = last[POSITION]),
      opts.maxCount,
    );
  };

  const readStream = (streamName: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> => {
    const backwards = opts.direction === 'backwards';
    const from = opts.fromRevision ?? (backwards ? 'end' : 'start');
    let cursor = from === 'start' ? (backwards ? -1n : 0n) : from === 'end' ? (backwards ? 1n << 62n : 1n << 62n) : from;
    // the bound is in the statement: not one row past it is fetched
    const until = opts.toPosition ?? 1n << 62n;
    return pages(
      (limit) => (backwards ? q.readBwd : q.readFwd).all(streamName, cursor, until, limit),
      (last) => (cursor = backwards ? last[REVISION] - 1n : last[REVISION] + 1n),
      opts.maxCount,
    );
  };

  const readByIndex = (opts: ReadByIndexOptions): AsyncIterable<RecordedEvent> => {
    const where: string[] = [];
    const params: (string | bigint)[] = [];
    let from = 'events e';
    const key = opts.device !== undefined ? deviceKey(opts.device) : opts.group !== undefined ? groupKey(opts.group) : undefined;
    if (key !== undefined) {
      from = 'event_index i JOIN events e ON e.position = i.position';
      where.push('i.key_id = (SELECT id FROM index_keys WHERE host = ? AND key = ?)', 'i.position > ?');
      params.push(opts.host, key);
      if (opts.device !== undefined && opts.group !== undefined) {
        where.push('EXISTS (SELECT 1 FROM event_index j WHERE j.key_id = (SELECT id FROM index_keys WHERE host = ? AND key = ?) AND j.position = i.position)');
      }
    } else {
      where.push('e.stream = ?', 'e.position > ?');
      params.push(`host-${opts.host}`);
    }
    // bigint-typed bounds, inlined: they are numbers, never text
    if (opts.fromTimeNs !== undefined) where.push(`e.time_ns >= ${BigInt(opts.fromTimeNs)}`);
    if (opts.toTimeNs !== undefined) where.push(`e.time_ns <= ${BigInt(opts.toTimeNs)}`);
    const order = key !== undefined ? 'i.position' : 'e.position';
    const stmt = rowsOf<unknown[]>(`SELECT $e FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ?`);
    const both = opts.device !== undefined && opts.group !== undefined ? [opts.host, groupKey(opts.group)] : [];
    let after = opts.after ?? 0n;
    return pages(
      (limit) => stmt.all(...params, after, ...both, limit),
      (last) => (after = last[POSITION]),
      opts.maxCount,
    );
  };

  // --- subscriptions ---
  const subscribe = async (opts: SubscribeOptions): Promise<Subscription> => {
    assertWritable();
    if (!opts.subscriberName) throw new ValidationError('subscriberName: must not be empty', [{ path: 'subscriberName', message: 'must not be empty' }]);
    const from = q.checkpoint.get(opts.subscriberName)?.position ?? opts.fromPosition ?? 0n;
    return runSubscription(opts, from, {
      readAfter: (position, max) => q.readAll.all(position, max).map(decode),
      saveCheckpoint: (name, position) => writer!.saveCheckpoint(name, position),
      isClosed: () => closed,
      wakers,
      pollIntervalMs,
    });
  };

  // waits for every queued append, then lets the writer seal and close before this connection closes
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      closed = true;
      for (const wake of wakers) wake();
      while (inFlight || queue.length > 0) {
        if (!inFlight) flush();
        await inFlight;
      }
      appendListeners.clear();
      // nothing here throws past a failed seal or writer: the connection closes regardless (a shutdown on a full
      // disk must still release the file); what failed is logged
      try {
        const report = await writer?.close();
        if (report?.sealError !== undefined) {
          options.logger?.warn({ file: options.path, error: report.sealError }, 'event store: final seal failed; events after the last seal stay chained but unsigned until the next start seals them');
        }
        if (report?.closeError !== undefined) options.logger?.warn({ file: options.path, error: report.closeError }, 'event store: the writer did not close cleanly');
      } catch (e) {
        options.logger?.warn({ file: options.path, error: (e as Error).message }, 'event store: the writer did not close cleanly');
      } finally {
        db.close();
      }
    })());

  const store: SqliteEventStore = {
    path: options.path,
    durability,
    integrity,
    db,
    appendToStream,
    appendToStreams,
    readStream,
    readAll,
    readByIndex,
    subscribe,
    headPosition: () => Promise.resolve(q.head.get()?.head ?? 0n),
    onAppended: (listener) => {
      appendListeners.add(listener);
      return () => appendListeners.delete(listener);
    },
    appendsInFlight: () => (inFlight === undefined && queue.length === 0 ? undefined : new Promise<void>((resolve) => settleWaiters.push(resolve))),
    seal: async (opts) => assertWritable().seal(opts?.streams),
    ready: async () => {
      assertOpen();
      await writer?.ready();
      if (!writer || !writeFailure) return;
      const failure = writeFailure;
      try {
        await writer.probe();
        noteWrite();
      } catch (e) {
        noteWrite(e);
        throw new UnavailableError(`store ${options.path}: writes are failing (${failure.message})`, { cause: e });
      }
    },
    publicKeyPem: () => (keys ? publicKeyPem(keys.publicKey) : undefined),
    guessedHeads: () => guessedHeads.size,
    close,
    [Symbol.asyncDispose]: close,
  };
  return store;
};
