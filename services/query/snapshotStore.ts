import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { FleetSnapshot } from '../../projections/index.js';

/**
 * Per-host projection snapshots on disk (<dataDir>/projections.sqlite): what makes `?at=` cost a snapshot
 * load plus a short fold, and a restart cost a load plus the tail of the log. The store of record stays
 * the event store: this file can be deleted and is rebuilt from it.
 */
export interface HostSnapshotRow {
  readonly host: string;
  /** global position of the last event folded into it */
  readonly position: bigint;
  /** stream revision (0-based) of that event in the host's stream */
  readonly revision: bigint;
  readonly timeNs: bigint;
  readonly snapshot: FleetSnapshot;
}

export const openSnapshotStore = (dataDir: string) => {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'projections.sqlite'));
  db.pragma('journal_mode = WAL');
  // snapshots are derived data: a crash may lose the last ones, never the events they come from
  db.pragma('synchronous = NORMAL');
  db.defaultSafeIntegers(true);
  db.exec(`
    CREATE TABLE IF NOT EXISTS host_snapshots (
      host TEXT NOT NULL, position INTEGER NOT NULL, revision INTEGER NOT NULL, time_ns INTEGER NOT NULL,
      state TEXT NOT NULL, PRIMARY KEY (host, position)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS host_snapshots_time ON host_snapshots (host, time_ns);
    CREATE TABLE IF NOT EXISTS live_marker (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, format TEXT NOT NULL);
  `);
  const insert = db.prepare('INSERT OR REPLACE INTO host_snapshots (host, position, revision, time_ns, state) VALUES (?, ?, ?, ?, ?)');
  const byPosition = db.prepare('SELECT * FROM host_snapshots WHERE host = ? AND position <= ? ORDER BY position DESC LIMIT 1');
  const byTime = db.prepare('SELECT * FROM host_snapshots WHERE host = ? AND time_ns <= ? ORDER BY time_ns DESC, position DESC LIMIT 1');
  const latestAtOrBefore = db.prepare(
    'SELECT s.* FROM host_snapshots s JOIN (SELECT host, MAX(position) AS p FROM host_snapshots WHERE position <= ? GROUP BY host) m ON s.host = m.host AND s.position = m.p',
  );
  const readMarker = db.prepare('SELECT position, format FROM live_marker WHERE id = 1');
  const writeMarker = db.prepare('INSERT OR REPLACE INTO live_marker (id, position, format) VALUES (1, ?, ?)');
  const dropAfter = db.prepare('DELETE FROM host_snapshots WHERE position > ?');

  type Row = { host: string; position: bigint; revision: bigint; time_ns: bigint; state: string };
  const toRow = (r: Row | undefined): HostSnapshotRow | undefined =>
    r && { host: r.host, position: r.position, revision: r.revision, timeNs: r.time_ns, snapshot: JSON.parse(r.state) as FleetSnapshot };

  return {
    /** writes snapshots and (optionally) the live marker in one transaction */
    save: db.transaction((rows: readonly HostSnapshotRow[], marker?: { position: bigint; format: string }) => {
      for (const r of rows) insert.run(r.host, r.position, r.revision, r.timeNs, JSON.stringify(r.snapshot));
      if (marker) writeMarker.run(marker.position, marker.format);
    }),
    beforePosition: (host: string, position: bigint) => toRow(byPosition.get(host, position) as Row | undefined),
    beforeTime: (host: string, timeNs: bigint) => toRow(byTime.get(host, timeNs) as Row | undefined),
    marker: () => readMarker.get() as { position: bigint; format: string } | undefined,
    /** every host's newest snapshot at or before the marker; later ones are dropped (they will be re-made) */
    restoreAt: (position: bigint): HostSnapshotRow[] => {
      dropAfter.run(position);
      return (latestAtOrBefore.all(position) as Row[]).map((r) => toRow(r)!);
    },
    /** forget everything (the projection format changed): rebuilt from the event store */
    reset: () => db.exec('DELETE FROM host_snapshots; DELETE FROM live_marker;'),
    close: () => db.close(),
  };
};
export type SnapshotStore = ReturnType<typeof openSnapshotStore>;
