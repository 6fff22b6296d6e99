import type { IommuEvent } from '../../schemas/index.js';
import type { FleetProjection } from '../fleetProjection.js';
import { fromSnapshot, toSnapshot, type FleetSnapshot } from '../snapshots.js';
import { foldEvents, type AsOf, type FoldInput } from '../timeTravel.js';
import type { FleetState, GroupState } from '../types.js';

/**
 * Test helpers over the one time-travel fold (`createFolder` in projections/timeTravel.ts, the path `?at=` takes
 * in serve): a state as of a point from a snapshot plus the events after it, and an in-memory snapshotter to
 * take those snapshots. Production never folds this way: the live projection keeps its own checkpoints.
 */
export interface StateAsOfOptions {
  readonly at: AsOf;
  /** the newest snapshot at or before `at`; `events` are then the ones after it */
  readonly snapshot?: FleetSnapshot | null;
  readonly events: Iterable<FoldInput>;
}

/** the fleet state as of `at`: snapshot (copied, never mutated) plus the events after it, up to `at` */
export const stateAsOf = (projection: FleetProjection, options: StateAsOfOptions): FleetState =>
  foldEvents(projection, options.events, {
    state: options.snapshot ? fromSnapshot(options.snapshot) : projection.initialState(),
    until: options.at,
  });

export interface SnapshotterOptions {
  /** take a snapshot after every N events @defaultValue 10_000 */
  readonly every?: number;
  /** keep at most this many snapshots, thinning older ones @defaultValue 1_000 */
  readonly keep?: number;
}

export interface Snapshotter {
  /** the live state (mutated by `apply`) */
  readonly state: FleetState;
  apply(event: IommuEvent, position?: bigint): void;
  /** snapshots taken so far, oldest first */
  readonly snapshots: readonly FleetSnapshot[];
  /** the newest snapshot at or before `at`, or null: fold from the start */
  snapshotBefore(at: AsOf): FleetSnapshot | null;
}

/** folds and keeps a serialisable snapshot every N events (memory: `keep` snapshots of live state) */
export const createSnapshotter = (projection: FleetProjection, options: SnapshotterOptions = {}): Snapshotter => {
  const every = options.every ?? 10_000;
  const keep = options.keep ?? 1_000;
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`snapshotter: every must be a positive integer, got ${every}`);
  let state = projection.initialState();
  const snapshots: FleetSnapshot[] = [];
  let sinceLast = 0;
  return {
    get state() {
      return state;
    },
    apply(event, position) {
      state = projection.evolve(state, event, position);
      if (++sinceLast >= every) {
        sinceLast = 0;
        snapshots.push(toSnapshot(state));
        // thin: drop every other snapshot of the older half, so coverage stays spread over the history
        if (snapshots.length > keep) for (let i = 1; i < snapshots.length / 2; i++) snapshots.splice(i, 1);
      }
    },
    snapshots,
    snapshotBefore(at) {
      for (let i = snapshots.length - 1; i >= 0; i--) {
        const s = snapshots[i]!;
        const ok = 'position' in at ? s.position !== null && BigInt(s.position) <= at.position : s.timeNs !== null && BigInt(s.timeNs) <= at.timeNs;
        if (ok) return s;
      }
      return null;
    },
  };
};

export const selectGroup = (state: FleetState, host: string, group: number): GroupState | undefined => state.hosts[host]?.groups[group];
