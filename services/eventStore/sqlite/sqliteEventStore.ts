import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  ExpectedVersionConflictError,
  IllegalStateError,
  UnavailableError,
  ValidationError,
  currentVersionOf,
  isEventType,
  parseEvent,
  type IommuEvent,
  type RecordedEvent,
} from '../../../schemas/index.js';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  ReadByIndexOptions,
  ReadStreamOptions,
  SubscribeOptions,
  Subscription,
} from '../eventStore.js';
import { assertAppendable } from '../streamRules.js';
import { deviceKey, groupKey, indexKeysOf, membershipChangeOf } from '../indexKeys.js';
import { canonicalJson, chainLink, genesisHash, toHex } from '../tamper/chain.js';
import { loadOrCreateSigningKeys, publicKeyPem, signSeal, type SignedSeal, type SigningKeys } from '../tamper/signing.js';
import { migrate, SCHEMA_VERSION } from './migrations.js';

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
   * `'verified-hash'`: rows whose bytes match their chain hash and whose schema version is current skip the
   * schema (see {@link trustVerified}); `'parse'`: every row goes through the catalogue's parse @defaultValue 'verified-hash'
   */
  readonly readValidation?: 'verified-hash' | 'parse';
}

export interface SqliteEventStore extends EventStore {
  readonly path: string;
  readonly durability: SqliteDurability;
  /** signs a checkpoint of every chain head now (when heads moved since the last one); undefined without a key */
  seal(): SignedSeal | undefined;
  /** the public key that checks this store's seals, PEM; undefined when sealing is off */
  publicKeyPem(): string | undefined;
  /** the underlying connection, for verify/export in this package only */
  readonly db: Database.Database;
  [Symbol.asyncDispose](): Promise<void>;
}

interface EventRow {
  position: bigint;
  stream: string;
  revision: bigint;
  json: string;
  prev_hash?: Buffer;
  hash?: Buffer;
}
interface StreamRow {
  revision: bigint;
  position: bigint;
  hash: Buffer;
}
/** a row this process appended in the current write transaction */
interface RecentRow {
  readonly position: bigint;
  readonly stream: string;
  readonly revision: bigint;
  readonly json: string;
}
interface PendingAppend {
  readonly streamName: string;
  readonly events: readonly IommuEvent[];
  readonly expected: ExpectedRevision;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: unknown) => void;
}

const PAGE = 1000;

/** a stored row back to a RecordedEvent: through the catalogue's parse (G5), so a corrupt row is named, never trusted */
export const fromRow = (row: EventRow, trust = true): RecordedEvent => {
  const fast = trust && row.hash !== undefined ? trustVerified(row) : undefined;
  if (fast) return fast;
  let json: unknown;
  try {
    json = JSON.parse(row.json);
  } catch (e) {
    throw new ValidationError(`store position ${row.position}: stored event is not JSON`, [], { cause: e });
  }
  const parsed = parseEvent(json, `store position ${row.position}`);
  if (!parsed.ok) throw parsed.error;
  return { event: parsed.value, streamName: row.stream, streamPosition: row.revision, globalPosition: row.position };
};

/**
 * Trust-but-verify read (the default): a row whose bytes still hash to its chain link was written by
 * appendToStream from an already parsed event (the port takes parsed events only), and if its schema version
 * is current no upcast is due; so JSON.parse alone rebuilds the same value, at a fraction of the schema's
 * cost. Any other row (edited bytes, older version) takes the full parse.
 */
const trustVerified = (row: EventRow): RecordedEvent | undefined => {
  if (!chainLink(row.prev_hash!, row.json).equals(row.hash!)) return undefined;
  let json: { type?: unknown; schemaVersion?: unknown };
  try {
    json = JSON.parse(row.json) as typeof json;
  } catch {
    return undefined;
  }
  if (!isEventType(json.type) || json.schemaVersion !== currentVersionOf(json.type)) return undefined;
  return { event: json as IommuEvent, streamName: row.stream, streamPosition: row.revision, globalPosition: row.position };
};

const convertSqliteError = (error: unknown): unknown => {
  const code = (error as { code?: unknown }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_IOERR' || code === 'SQLITE_FULL') {
    return new UnavailableError(`sqlite store unavailable: ${(error as Error).message}`, { cause: error });
  }
  return error;
};

const showExpected = (e: ExpectedRevision): string => (typeof e === 'bigint' ? e.toString() : e);

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
  const decode = (row: EventRow): RecordedEvent => fromRow(row, trust);
  if (!readOnly) mkdirSync(dirname(options.path), { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(options.path, { readonly: readOnly, fileMustExist: readOnly });
  } catch (e) {
    throw new UnavailableError(`cannot open store ${options.path}: ${(e as Error).message}`, { cause: e });
  }
  db.defaultSafeIntegers(true);
  db.pragma('busy_timeout = 5000');
  if (readOnly) {
    const v = Number(db.pragma('user_version', { simple: true }) as bigint);
    if (v !== SCHEMA_VERSION) throw new IllegalStateError(`${options.path}: store schema v${v}, this build reads v${SCHEMA_VERSION}`);
  } else {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    migrate(db);
  }
  const keys: SigningKeys | undefined =
    readOnly || options.keyDir === false ? undefined : loadOrCreateSigningKeys(options.keyDir ?? dirname(options.path));

  const q = {
    stream: db.prepare<[string], StreamRow>('SELECT revision, position, hash FROM streams WHERE name = ?'),
    positionOfId: db.prepare<[string], { position: bigint }>('SELECT position FROM events WHERE id = ?'),
    upsertStream: readOnly
      ? undefined
      : db.prepare(
          'INSERT INTO streams (name, revision, position, hash) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET revision = excluded.revision, position = excluded.position, hash = excluded.hash',
        ),
    keyId: db.prepare<[string, string], { id: bigint }>('SELECT id FROM index_keys WHERE host = ? AND key = ?'),
    insertKey: readOnly ? undefined : db.prepare('INSERT INTO index_keys (host, key) VALUES (?, ?)'),
    groupsOfHost: db.prepare<[string], { device: string; grp: bigint }>('SELECT device, grp FROM device_groups WHERE host = ?'),
    setGroup: readOnly ? undefined : db.prepare('INSERT OR REPLACE INTO device_groups (host, device, grp) VALUES (?, ?, ?)'),
    removeGroup: readOnly ? undefined : db.prepare('DELETE FROM device_groups WHERE host = ? AND device = ? AND grp = ?'),
    resetGroups: readOnly ? undefined : db.prepare('DELETE FROM device_groups WHERE host = ?'),
    readAll: db.prepare<[bigint, number], EventRow>('SELECT position, stream, revision, json, prev_hash, hash FROM events WHERE position > ? ORDER BY position LIMIT ?'),
    readFwd: db.prepare<[string, bigint, number], EventRow>(
      'SELECT position, stream, revision, json, prev_hash, hash FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?',
    ),
    readBwd: db.prepare<[string, bigint, number], EventRow>(
      'SELECT position, stream, revision, json, prev_hash, hash FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?',
    ),
    head: db.prepare<[], { head: bigint | null }>('SELECT max(position) AS head FROM events'),
    checkpoint: db.prepare<[string], { position: bigint }>('SELECT position FROM checkpoints WHERE name = ?'),
    saveCheckpoint: readOnly
      ? undefined
      : db.prepare('INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position'),
    heads: db.prepare<[], { name: string; revision: bigint; position: bigint; hash: Buffer }>(
      'SELECT name, revision, position, hash FROM streams ORDER BY name',
    ),
    insertSeal: readOnly ? undefined : db.prepare('INSERT INTO seals (payload, signature) VALUES (?, ?)'),
  };

  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new IllegalStateError('event store is closed');
  };
  const assertWritable = (): void => {
    assertOpen();
    if (readOnly) throw new IllegalStateError(`store ${options.path} is open read-only`);
  };

  // --- appends (group commit) ---
  let queue: PendingAppend[] = [];
  let flushScheduled = false;
  const wakers = new Set<() => void>();

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
    multiInsert((n) => `INSERT INTO events (position, id, stream, revision, type, time_ns, json, prev_hash, hash) VALUES ${rowsOf(n, 9)}`, 'e', 9, values);
  const insertIndex = (values: unknown[]): void =>
    multiInsert((n) => `INSERT OR IGNORE INTO event_index (key_id, position) VALUES ${rowsOf(n, 2)}`, 'i', 2, values);
  // (host, key) → its integer id; ids only ever get added, and a rolled-back one is re-read
  let keyIds = new Map<string, bigint>();
  const keyId = (host: string, key: string): bigint => {
    const k = `${host}\u0000${key}`;
    let id = keyIds.get(k);
    if (id === undefined) {
      id = q.keyId.get(host, key)?.id ?? BigInt(q.insertKey!.run(host, key).lastInsertRowid);
      keyIds.set(k, id);
    }
    return id;
  };
  const storedIds = (ids: readonly string[]): Set<string> => {
    const found = new Set<string>();
    for (let off = 0; off < ids.length; off += 500) {
      const chunk = ids.slice(off, off + 500);
      const key = `ids:${chunk.length}`;
      let stmt = multi.get(key);
      if (!stmt) multi.set(key, (stmt = db.prepare(`SELECT id FROM events WHERE id IN (${Array(chunk.length).fill('?').join(',')})`)));
      for (const r of stmt.all(chunk) as { id: string }[]) found.add(r.id);
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

  // the next global position, known inside the write transaction (single writer)
  let nextPosition = 0n;

  // rows of the flush in progress, announced to onAppended listeners once committed
  let written: RecentRow[] = [];
  const appendListeners = new Set<(batch: readonly RecordedEvent[]) => void>();
  /*
   * The bytes are the canonical JSON this process hashed and wrote from an already parsed event (the port takes
   * parsed events), so JSON.parse rebuilds exactly what a verified read of the row would: a follower told here
   * need not SELECT the row and hash it twice to trust it. A fresh object each, never the caller's.
   */
  const announce = (rows: readonly RecentRow[]): void => {
    if (rows.length === 0 || appendListeners.size === 0) return;
    const batch = rows.map((r): RecordedEvent => ({ event: JSON.parse(r.json) as IommuEvent, streamName: r.stream, streamPosition: r.revision, globalPosition: r.position }));
    for (const listener of appendListeners) {
      try {
        listener(batch);
      } catch {
        // a follower's failure is its own: the append is committed and answered regardless
      }
    }
  };

  const applyAppend = (p: PendingAppend): AppendResult => {
    const head = q.stream.get(p.streamName);
    const before = head ? head.revision : -1n;
    const conflict =
      p.expected === 'any' ? false : p.expected === 'no_stream' ? head !== undefined : head === undefined || head.revision !== p.expected;
    let revision = before;
    let prev = head ? head.hash : genesisHash(p.streamName);
    let lastPosition = head ? head.position : 0n;
    const seen = storedIds(p.events.map((e) => e.id));
    const outcomes: ('appended' | 'duplicate')[] = [];
    const rows: unknown[] = [];
    const index: unknown[] = [];
    for (const event of p.events) {
      if (seen.has(event.id)) {
        outcomes.push('duplicate');
        continue;
      }
      seen.add(event.id);
      const json = canonicalJson(event);
      const hash = chainLink(prev, json);
      revision += 1n;
      lastPosition = nextPosition++;
      rows.push(lastPosition, event.id, p.streamName, revision, event.type, BigInt(event.time), json, prev, hash);
      if (appendListeners.size > 0) written.push({ position: lastPosition, stream: p.streamName, revision, json });
      prev = hash;
      outcomes.push('appended');
      indexEvent(event, lastPosition, index);
    }
    if (rows.length > 0 && conflict) {
      throw new ExpectedVersionConflictError(p.streamName, showExpected(p.expected), before < 0n ? 'no_stream' : before.toString());
    }
    if (rows.length > 0) {
      insertEvents(rows);
      insertIndex(index);
      q.upsertStream!.run(p.streamName, revision, lastPosition, prev);
    } else if (!head) {
      // all duplicates of events stored in another stream: report where the last one lives
      const last = p.events.at(-1);
      lastPosition = last ? (q.positionOfId.get(last.id)?.position ?? 0n) : 0n;
    }
    return { nextExpectedRevision: revision, lastPosition, outcomes };
  };

  const indexEvent = (event: IommuEvent, position: bigint, out: unknown[]): void => {
    const { groups, devices } = indexKeysOf(event);
    const host = event.host;
    for (const g of groups) out.push(keyId(host, groupKey(g)), position);
    if (devices.length === 0) return;
    const m = membersOf(host);
    for (const d of devices) {
      out.push(keyId(host, deviceKey(d)), position);
      // a device-only event is also filed under the device's current group
      const g = groups.length === 0 ? m.get(d) : undefined;
      if (g !== undefined) out.push(keyId(host, groupKey(g)), position);
    }
    const change = membershipChangeOf(event);
    if (!change) return;
    if (change.kind === 'reset') {
      q.resetGroups!.run(host);
      m.clear();
      for (const [d, g] of change.members) {
        q.setGroup!.run(host, d, g);
        m.set(d, g);
      }
    } else if (change.kind === 'set') {
      q.setGroup!.run(host, change.device, change.group);
      m.set(change.device, change.group);
    } else if (m.get(change.device) === change.group) {
      q.removeGroup!.run(host, change.device, change.group);
      m.delete(change.device);
    }
  };

  const appendOne = db.transaction(applyAppend);
  let lastSealMs = 0;
  let sealedHead = -1n;
  let sealTimer: NodeJS.Timeout | undefined;

  const sealNow = (): SignedSeal | undefined => {
    if (!keys || readOnly) return undefined;
    const head = q.head.get()?.head ?? 0n;
    lastSealMs = Date.now();
    if (head === sealedHead) return undefined;
    const heads = q.heads.all().map((h) => ({ stream: h.name, revision: h.revision.toString(), position: h.position.toString(), hash: toHex(h.hash) }));
    const seal = signSeal(keys, heads, BigInt(Date.now()) * 1_000_000n);
    q.insertSeal!.run(seal.payload, seal.signature);
    sealedHead = head;
    return seal;
  };

  const scheduleSeal = (): void => {
    if (!keys || sealTimer || closed) return;
    sealTimer = setTimeout(() => {
      sealTimer = undefined;
      if (!closed) sealNow();
    }, sealIntervalMs);
    sealTimer.unref();
  };

  const flush = (): void => {
    flushScheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    const results: ({ ok: true; value: AppendResult } | { ok: false; error: unknown })[] = [];
    written = [];
    try {
      db.transaction(() => {
        nextPosition = (q.head.get()?.head ?? 0n) + 1n;
        for (const p of batch) {
          const mark = nextPosition;
          const writtenMark = written.length;
          try {
            // nested transaction = savepoint: a failed append rolls back alone
            results.push({ ok: true, value: appendOne(p) });
          } catch (error) {
            nextPosition = mark;
            written.length = writtenMark;
            members = new Map();
            keyIds = new Map();
            results.push({ ok: false, error: convertSqliteError(error) });
          }
        }
        if (keys && Date.now() - lastSealMs >= sealIntervalMs) sealNow();
      }).immediate();
    } catch (error) {
      members = new Map();
      keyIds = new Map();
      written = [];
      const e = convertSqliteError(error);
      for (const p of batch) p.reject(e);
      return;
    }
    const committed = written;
    written = [];
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (r.ok) p.resolve(r.value);
      else p.reject(r.error);
    });
    announce(committed);
    if (results.some((r) => r.ok && r.value.outcomes.includes('appended'))) {
      for (const wake of wakers) wake();
      scheduleSeal();
    }
  };

  const appendToStream = (streamName: string, events: readonly IommuEvent[], opts: AppendOptions = {}): Promise<AppendResult> =>
    new Promise<AppendResult>((resolve, reject) => {
      assertWritable();
      assertAppendable(streamName, events);
      queue.push({ streamName, events, expected: opts.expectedRevision ?? 'any', resolve, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });

  // --- reads ---
  async function* pages(fetch: (limit: number) => EventRow[], advance: (last: EventRow) => void, maxCount?: number): AsyncGenerator<RecordedEvent> {
    let left = maxCount ?? Number.POSITIVE_INFINITY;
    while (left > 0) {
      assertOpen();
      const rows = fetch(Math.min(PAGE, left));
      for (const row of rows) yield decode(row);
      left -= rows.length;
      if (rows.length < PAGE) return;
      advance(rows.at(-1)!);
    }
  }

  const readAll = (opts: ReadAllOptions = {}): AsyncIterable<RecordedEvent> => {
    let after = opts.after ?? 0n;
    return pages(
      (limit) => q.readAll.all(after, limit),
      (last) => (after = last.position),
      opts.maxCount,
    );
  };

  const readStream = (streamName: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> => {
    const backwards = opts.direction === 'backwards';
    const from = opts.fromRevision ?? (backwards ? 'end' : 'start');
    let cursor = from === 'start' ? (backwards ? -1n : 0n) : from === 'end' ? (backwards ? 1n << 62n : 1n << 62n) : from;
    return pages(
      (limit) => (backwards ? q.readBwd.all(streamName, cursor, limit) : q.readFwd.all(streamName, cursor, limit)),
      (last) => (cursor = backwards ? last.revision - 1n : last.revision + 1n),
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
    const stmt = db.prepare<unknown[], EventRow>(
      `SELECT e.position, e.stream, e.revision, e.json, e.prev_hash, e.hash FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ?`,
    );
    const both = opts.device !== undefined && opts.group !== undefined ? [opts.host, groupKey(opts.group)] : [];
    let after = opts.after ?? 0n;
    return pages(
      (limit) => stmt.all(...params, after, ...both, limit),
      (last) => (after = last.position),
      opts.maxCount,
    );
  };

  // --- subscriptions ---
  const subscribe = async (opts: SubscribeOptions): Promise<Subscription> => {
    assertWritable();
    if (!opts.subscriberName) throw new ValidationError('subscriberName: must not be empty', [{ path: 'subscriberName', message: 'must not be empty' }]);
    const batchSize = opts.batchSize ?? 500;
    let position = q.checkpoint.get(opts.subscriberName)?.position ?? opts.fromPosition ?? 0n;
    let stopped = false;
    let failure: { error: unknown } | undefined;
    let wake: (() => void) | undefined;
    const waker = (): void => wake?.();
    wakers.add(waker);
    const sleep = (): Promise<void> =>
      new Promise((resolve) => {
        const t = setTimeout(done, pollIntervalMs);
        function done(): void {
          clearTimeout(t);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    const loop = async (): Promise<void> => {
      let caughtUp = false;
      while (!stopped && !closed) {
        const rows = q.readAll.all(position, batchSize);
        if (rows.length > 0) {
          const batch = rows.map(decode);
          try {
            await opts.handle(batch);
          } catch (error) {
            failure = { error };
            stopped = true;
            opts.onError?.(error);
            return;
          }
          position = rows.at(-1)!.position;
          if (!closed) q.saveCheckpoint!.run(opts.subscriberName, position);
          continue;
        }
        if (!caughtUp) {
          caughtUp = true;
          opts.onCaughtUp?.();
        }
        await sleep();
      }
    };
    const running = loop().finally(() => wakers.delete(waker));
    return {
      position: () => position,
      stop: async () => {
        stopped = true;
        wake?.();
        await running;
        if (failure) throw failure.error;
      },
    };
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    if (queue.length > 0) flush();
    if (!readOnly && keys) {
      try {
        sealNow();
      } catch {
        // sealing is best effort at close; the next open seals again
      }
    }
    closed = true;
    appendListeners.clear();
    if (sealTimer) clearTimeout(sealTimer);
    for (const wake of wakers) wake();
    db.close();
  };

  const store: SqliteEventStore = {
    path: options.path,
    durability,
    db,
    appendToStream,
    readStream,
    readAll,
    readByIndex,
    subscribe,
    headPosition: () => Promise.resolve(q.head.get()?.head ?? 0n),
    onAppended: (listener) => {
      appendListeners.add(listener);
      return () => appendListeners.delete(listener);
    },
    seal: () => {
      assertWritable();
      return sealNow();
    },
    publicKeyPem: () => (keys ? publicKeyPem(keys.publicKey) : undefined),
    close,
    [Symbol.asyncDispose]: close,
  };
  return store;
};
