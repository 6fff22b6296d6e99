import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { FleetSnapshot } from '../../../projections/index.js';

/**
 * Per-host projection snapshots on disk (<dataDir>/projections.sqlite): what makes `?at=` cost a snapshot
 * load plus a short fold, and a restart cost a load plus the tail of the log. The store of record stays
 * the event store: this file is derived, is rebuilt from it when it is missing, corrupt, of another
 * format or from another store, and stays bounded:
 * - one checkpoint per host (the live state at the last checkpoint, replaced each time: the restart point);
 * - at most `keepPerHost` history snapshots per host, one every N of its events (`?at=` folds at most N
 *   events until a host has more; then older ones are thinned, every other one from the oldest on).
 */
export interface HostSnapshotRow {
  readonly host: string;
  /** global position of the last event folded into it */
  readonly position: bigint;
  /** stream revision (0-based) of that event in the host's stream */
  readonly revision: bigint;
  /** time of that event (the host's last event folded), ns */
  readonly timeNs: bigint;
  /** the snapshot, or its JSON text (written as is) */
  readonly snapshot: FleetSnapshot | string;
}

/**
 * The checkpoints as a restart lists them, states left on disk: every host's name, and the open violations
 * (JSON: rule and severity by key) of the few hosts with something open. A restart's cost is the JS values it
 * makes per host (SQLite's scan is cheap): a name, not five columns (three of them BigInts); where a host
 * stands is read with its state, or alone ({@link SnapshotStore.standingOf}), when it is used.
 */
export interface CheckpointIndex {
  readonly hosts: readonly string[];
  readonly open: readonly (readonly [host: string, open: string])[];
}

/** where a host's checkpoint stands: its last event folded */
export interface Standing {
  readonly position: bigint;
  readonly revision: bigint;
  readonly timeNs: bigint;
}

/** a checkpoint row: a snapshot and the summary of its open violations (JSON: rule and severity by key) */
export type CheckpointRow = HostSnapshotRow & { readonly open: string };

export interface LiveMarker {
  /** the global position the checkpoints were taken at */
  readonly position: bigint;
  /** the projection format they were made with */
  readonly format: string;
  /** the event store they were folded from (its first event), null while it was empty */
  readonly storeId: string | null;
}

export interface SnapshotStoreOptions {
  readonly logger?: Logger;
  /** history snapshots kept per host @defaultValue 2_000 (with a snapshot every 500 events: a million events of a host) */
  readonly keepPerHost?: number;
  /** the clock, for the name of a corrupt file moved aside @defaultValue () => new Date() */
  readonly now?: () => Date;
}

/**
 * Host states a checkpoint writes per transaction (issue 23): one transaction of every dirty host held the
 * whole checkpoint in the WAL (524 MB at 1e5 hosts) until it committed; in transactions of this many rows the
 * WAL is copied back and reused between them, so it stays at a few MiB whatever the number of hosts
 */
export const CHECKPOINT_ROWS_PER_TRANSACTION = 256;

/** the layout of this file; another one is dropped and rebuilt (derived data) */
const SCHEMA_VERSION = 4;

const SCHEMA = `
  -- narrow rows: a restart reads all of them; the states, read per host as used, live apart
  CREATE TABLE IF NOT EXISTS host_checkpoints (
    host TEXT PRIMARY KEY, position INTEGER NOT NULL, revision INTEGER NOT NULL, time_ns INTEGER NOT NULL, open TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS host_states (host TEXT PRIMARY KEY, state TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS host_snapshots (
    host TEXT NOT NULL, position INTEGER NOT NULL, revision INTEGER NOT NULL, time_ns INTEGER NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (host, position));
  CREATE INDEX IF NOT EXISTS host_snapshots_position ON host_snapshots (position);
  CREATE TABLE IF NOT EXISTS live_marker (
    id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, format TEXT NOT NULL, store_id TEXT);
`;

const isCorruption = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(CORRUPT|NOTADB)/.test(code);
};

type Row = { host: string; position: bigint; revision: bigint; time_ns: bigint };
type StateRow = Row & { state: string };

export const openSnapshotStore = (dataDir: string, options: SnapshotStoreOptions = {}) => {
  const { logger } = options;
  const keep = Math.max(2, options.keepPerHost ?? 2_000);
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'projections.sqlite');

  const openDb = () => {
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      // snapshots are derived data: a crash may lose the last ones, never the events they come from
      db.pragma('synchronous = NORMAL');
      // a checkpoint of every host is one large transaction: do not keep its WAL's size afterwards
      db.pragma('journal_size_limit = 4194304');
      db.defaultSafeIntegers(true);
      const version = Number(db.pragma('user_version', { simple: true }));
      if (version !== SCHEMA_VERSION) {
        const old = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: bigint };
        if (old.n > 0n) logger?.warn({ file, version }, 'projection snapshots of another layout: dropped, rebuilt from the event store');
        db.exec('DROP TABLE IF EXISTS host_snapshots; DROP TABLE IF EXISTS host_checkpoints; DROP TABLE IF EXISTS host_states; DROP TABLE IF EXISTS live_marker;');
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }
      // a file whose pages are garbage can still open: read the marker so such a file fails here
      db.prepare('SELECT position FROM live_marker WHERE id = 1').get();
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  };

  /** a corrupt derived file is moved aside (kept for a post-mortem), never deleted and never fatal */
  const moveAside = (cause: unknown): void => {
    const aside = `${file}.corrupt-${(options.now?.() ?? new Date()).toISOString().replace(/[:.]/g, '-')}`;
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
    logger?.warn({ file, movedTo: aside, err: cause }, 'projection snapshots are corrupt: moved aside, rebuilding from the event store');
  };

  const openOrRecover = () => {
    try {
      return openDb();
    } catch (e) {
      if (!isCorruption(e)) throw e;
      moveAside(e);
      return openDb();
    }
  };

  const prepare = (db: Database.Database) => ({
    db,
    // a host's rows updated in place: REPLACE deleted each row (its state's overflow pages freed, its index
    // entry removed) and inserted it again, once per host per checkpoint (0.61x of the CPU as an upsert)
    checkpoint: db.prepare(
      'INSERT INTO host_checkpoints (host, position, revision, time_ns, open) VALUES (?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET position = excluded.position, revision = excluded.revision, time_ns = excluded.time_ns, open = excluded.open',
    ),
    checkpointStateOf: db.prepare('INSERT INTO host_states (host, state) VALUES (?, ?) ON CONFLICT (host) DO UPDATE SET state = excluded.state'),
    history: db.prepare('INSERT OR REPLACE INTO host_snapshots (host, position, revision, time_ns, state) VALUES (?, ?, ?, ?, ?)'),
    historyPositions: db.prepare('SELECT position FROM host_snapshots WHERE host = ? ORDER BY position'),
    dropHistory: db.prepare('DELETE FROM host_snapshots WHERE host = ? AND position = ?'),
    // history past the marker, except a host's up to its own checkpoint (written after the marker's: see saveCheckpoints)
    dropHistoryAfter: db.prepare(
      'DELETE FROM host_snapshots WHERE position > ? AND position > coalesce((SELECT c.position FROM host_checkpoints c WHERE c.host = host_snapshots.host), 0)',
    ),
    checkpointAtPosition: db.prepare('SELECT host, position, revision, time_ns FROM host_checkpoints WHERE host = ? AND position <= ?'),
    historyAtPosition: db.prepare('SELECT host, position, revision, time_ns FROM host_snapshots WHERE host = ? AND position <= ? ORDER BY position DESC LIMIT 1'),
    historyAfterPosition: db.prepare('SELECT position, revision FROM host_snapshots WHERE host = ? AND position > ? ORDER BY position LIMIT 1'),
    checkpointAtTime: db.prepare('SELECT host, position, revision, time_ns FROM host_checkpoints WHERE host = ? AND time_ns <= ?'),
    // any snapshot whose last event is dated ≤ T lies before the state at T (projections AsOf): the newest
    historyAtTime: db.prepare('SELECT host, position, revision, time_ns FROM host_snapshots WHERE host = ? AND time_ns <= ? ORDER BY position DESC LIMIT 1'),
    checkpointState: db.prepare('SELECT s.state FROM host_checkpoints c JOIN host_states s ON s.host = c.host WHERE c.host = ? AND c.position = ?'),
    historyState: db.prepare('SELECT state FROM host_snapshots WHERE host = ? AND position = ?'),
    checkpointHosts: db.prepare('SELECT host FROM host_checkpoints').pluck(),
    checkpointOpen: db.prepare("SELECT host, open FROM host_checkpoints WHERE open <> '{}'").raw(),
    standing: db.prepare('SELECT position, revision, time_ns FROM host_checkpoints WHERE host = ?'),
    hostCheckpoint: db.prepare('SELECT c.host, c.position, c.revision, c.time_ns, s.state FROM host_checkpoints c JOIN host_states s ON s.host = c.host WHERE c.host = ?'),
    readMarker: db.prepare('SELECT position, format, store_id FROM live_marker WHERE id = 1'),
    writeMarker: db.prepare('INSERT OR REPLACE INTO live_marker (id, position, format, store_id) VALUES (1, ?, ?, ?)'),
  });
  let s = prepare(openOrRecover());

  const jsonOf = (r: HostSnapshotRow): string => (typeof r.snapshot === 'string' ? r.snapshot : JSON.stringify(r.snapshot));
  const toRow = (r: StateRow): HostSnapshotRow => ({
    host: r.host,
    position: r.position,
    revision: r.revision,
    timeNs: r.time_ns,
    snapshot: JSON.parse(r.state) as FleetSnapshot,
  });

  /** history beyond `keep` for one host: every other one from the oldest on goes, so coverage stays spread */
  const thin = (host: string): void => {
    let positions = (s.historyPositions.all(host) as { position: bigint }[]).map((r) => r.position);
    while (positions.length > keep) {
      const kept: bigint[] = [];
      let excess = positions.length - keep;
      positions.forEach((p, i) => {
        // odd ones from the oldest on, never the newest
        if (excess > 0 && i % 2 === 1 && i < positions.length - 1) {
          s.dropHistory.run(host, p);
          excess--;
        } else kept.push(p);
      });
      positions = kept;
    }
  };

  /** the newer of a host's checkpoint and history snapshot matching, with its state */
  const newest = (cp: Row | undefined, hist: Row | undefined): HostSnapshotRow | undefined => {
    const useCp = cp !== undefined && (hist === undefined || cp.position >= hist.position);
    const pick = useCp ? cp : hist;
    if (!pick) return undefined;
    const st = (useCp ? s.checkpointState : s.historyState).get(pick.host, pick.position) as { state: string } | undefined;
    return st && toRow({ ...pick, state: st.state });
  };

  /**
   * `rows` is taken one row at a time: a caller that makes each row as it is asked for (its state's JSON) holds
   * one state's text at a time, not every dirty host's at once (issue 23: ~0.5 GB at 1e5 hosts). They are
   * written {@link CHECKPOINT_ROWS_PER_TRANSACTION} at a time, each batch its own transaction, the marker with
   * the last: a crash in between leaves some hosts' rows newer than the marker, which a restart reads as they
   * are (each row says where its host stands; the fold passes over the events a host's row already holds).
   * Without a marker, the rows alone: hosts let go between checkpoints, their rows ahead of the marker.
   */
  const saveCheckpoints = (rows: Iterable<CheckpointRow>, marker?: LiveMarker): void => {
    const it = rows[Symbol.iterator]();
    let next = it.next();
    const writeSome = s.db.transaction(() => {
      for (let n = 0; n < CHECKPOINT_ROWS_PER_TRANSACTION && !next.done; n++, next = it.next()) {
        const r = next.value;
        s.checkpoint.run(r.host, r.position, r.revision, r.timeNs, r.open);
        s.checkpointStateOf.run(r.host, jsonOf(r));
      }
      if (next.done && marker !== undefined) s.writeMarker.run(marker.position, marker.format, marker.storeId);
    });
    do writeSome();
    while (!next.done);
  };

  const saveHistory = (rows: readonly HostSnapshotRow[]): void => {
    s.db.transaction(() => {
      for (const r of rows) s.history.run(r.host, r.position, r.revision, r.timeNs, jsonOf(r));
      for (const host of new Set(rows.map((r) => r.host))) thin(host);
    })();
  };

  return {
    file,
    /** the live state of these hosts (one row per host, replacing the last) and the marker when given, with the last rows */
    saveCheckpoints,
    /** history snapshots (time travel), thinned to `keepPerHost` per host */
    saveHistory,
    beforePosition: (host: string, position: bigint): HostSnapshotRow | undefined =>
      newest(s.checkpointAtPosition.get(host, position) as Row | undefined, s.historyAtPosition.get(host, position) as Row | undefined),
    /**
     * Where the host's first history snapshot after `position` stands (no state read): its event is the host's
     * first known one past that position, so every event of the host at or before it has a lower revision
     */
    after: (host: string, position: bigint): { readonly position: bigint; readonly revision: bigint } | undefined =>
      s.historyAfterPosition.get(host, position) as { position: bigint; revision: bigint } | undefined,
    /** the newest snapshot whose last event is dated at or before `timeNs`: a start for the state at that time */
    beforeTime: (host: string, timeNs: bigint): HostSnapshotRow | undefined =>
      newest(s.checkpointAtTime.get(host, timeNs) as Row | undefined, s.historyAtTime.get(host, timeNs) as Row | undefined),
    marker: (): LiveMarker | undefined => {
      const m = s.readMarker.get() as { position: bigint; format: string; store_id: string | null } | undefined;
      return m && { position: m.position, format: m.format, storeId: m.store_id };
    },
    /**
     * Every host with a checkpoint, by name, and the open violations of those with some (a restart reads states
     * as hosts are used: its cost follows the number of hosts, one name each, not the size of their states);
     * history after the marker is dropped (it will be re-made), except a host's up to its own checkpoint. A
     * host's checkpoint may stand past the marker (a checkpoint cut short between two of its transactions).
     */
    restoreIndexAt: (position: bigint): CheckpointIndex => {
      s.dropHistoryAfter.run(position);
      return { hosts: s.checkpointHosts.all() as string[], open: s.checkpointOpen.all() as [string, string][] };
    },
    /** where a host's checkpoint stands (no state read), undefined when it has none */
    standingOf: (host: string): Standing | undefined => {
      const r = s.standing.get(host) as { position: bigint; revision: bigint; time_ns: bigint } | undefined;
      return r && { position: r.position, revision: r.revision, timeNs: r.time_ns };
    },
    /** a host's checkpoint with its state (parsed), undefined when it has none */
    checkpointOf: (host: string): HostSnapshotRow | undefined => {
      const r = s.hostCheckpoint.get(host) as StateRow | undefined;
      return r && toRow(r);
    },
    /** forget everything (another format, another store): rebuilt from the event store */
    reset: () => s.db.exec('DELETE FROM host_snapshots; DELETE FROM host_checkpoints; DELETE FROM host_states; DELETE FROM live_marker;'),
    /** corruption found after opening: move the file aside and start an empty one */
    recoverFromCorruption: (cause: unknown): void => {
      try {
        s.db.close();
      } catch {
        // a corrupt file may fail to close cleanly; it is moved aside either way
      }
      moveAside(cause);
      s = prepare(openDb());
    },
    isCorruption,
    close: () => s.db.close(),
  };
};
export type SnapshotStore = ReturnType<typeof openSnapshotStore>;
