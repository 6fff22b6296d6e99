import type { Database } from 'better-sqlite3';
import { IllegalStateError } from '../../../../schemas/index.js';

/**
 * Versioned schema, tracked in SQLite's `user_version`. Append only: never edit a shipped step, add the next.
 * Each step runs in its own transaction with the version bump.
 */
const MIGRATIONS: readonly string[] = [
  // v1
  `
  CREATE TABLE events (
    position  INTEGER PRIMARY KEY,         -- global position, commit order, 1-based
    id        TEXT    NOT NULL UNIQUE,     -- catalogue event id: idempotency key
    stream    TEXT    NOT NULL,
    revision  INTEGER NOT NULL,            -- 0-based inside the stream
    type      TEXT    NOT NULL,
    time_ns   INTEGER NOT NULL,
    json      TEXT    NOT NULL,            -- RFC 8785 canonical JSON of the parsed event: the hashed bytes
    prev_hash BLOB    NOT NULL,            -- chain hash of the previous event (genesis for revision 0)
    hash      BLOB    NOT NULL,            -- sha256(prev_hash || sha256(json))
    UNIQUE (stream, revision)
  );
  CREATE INDEX events_stream_time ON events (stream, time_ns);
  CREATE TABLE streams (
    name     TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    position INTEGER NOT NULL,
    hash     BLOB    NOT NULL
  ) WITHOUT ROWID;
  -- secondary index: one row per (host, group or device key) an event touches
  CREATE TABLE event_index (
    host     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (host, key, position)
  ) WITHOUT ROWID;
  -- which group each device of a host is in, as of the last appended event: device-only events are indexed
  -- under that group too
  CREATE TABLE device_groups (
    host   TEXT    NOT NULL,
    device TEXT    NOT NULL,
    grp    INTEGER NOT NULL,
    PRIMARY KEY (host, device)
  ) WITHOUT ROWID;
  CREATE TABLE checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE seals (
    id        INTEGER PRIMARY KEY,
    payload   TEXT NOT NULL,
    signature TEXT NOT NULL
  );
  `,
  // v2: index rows keyed by a small integer per (host, key): a third of the bytes and integer compares
  `
  CREATE TABLE index_keys (
    id   INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    key  TEXT NOT NULL,
    UNIQUE (host, key)
  );
  CREATE TABLE event_index_v2 (
    key_id   INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (key_id, position)
  ) WITHOUT ROWID;
  INSERT INTO index_keys (host, key) SELECT DISTINCT host, key FROM event_index;
  INSERT INTO event_index_v2 (key_id, position)
    SELECT k.id, i.position FROM event_index i JOIN index_keys k ON k.host = i.host AND k.key = i.key;
  DROP TABLE event_index;
  ALTER TABLE event_index_v2 RENAME TO event_index;
  `,
  // v3: the transparency log (tamper/tlogStore.ts): Merkle subtree hashes, signed checkpoints, the log's origin;
  // the tree of an older store is built once at its next writable open
  `
  CREATE TABLE tlog_hashes (
    id   INTEGER PRIMARY KEY,              -- Go sumdb/tlog stored-hash index of the run's first hash
    hash BLOB    NOT NULL                  -- a run of consecutive stored hashes, 32 bytes each
  );
  CREATE TABLE tlog_checkpoints (
    size INTEGER PRIMARY KEY,              -- tree size the checkpoint covers
    note TEXT    NOT NULL                  -- C2SP signed note
  );
  CREATE TABLE tlog_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  // v4: a CRC-32 of each event's stored bytes, written with the row: a read trusts a row whose bytes still match
  // it without hashing them twice (sqliteEventStore.ts, "trusted rows"); rows from before it have none (NULL)
  // and are checked against their chain hash as before
  `
  ALTER TABLE events ADD COLUMN crc INTEGER;
  `,
  // v5 (issue 23): incremental seals list the streams whose head moved since the previous seal's position:
  // found through this index in time proportional to them, not to the number of streams
  `
  CREATE INDEX IF NOT EXISTS streams_position ON streams (position);
  `,
  // v6 (issue 23): no stream head table. Each stream's head is its last event, read through the
  // (stream, revision) key; the heads a seal lists, from the events after the previous seal's position. Keeping
  // a head row per stream rewrote one row and one index entry per host of every append: at 1e5 hosts, a page
  // of each scattered over the table and its index for nearly every host appended, more pages written than
  // the events' own
  `
  DROP INDEX IF EXISTS streams_position;
  DROP TABLE streams;
  `,
];

/** the version whose rows carry a row check (`events.crc`) */
export const ROW_CHECK_VERSION = 4;

/** the oldest schema a read-only open reads: v4 only added a column that reads do without */
export const READ_ONLY_MIN_VERSION = 3;

export const SCHEMA_VERSION = MIGRATIONS.length;

/** brings the file to `target` (the current version unless a test asks for an older one) */
export const migrate = (db: Database, target = SCHEMA_VERSION): void => {
  const current = db.pragma('user_version', { simple: true }) as number | bigint;
  const from = Number(current);
  if (from > SCHEMA_VERSION) {
    throw new IllegalStateError(`store schema v${from} is newer than this build (v${SCHEMA_VERSION}): upgrade iommutrail`);
  }
  for (let v = from; v < target; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
};
