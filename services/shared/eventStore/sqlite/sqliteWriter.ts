import Database from 'better-sqlite3';
import {
  ExpectedVersionConflictError,
  IllegalStateError,
  NotFoundError,
  UnavailableError,
  ValidationError,
  parseEvent,
  type AppErrorUnion,
  type FieldIssue,
} from '../../../../schemas/index.js';
import type { AppendConflict, ExpectedRevision, StoredEventRef } from '../eventStore.js';
import { applyMembershipChange, decodeIndexKeys, groupKey, deviceKey, groupsViaDevices, type MembershipChange } from '../indexKeys.js';
import { canonicalJson, chainLink, digestOf, genesisHash, HASH_BYTES, toHex } from '../format/chain.js';
import { loadSigningKeys, sealHashOf, sealLinkOf, signSeal, type SealLink, type SignedSeal, type SigningKeys } from './tamper/signing.js';
import { LEAF_V2, leafV2HasherFor, openTlog } from './tamper/tlogStore.js';
import { EVENT_ROW_COLUMNS, EVENT_ROW_WIDTH, rowCheckOf } from './eventRow.js';
import { packReplies, unpackBatch, type PackedBatch, type PackedReplies } from './packedBatch.js';

/**
 * The single writer of a SQLite store: every append, checkpoint and seal goes through one of these, on one
 * connection. It is synchronous and owns no thread: `writerWorker.ts` runs it on a worker thread (the
 * default, so parsing and HTTP overlap the inserts and the fsync), or the store calls it inline.
 *
 * A request is a few strings and bytes, not one object per event, because it crosses a thread boundary.
 */
export interface AppendRequest {
  readonly stream: string;
  readonly expected: ExpectedRevision;
  /** the host of every event (one string), or of each event (a stream other than a host's own) */
  readonly hosts: string | readonly string[];
  /**
   * one line per event (`\n` between them), five fields per line (`\t` between them): id, type, time (ns,
   * decimal), {@link encodeIndexKeys} of the event, and its canonical JSON (the bytes stored and hashed).
   * Neither separator occurs in a field: canonical JSON has no whitespace outside strings and escapes both
   * inside them; ids, types, times and index keys are validated tokens. One string crosses a thread
   * boundary for the price of a copy, an array of strings for several times that.
   */
  readonly lines: string;
  /**
   * Optional: the chain hashes the caller computed ahead (32 bytes per event, in order), assuming the stream's
   * head hash is `prevHash` and no event is a duplicate. The writer uses them only when both hold; otherwise
   * (another writer moved the head, a duplicate, a stale guess) it computes the chain itself.
   */
  readonly chain?: GuessedChain;
  /** the few events that move a device between groups: [index of the event's line, the change] */
  readonly changes: readonly (readonly [number, MembershipChange])[];
}

export interface GuessedChain {
  readonly prevHash: Uint8Array;
  readonly hashes: Uint8Array;
  /** the revision the first event gets, if the guess holds */
  readonly firstRevision: bigint;
  /** a v2 log's leaf hashes of the events (tlogStore.ts), 32 bytes each, under the same guess */
  readonly leaves?: Uint8Array;
}

/** the head a guessed chain ends on: the prevHash of the stream's next append, if the guess holds */
export const lastHashOf = (chain: GuessedChain): Uint8Array => chain.hashes.subarray(chain.hashes.length - HASH_BYTES);

export type AppendReply =
  | {
      readonly ok: true;
      readonly nextExpectedRevision: bigint;
      readonly lastPosition: bigint;
      /** one character per requested event: `a` appended, `d` duplicate (same id, same bytes), `c` conflict (same id, other bytes) */
      readonly outcomes: string;
      /** for each `c`: the event that holds the id */
      readonly conflicts: readonly AppendConflict[];
      /** the stream's head hash after this append: the next append's prevHash */
      readonly headHash: Uint8Array;
      /** where the first appended event went; the others follow one by one (single writer) */
      readonly firstPosition: bigint;
      readonly firstRevision: bigint;
    }
  | { readonly ok: false; readonly error: WireError };

/** an error as it crosses the thread boundary (class identity does not survive a structured clone) */
export interface WireError {
  readonly kind: AppErrorUnion['kind'] | 'other';
  readonly message: string;
  readonly issues?: readonly FieldIssue[];
  /** SQLite's result code, when SQLite raised it */
  readonly code?: string;
  readonly conflict?: { readonly streamName: string; readonly expected: string; readonly actual: string };
}

export const toWireError = (error: unknown): WireError => {
  const e = convertSqliteError(error);
  const code = typeof (error as { code?: unknown }).code === 'string' ? ((error as { code: string }).code) : undefined;
  const message = e instanceof Error ? e.message : String(e);
  const base = { message, ...(code ? { code } : {}) };
  if (e instanceof ExpectedVersionConflictError) return { ...base, kind: 'conflict', conflict: { streamName: e.streamName, expected: e.expected, actual: e.actual } };
  if (e instanceof ValidationError) return { ...base, kind: 'validation', issues: e.issues };
  const kind = (e as { kind?: unknown }).kind;
  return kind === 'illegal_state' || kind === 'not_found' || kind === 'unavailable' ? { ...base, kind } : { ...base, kind: 'other' };
};

export const fromWireError = (w: WireError): Error => {
  const error = ((): Error => {
    switch (w.kind) {
      case 'conflict':
        return new ExpectedVersionConflictError(w.conflict!.streamName, w.conflict!.expected, w.conflict!.actual);
      case 'validation':
        return new ValidationError(w.message, w.issues ?? []);
      case 'illegal_state':
        return new IllegalStateError(w.message);
      case 'not_found':
        return new NotFoundError(w.message);
      case 'unavailable':
        return new UnavailableError(w.message);
      default:
        return new Error(w.message);
    }
  })();
  if (w.code) Object.assign(error, { code: w.code });
  return error;
};

/** SQLite reports extended codes (SQLITE_IOERR_FSYNC, SQLITE_BUSY_SNAPSHOT, ...): the family decides */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY)(_|$)/;

export const convertSqliteError = (error: unknown): unknown => {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) {
    return new UnavailableError(`sqlite store unavailable: ${(error as Error).message}`, { cause: error });
  }
  return error;
};

export interface SqliteWriterOptions {
  readonly path: string;
  readonly durability: 'full' | 'normal';
  /** where the signing keys live (already created by the store); false: no seals */
  readonly keyDir: string | false;
  readonly sealIntervalMs: number;
  /** keep the transparency log's Merkle tree (tamper/tlogStore.ts); false only for a benchmark's same-run reference */
  readonly merkleTree?: boolean;
  /** every statement the writer's connection runs (better-sqlite3 `verbose`): diagnostics and tests; inline writer only */
  readonly trace?: (sql: string) => void;
}

export interface SqliteWriter {
  /** one transaction (one fsync) for the whole batch, each request in its own savepoint; one reply per request, in order */
  append(batch: PackedBatch): PackedReplies;
  saveCheckpoint(name: string, position: bigint): void;
  /**
   * signs a seal now of the chain heads that moved since the last one (and of `streams`' heads, moved or not),
   * when there is anything to sign
   */
  seal(streams?: readonly string[]): SignedSeal | undefined;
  /** commits a write of one page and nothing else (the schema version, rewritten as it is): throws while the disk is full or failing */
  probe(): void;
  /** seals (best effort) and closes the connection; never throws, says what failed */
  close(): WriterCloseReport;
}

/** what went wrong while closing (the connection is closed regardless) */
export interface WriterCloseReport {
  /** the final seal failed (full disk, I/O error): the events after the last seal stay chained but unsigned */
  readonly sealError?: string;
  readonly closeError?: string;
}

/** an event holding an id: a stored row, or one written earlier in the same request */
interface IdHolder {
  readonly id: string;
  readonly stream: string;
  readonly revision: bigint;
  readonly position: bigint;
  /** its canonical JSON */
  readonly json: string;
}

/**
 * A re-sent id is a duplicate (a retry) when its canonical bytes equal the stored ones; a row stored under an
 * older schema version is compared as the catalogue upcasts it, as a retry of it would be parsed today.
 */
const sameStoredContent = (storedJson: string, json: string): boolean => {
  if (storedJson === json) return true;
  let stored: unknown;
  try {
    stored = JSON.parse(storedJson);
  } catch {
    return false;
  }
  const parsed = parseEvent(stored);
  return parsed.ok && canonicalJson(parsed.value) === json;
};

const refOf = (h: IdHolder): StoredEventRef => {
  const { host, seq } = JSON.parse(h.json) as { host: string; seq: number };
  return { id: h.id, streamName: h.stream, revision: h.revision, position: h.position, host, seq };
};

/** a stream's head: its last revision, that event's position and chain hash */
interface Head {
  readonly revision: bigint;
  readonly position: bigint;
  readonly hash: Uint8Array;
}
interface HeadRow extends Head {
  readonly name: string;
  readonly hash: Buffer;
}

/** what planned appends add, gathered so that each kind of row is written by one statement per chunk */
interface Planned {
  /** event rows, {@link EVENT_ROW_WIDTH} values each */
  readonly rows: unknown[];
  /** index rows: host, key and position each; written as the (host, key)'s id and position */
  readonly index: unknown[];
  /** the hosts the index rows name */
  readonly keyHosts: Set<string>;
  /** the hosts whose device → group membership changed */
  readonly moved: Set<string>;
  /** a v2 log's leaf hashes of those rows, in order, in pieces */
  readonly leaves: Uint8Array[];
  /** the heads moved, by stream */
  readonly heads: Map<string, Head>;
}

/** thrown inside a first try's savepoint to have it rolled back and retried with the duplicate probe */
const RETRY_WITH_PROBE = new Error('retry with the duplicate probe');

/** at most this many hosts' (host, key) ids and device groups are kept in the writer's caches (issue 23: 1e5 hosts have 1.1e6 keys) */
const CACHED_HOSTS_MAX = 20_000;

/** a first try's failure that the duplicate probe sorts out (a stored id, a stale expected revision) */
const isRetryable = (error: unknown): boolean => error === RETRY_WITH_PROBE || (error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';

const showExpected = (e: ExpectedRevision): string => (typeof e === 'bigint' ? e.toString() : e);

/**
 * whether any of a request's lines is a device-only event (no group, some device: its index keys field, the
 * fourth, starts with the groups/devices separator and devices follow), without splitting the lines
 */
export const hasDeviceOnlyEvent = (lines: string): boolean => {
  let at = 0;
  while (at < lines.length) {
    const end = lines.indexOf('\n', at) === -1 ? lines.length : lines.indexOf('\n', at);
    let tab = at - 1;
    for (let field = 0; field < 3 && tab < end; field++) {
      tab = lines.indexOf('\t', tab + 1);
      if (tab === -1) tab = end;
    }
    // the keys field: `groups \0 devices`, so no group when it starts with \0, some device when a character follows it
    if (tab < end && lines.charCodeAt(tab + 1) === 0 && tab + 2 < end && lines.charCodeAt(tab + 2) !== 9) return true;
    at = end + 1;
  }
  return false;
};

/** opens the writer's own connection; the schema is already migrated by the store that owns it */
export const openSqliteWriter = (options: SqliteWriterOptions): SqliteWriter => {
  const db = new Database(options.path, options.trace ? { verbose: (sql) => options.trace!(String(sql)) } : {});
  db.defaultSafeIntegers(true);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  const keys: SigningKeys | undefined = options.keyDir === false ? undefined : loadSigningKeys(options.keyDir, { mayMint: false });
  const sealIntervalMs = options.sealIntervalMs;
  // the Merkle tree over every event: leaves added in each append's transaction, checkpoints cut with the seals
  const tlog = options.merkleTree === false ? undefined : openTlog(db);
  const leafV2 = tlog?.format === LEAF_V2;

  const q = {
    // a stream's head is its last event (schema v6: no head table), found through the (stream, revision) key
    stream: db.prepare<[string], { revision: bigint; position: bigint; hash: Buffer }>('SELECT revision, position, hash FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1'),
    positionOfId: db.prepare<[string], { position: bigint }>('SELECT position FROM events WHERE id = ?'),
    // every head of a batch in one statement (names as a JSON array): each stream's last revision, then its row
    headsOf: db.prepare<[string], HeadRow>(
      'SELECT e.stream AS name, e.revision, e.position, e.hash FROM json_each(?) j JOIN events e ON e.stream = j.value AND e.revision = (SELECT max(revision) FROM events WHERE stream = j.value)',
    ),
    // (host, key) pairs as a JSON array of [host, key]
    // the ids of the pairs it added (a pair already stored is ignored and not returned)
    insertKeys: db.prepare<[string], { id: bigint; host: string; key: string }>('INSERT OR IGNORE INTO index_keys (host, key) SELECT value->>0, value->>1 FROM json_each(?) WHERE true RETURNING id, host, key'),
    // every key of the hosts named (a JSON array): a range of the (host, key) index per host, not a probe per pair
    keysOfHosts: db.prepare<[string], { id: bigint; host: string; key: string }>('SELECT id, host, key FROM index_keys WHERE host IN (SELECT value FROM json_each(?))'),
    groupsOfHost: db.prepare<[string], { device: string; grp: bigint }>('SELECT device, grp FROM device_groups WHERE host = ?'),
    groupsOfHosts: db.prepare<[string], { host: string; device: string; grp: bigint }>('SELECT host, device, grp FROM device_groups WHERE host IN (SELECT value FROM json_each(?))'),
    // a batch's hosts whose membership changed, rewritten: hosts as a JSON array, rows as [host, device, group]
    clearGroups: db.prepare<[string]>('DELETE FROM device_groups WHERE host IN (SELECT value FROM json_each(?))'),
    insertGroups: db.prepare<[string]>('INSERT INTO device_groups (host, device, grp) SELECT value->>0, value->>1, value->>2 FROM json_each(?)'),
    head: db.prepare<[], { head: bigint | null }>('SELECT max(position) AS head FROM events'),
    saveCheckpoint: db.prepare('INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position'),
    // the heads that moved after a position: each stream's last event after it (SQLite takes a max() query's
    // other columns from the row holding the max), read from the events since then by position; NOT INDEXED,
    // or the planner scans every event in (stream, time) order to group without sorting
    movedHeads: db.prepare<[bigint], HeadRow>('SELECT stream AS name, revision, max(position) AS position, hash FROM events NOT INDEXED WHERE position > ? GROUP BY stream'),
    lastSealId: db.prepare<[], { id: bigint | null }>('SELECT max(id) AS id FROM seals'),
    sealPayload: db.prepare<[bigint], { payload: string }>('SELECT payload FROM seals WHERE id = ?'),
    // changes whenever another connection (another process's writer) committed to the file
    dataVersion: db.prepare<[], { data_version: bigint }>('PRAGMA data_version'),
    insertSeal: db.prepare('INSERT INTO seals (payload, signature) VALUES (?, ?)'),
  };

  // statements are batched: one round trip per chunk of rows, not per event (most of an append's cost
  // is per-call overhead otherwise)
  const ROWS = 100;
  const multi = new Map<string, Database.Statement>();
  const multiInsert = (sql: (n: number) => string, kind: string, width: number, values: unknown[]): void => {
    for (let off = 0; off < values.length; off += ROWS * width) {
      const chunk = off === 0 && values.length <= ROWS * width ? values : values.slice(off, off + ROWS * width);
      const n = chunk.length / width;
      const key = `${kind}:${n}`;
      let stmt = multi.get(key);
      if (!stmt) multi.set(key, (stmt = db.prepare(sql(n))));
      stmt.run(chunk);
    }
  };
  const rowsOf = (n: number, width: number): string => Array.from({ length: n }, () => `(${Array(width).fill('?').join(',')})`).join(',');
  const insertEvents = (values: unknown[]): void =>
    multiInsert((n) => `INSERT INTO events (${EVENT_ROW_COLUMNS}) VALUES ${rowsOf(n, EVENT_ROW_WIDTH)}`, 'e', EVENT_ROW_WIDTH, values);
  const insertIndex = (values: unknown[]): void => multiInsert((n) => `INSERT OR IGNORE INTO event_index (key_id, position) VALUES ${rowsOf(n, 2)}`, 'i', 2, values);

  // host → key → the (host, key)'s integer id; ids only ever get added, and a rolled-back one is re-read. Index
  // rows are planned with host and key and get the id when written. A host's keys are read together, one range
  // of the (host, key) index for every host of a batch not cached, by one statement: a host's keys recur in each
  // of its events, and at 1e5 hosts (1.1e6 keys) a probe per pair missed the cache for nearly every event
  // (issue 23). The new pairs of a batch are added, and their ids returned, by one statement.
  let hostKeys = new Map<string, Map<string, bigint>>();
  const resolveKeys = (out: Planned): void => {
    const uncached: string[] = [];
    for (const h of out.keyHosts) if (!hostKeys.has(h)) uncached.push(h);
    if (uncached.length > 0) {
      for (const h of uncached) hostKeys.set(h, new Map());
      for (const r of q.keysOfHosts.all(JSON.stringify(uncached))) hostKeys.get(r.host)!.set(r.key, r.id);
    }
    const fresh = new Map<string, [string, string]>();
    for (let i = 0; i < out.index.length; i += 3) {
      const host = out.index[i] as string;
      const key = out.index[i + 1] as string;
      if (!hostKeys.get(host)!.has(key)) fresh.set(`${host}\u0000${key}`, [host, key]);
    }
    if (fresh.size === 0) return;
    const pairs = JSON.stringify([...fresh.values()]);
    let added = 0;
    for (const r of q.insertKeys.all(pairs)) {
      hostKeys.get(r.host)!.set(r.key, r.id);
      added++;
    }
    // cannot happen inside the write transaction (the read saw every stored key of these hosts); if it did, read them
    if (added < fresh.size) for (const r of q.keysOfHosts.all(JSON.stringify([...new Set([...fresh.values()].map(([h]) => h))]))) hostKeys.get(r.host)!.set(r.key, r.id);
  };
  const storedIds = (ids: readonly string[]): Map<string, IdHolder> => {
    const found = new Map<string, IdHolder>();
    for (let off = 0; off < ids.length; off += 500) {
      const chunk = ids.length <= 500 ? ids : ids.slice(off, off + 500);
      const key = `ids:${chunk.length}`;
      let stmt = multi.get(key);
      if (!stmt) multi.set(key, (stmt = db.prepare(`SELECT id, stream, revision, position, json FROM events WHERE id IN (${Array(chunk.length).fill('?').join(',')})`)));
      for (const r of stmt.all(chunk) as IdHolder[]) found.set(r.id, r);
    }
    return found;
  };

  // device → group per host, read through from device_groups; dropped whenever a write rolls back
  let members = new Map<string, Map<string, number>>();
  const membersOf = (host: string): Map<string, number> => {
    let m = members.get(host);
    if (!m) {
      m = new Map(q.groupsOfHost.all(host).map((r) => [r.device, Number(r.grp)]));
      members.set(host, m);
    }
    return m;
  };
  /**
   * the stored members of the batch's hosts that are not cached and that an event needs them for (a change to
   * compare, or a device-only event to file under its devices' groups): one read for all, not one per host
   * (issue 23: at 1e5 hosts four in ten events are device-only, and the cache holds a fifth of the hosts)
   */
  const readMembersOf = (batch: readonly AppendRequest[]): void => {
    const hosts = new Set<string>();
    for (const r of batch) {
      for (const [i] of r.changes) {
        const host = typeof r.hosts === 'string' ? r.hosts : r.hosts[i]!;
        if (!members.has(host)) hosts.add(host);
      }
      if (typeof r.hosts === 'string') {
        if (!members.has(r.hosts) && !hosts.has(r.hosts) && hasDeviceOnlyEvent(r.lines)) hosts.add(r.hosts);
      }
    }
    if (hosts.size === 0) return;
    for (const host of hosts) members.set(host, new Map());
    for (const row of q.groupsOfHosts.all(JSON.stringify([...hosts]))) members.get(row.host)!.set(row.device, Number(row.grp));
  };

  // the map follows the one membership rule (indexKeys); device_groups mirrors it: each host a batch changed
  // gets its rows rewritten from the map when the batch is written (writePlanned)
  const applyChange = (host: string, change: MembershipChange, out: Planned): void => {
    // a reset is compared with the stored members (read when not cached): a host's periodic snapshot mostly
    // restates them, and a read of its rows costs less than their rewrite (issue 23: at 1e5 hosts the cache
    // holds a fifth of them, so nearly every snapshot rewrote its host's rows)
    if (applyMembershipChange(membersOf(host), change)) out.moved.add(host);
  };

  const indexRows = (host: string, encoded: string, position: bigint, out: Planned): void => {
    const { groups, devices } = decodeIndexKeys(encoded);
    if (groups.length > 0 || devices.length > 0) out.keyHosts.add(host);
    const add = (key: string): void => {
      out.index.push(host, key, position);
    };
    for (const g of groups) add(groupKey(g));
    if (devices.length === 0) return;
    for (const d of devices) add(deviceKey(d));
    // a device-only event is also filed under each device's current group
    if (groups.length === 0) for (const g of groupsViaDevices({ groups, devices }, membersOf(host))) add(groupKey(g));
  };

  // the next global position, known inside the write transaction (single writer)
  let nextPosition = 0n;

  /**
   * `probe`: look up which ids are already stored first. Without it (the first try), a stored id makes the
   * insert fail on events.id and a stale expected revision fails too; either way the savepoint rolls back and
   * the append is retried with the probe, which reports duplicates (and a conflict only if something new was
   * to be written). Duplicates are rare, so this saves one index lookup per event in the common case.
   */
  const planAppend = (r: AppendRequest, head: Head | undefined, probe: boolean, out: Planned): AppendReply => {
    const before = head ? head.revision : -1n;
    const conflict = r.expected === 'any' ? false : r.expected === 'no_stream' ? head !== undefined : head === undefined || head.revision !== r.expected;
    let revision = before;
    let prev = head ? head.hash : genesisHash(r.stream);
    let lastPosition = head ? head.position : 0n;
    const firstPosition = nextPosition;
    const lines = r.lines === '' ? [] : r.lines.split('\n');
    const ids = new Array<string>(lines.length);
    const fields = new Array<string[]>(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const f = lines[i]!.split('\t');
      fields[i] = f;
      ids[i] = f[0]!;
    }
    // id → the event holding it: stored (looked up by the probe), or earlier in this request
    const seen = probe ? storedIds(ids) : new Map<string, IdHolder>();
    const conflicts: AppendConflict[] = [];
    // the caller's precomputed chain holds while it started from this head and nothing was skipped
    const guessHolds = r.chain !== undefined && seen.size === 0 && r.chain.firstRevision === before + 1n && Buffer.compare(prev, r.chain.prevHash) === 0;
    let given = guessHolds ? Buffer.from(r.chain!.hashes.buffer, r.chain!.hashes.byteOffset, r.chain!.hashes.byteLength) : undefined;
    // a v2 log's leaves: the caller's while its guess holds, else hashed here from the chain digest
    let givenLeaves = guessHolds ? r.chain!.leaves : undefined;
    // the caller's leaves go to the tree as they are while every event is appended under the guess; the
    // first duplicate or computed leaf switches to a buffer filled here
    let leaves: Uint8Array | undefined;
    let leafOf: ReturnType<typeof leafV2HasherFor> | undefined;
    if (givenLeaves && givenLeaves.length !== lines.length * HASH_BYTES) givenLeaves = undefined;
    let outcomes = '';
    const rows: unknown[] = [];
    let nextChange = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const [, type, time, keys, json] = fields[i] as [string, string, string, string, string];
      const change = r.changes[nextChange]?.[0] === i ? r.changes[nextChange++]![1] : undefined;
      const holder = seen.get(id);
      if (holder) {
        given = undefined;
        if (givenLeaves) {
          // the events before this one took the caller's leaves in order: keep them, the rest are hashed here
          leaves = new Uint8Array(lines.length * HASH_BYTES);
          leaves.set(givenLeaves.subarray(0, (rows.length / EVENT_ROW_WIDTH) * HASH_BYTES));
          givenLeaves = undefined;
        }
        if (sameStoredContent(holder.json, json)) outcomes += 'd';
        else {
          outcomes += 'c';
          conflicts.push({ index: i, stored: refOf(holder) });
        }
        continue;
      }
      const host = typeof r.hosts === 'string' ? r.hosts : r.hosts[i]!;
      const k = rows.length / EVENT_ROW_WIDTH;
      if (leafV2 && !givenLeaves) leaves ??= new Uint8Array(lines.length * HASH_BYTES);
      const hash = given ? given.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES) : chainLink(prev, json, leaves, k * HASH_BYTES);
      revision += 1n;
      if (leaves) {
        // the digest chainLink wrote there (or, with the caller's chain but no leaves, the bytes hashed now)
        if (given) leaves.set(digestOf(json), k * HASH_BYTES);
        (leafOf ??= leafV2HasherFor(r.stream))(revision, leaves, k * HASH_BYTES, leaves, k * HASH_BYTES);
      }
      lastPosition = nextPosition++;
      seen.set(id, { id, stream: r.stream, revision, position: lastPosition, json });
      rows.push(lastPosition, id, r.stream, revision, type, BigInt(time), json, prev, hash, rowCheckOf(json));
      prev = hash;
      outcomes += 'a';
      indexRows(host, keys, lastPosition, out);
      if (change) applyChange(host, change, out);
    }
    if (rows.length > 0 && conflict) {
      if (!probe) throw RETRY_WITH_PROBE;
      throw new ExpectedVersionConflictError(r.stream, showExpected(r.expected), before < 0n ? 'no_stream' : before.toString());
    }
    if (rows.length > 0) {
      for (const v of rows) out.rows.push(v);
      const appendedLeaves = givenLeaves ?? leaves;
      if (appendedLeaves) out.leaves.push(appendedLeaves.subarray(0, rows.length / EVENT_ROW_WIDTH * HASH_BYTES));
      out.heads.set(r.stream, { revision, position: lastPosition, hash: prev });
    } else if (!head) {
      // all duplicates of events stored in another stream: report where the last one lives
      const last = ids.at(-1);
      lastPosition = last !== undefined ? (q.positionOfId.get(last)?.position ?? 0n) : 0n;
    }
    return { ok: true, nextExpectedRevision: revision, lastPosition, outcomes, conflicts, headHash: Buffer.from(prev), firstPosition, firstRevision: before + 1n };
  };
  /** writes what the planned appends add: one statement per chunk of rows (the rows are the heads: nothing else to move) */
  const writePlanned = (out: Planned): void => {
    if (out.rows.length === 0) return;
    insertEvents(out.rows);
    if (tlog) {
      let leaves: Uint8Array | undefined;
      if (tlog.format === LEAF_V2) {
        leaves = out.leaves.length === 1 ? out.leaves[0] : new Uint8Array((out.rows.length / EVENT_ROW_WIDTH) * HASH_BYTES);
        if (out.leaves.length > 1) {
          let at = 0;
          for (const l of out.leaves) {
            leaves!.set(l, at);
            at += l.length;
          }
        }
      }
      tlog.appendRows(out.rows, leaves);
    }
    resolveKeys(out);
    const rows = new Array<unknown>((out.index.length / 3) * 2);
    for (let i = 0, j = 0; i < out.index.length; i += 3, j += 2) {
      rows[j] = hostKeys.get(out.index[i] as string)!.get(out.index[i + 1] as string);
      rows[j + 1] = out.index[i + 2];
    }
    insertIndex(rows);
    if (out.moved.size > 0) {
      const hosts = [...out.moved];
      const rows: (string | number)[][] = [];
      for (const h of hosts) for (const [d, g] of members.get(h)!) rows.push([h, d, g]);
      q.clearGroups.run(JSON.stringify(hosts));
      q.insertGroups.run(JSON.stringify(rows));
    }
  };
  const planned = (): Planned => ({ rows: [], index: [], keyHosts: new Set(), moved: new Set(), leaves: [], heads: new Map() });

  /** one append in its own savepoint (the way back when a batch as one unit failed) */
  const appendOne = db.transaction((r: AppendRequest, probe: boolean): AppendReply => {
    const out = planned();
    const reply = planAppend(r, q.stream.get(r.stream), probe, out);
    writePlanned(out);
    return reply;
  });
  /**
   * A whole batch as one unit, however many streams it spans: the heads read by one statement, the rows
   * inserted together. Any append that needs more (a stored id,
   * a stale expected revision) fails it: it rolls back and the batch is redone append by append.
   */
  const appendAll = db.transaction((batch: readonly AppendRequest[]): AppendReply[] => {
    const names = [...new Set(batch.map((r) => r.stream))];
    const stored = new Map(q.headsOf.all(JSON.stringify(names)).map((h) => [h.name, h]));
    readMembersOf(batch);
    const out = planned();
    const replies = batch.map((r) => planAppend(r, out.heads.get(r.stream) ?? stored.get(r.stream), false, out));
    writePlanned(out);
    return replies;
  });
  let seenDataVersion = -1n;
  const forgetCaches = (): void => {
    members = new Map();
    hostKeys = new Map();
    tlog?.forget();
  };
  const appendWithRetry = (r: AppendRequest): AppendReply => {
    const mark = nextPosition;
    try {
      return appendOne(r, false);
    } catch (error) {
      nextPosition = mark;
      forgetCaches();
      if (!isRetryable(error)) throw error;
    }
    return appendOne(r, true);
  };

  let lastSealMs = 0;
  let sealTimer: NodeJS.Timeout | undefined;
  let closed = false;
  // the newest stored seal, as the next one chains from it; re-read when another writer sealed since
  let lastSeal: (SealLink & { readonly id: bigint }) | undefined;
  const previousSeal = (): (SealLink & { readonly id: bigint }) | undefined => {
    const id = q.lastSealId.get()?.id ?? null;
    if (id === null) return undefined;
    if (lastSeal?.id !== id) lastSeal = { id, ...sealLinkOf(q.sealPayload.get(id)!.payload) };
    return lastSeal;
  };

  /**
   * Signs, as this transaction sees them, the heads that moved since the previous seal (found by position:
   * a head's position only grows) and the heads of `streams`, chained to the previous seal (tamper/signing.ts,
   * v2); the caller records it once committed ({@link sealed}). Nothing when nothing moved and nothing was asked.
   */
  const signHeads = (streams: readonly string[] = []): { seal: SignedSeal; link: SealLink & { readonly id: bigint } } | undefined => {
    if (!keys) return undefined;
    tlog?.checkpoint(keys);
    const head = q.head.get()?.head ?? 0n;
    const previous = previousSeal();
    const since = previous?.upTo ?? 0n;
    if (head === since && streams.length === 0) return undefined;
    const rows = new Map<string, HeadRow>();
    for (const r of q.movedHeads.all(since)) rows.set(r.name, r);
    for (const name of streams) {
      const r = rows.has(name) ? undefined : q.stream.get(name);
      if (r) rows.set(name, { name, ...r });
    }
    if (rows.size === 0 && head === since) return undefined;
    const heads = [...rows.values()].map((h) => ({ stream: h.name, revision: h.revision.toString(), position: h.position.toString(), hash: toHex(h.hash) }));
    const seal = signSeal(keys, heads, BigInt(Date.now()) * 1_000_000n, previous, head);
    const id = BigInt(q.insertSeal.run(seal.payload, seal.signature).lastInsertRowid);
    return { seal, link: { id, hash: sealHashOf(seal.payload), upTo: head } };
  };
  const sealed = (signed: { link: SealLink & { readonly id: bigint } } | undefined): void => {
    lastSealMs = Date.now();
    if (signed) lastSeal = signed.link;
  };
  /** a seal in its own transaction */
  const sealNow = (streams?: readonly string[]): SignedSeal | undefined => {
    const signed = db.transaction(signHeads).immediate(streams);
    sealed(signed);
    return signed?.seal;
  };

  const scheduleSeal = (): void => {
    if (!keys || sealTimer || closed) return;
    sealTimer = setTimeout(() => {
      sealTimer = undefined;
      if (closed) return;
      try {
        sealNow();
      } catch {
        // a busy file: the next append or close seals
      }
    }, sealIntervalMs);
    sealTimer.unref();
  };

  const append = (batch: readonly AppendRequest[]): AppendReply[] => {
    if (closed) throw new IllegalStateError('event store is closed');
    const replies: AppendReply[] = [];
    // undefined: no seal due in this batch; null: due, but the heads had not moved
    let signedInBatch: ReturnType<typeof signHeads> | null;
    try {
      db.transaction(() => {
        // another writer may have moved devices between groups or added index keys: start from the file
        const version = q.dataVersion.get()!.data_version;
        if (version !== seenDataVersion) {
          forgetCaches();
          seenDataVersion = version;
        }
        // the caches hold what the file holds: over a large fleet they start again rather than grow with it
        if (hostKeys.size > CACHED_HOSTS_MAX) hostKeys = new Map();
        if (members.size > CACHED_HOSTS_MAX) members = new Map();
        nextPosition = (q.head.get()?.head ?? 0n) + 1n;
        const start = nextPosition;
        try {
          replies.push(...appendAll(batch));
        } catch (error) {
          nextPosition = start;
          forgetCaches();
          for (const r of batch) {
            const mark = nextPosition;
            try {
              // nested transaction = savepoint: a failed append rolls back alone; a lone append that failed
              // as the whole batch goes straight to the duplicate probe
              replies.push(batch.length === 1 && isRetryable(error) ? appendOne(r, true) : appendWithRetry(r));
            } catch (e) {
              nextPosition = mark;
              forgetCaches();
              replies.push({ ok: false, error: toWireError(e) });
            }
          }
        }
        if (keys && Date.now() - lastSealMs >= sealIntervalMs) signedInBatch = signHeads() ?? null;
      }).immediate();
      if (signedInBatch !== undefined) sealed(signedInBatch ?? undefined);
    } catch (error) {
      forgetCaches();
      const e = toWireError(error);
      return batch.map(() => ({ ok: false, error: e }));
    }
    if (replies.some((r) => r.ok && r.outcomes.includes('a'))) scheduleSeal();
    return replies;
  };

  return {
    append: (batch) => packReplies(append(unpackBatch(batch))),
    saveCheckpoint: (name, position) => {
      if (!closed) q.saveCheckpoint.run(name, position);
    },
    seal: (streams) => {
      if (closed) throw new IllegalStateError('event store is closed');
      return sealNow(streams);
    },
    probe: () => {
      if (closed) throw new IllegalStateError('event store is closed');
      db.pragma(`user_version = ${Number(db.pragma('user_version', { simple: true }) as bigint)}`);
    },
    close: () => {
      if (closed) return {};
      let sealError: string | undefined;
      let closeError: string | undefined;
      try {
        sealNow();
      } catch (e) {
        // sealing is best effort at close; the next open seals again
        sealError = (e as Error).message;
      }
      closed = true;
      if (sealTimer) clearTimeout(sealTimer);
      try {
        db.close();
      } catch (e) {
        closeError = (e as Error).message;
      }
      return { ...(sealError !== undefined ? { sealError } : {}), ...(closeError !== undefined ? { closeError } : {}) };
    },
  };
};
