import type { IommuEvent, RecordedEvent } from '../schemas/index.js';
import type { FleetProjection } from './fleetProjection.js';
import { fromSnapshot, toSnapshot, type FleetSnapshot } from './snapshots.js';
import type { EventRef, FleetState, GroupState, HostState, Violation } from './types.js';

/** a point in the history: a store position (inclusive) or a wall-clock time in ns (inclusive) */
export type AsOf = { readonly position: bigint } | { readonly timeNs: bigint };

/** what the folds accept: a bare event (tests, files) or a recorded one with its store position */
export type FoldInput = IommuEvent | RecordedEvent;

const isRecorded = (x: FoldInput): x is RecordedEvent => 'globalPosition' in x;

// decimal strings without leading zeros compare by length, then lexically: no bigint per event
const compareDecimal = (a: string, b: string): number => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0);

const within = (event: IommuEvent, position: bigint | undefined, at: AsOf, atText: string): boolean =>
  'position' in at ? position === undefined || position <= at.position : compareDecimal(event.time, atText) <= 0;

/** true when the event a ref names is at or before `at` (by position when both have one, else by time) */
export const isAtOrBefore = (ref: EventRef, at: AsOf): boolean => {
  if ('position' in at) return ref.position === undefined ? true : BigInt(ref.position) <= at.position;
  return compareDecimal(ref.timeNs, at.timeNs.toString()) <= 0;
};

export interface FoldOptions {
  /** fold on this state (mutated in place) instead of a fresh one */
  readonly state?: FleetState;
  /** stop at this point: events after it are skipped */
  readonly until?: AsOf;
}

/** one folding step per input; `false` once a position bound is passed (the rest can be skipped) */
const createFolder = (projection: FleetProjection, options: FoldOptions) => {
  let state = options.state ?? projection.initialState();
  const until = options.until;
  const untilText = until && 'timeNs' in until ? until.timeNs.toString() : '';
  return {
    step(item: FoldInput): boolean {
      const event = isRecorded(item) ? item.event : item;
      const position = isRecorded(item) ? item.globalPosition : undefined;
      if (until && !within(event, position, until, untilText)) return !('position' in until);
      state = projection.evolve(state, event, position);
      return true;
    },
    get state() {
      return state;
    },
  };
};

/**
 * Folds events in order. With `until` as a position, folding stops at the first event past it (store
 * order is position order); as a time, events later than it are skipped but the scan goes on, since
 * hosts' clocks interleave.
 */
export const foldEvents = (projection: FleetProjection, events: Iterable<FoldInput>, options: FoldOptions = {}): FleetState => {
  const folder = createFolder(projection, options);
  for (const item of events) if (!folder.step(item)) break;
  return folder.state;
};

/** {@link foldEvents} over an async source such as an event store read */
export const foldEventsAsync = async (
  projection: FleetProjection,
  events: AsyncIterable<FoldInput> | Iterable<FoldInput>,
  options: FoldOptions = {},
): Promise<FleetState> => {
  const folder = createFolder(projection, options);
  for await (const item of events) if (!folder.step(item)) break;
  return folder.state;
};

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

export const stateAsOfAsync = (
  projection: FleetProjection,
  options: Omit<StateAsOfOptions, 'events'> & { readonly events: AsyncIterable<FoldInput> | Iterable<FoldInput> },
): Promise<FleetState> =>
  foldEventsAsync(projection, options.events, {
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
        const ok = 'position' in at ? s.position !== null && BigInt(s.position) <= at.position : s.timeNs !== null && compareDecimal(s.timeNs, at.timeNs.toString()) <= 0;
        if (ok) return s;
      }
      return null;
    },
  };
};

export const selectHost = (state: FleetState, host: string): HostState | undefined => state.hosts[host];

export const selectGroup = (state: FleetState, host: string, group: number): GroupState | undefined => state.hosts[host]?.groups[group];

/**
 * Violations open at `at`, from the intervals a later state recorded: opened at or before `at` and not
 * closed by then. Works on any state that has folded past `at` (closed ones dropped by the bound aside).
 */
export const violationsAt = (state: FleetState, at: AsOf, filter: { host?: string; group?: number } = {}): Violation[] => {
  const out: Violation[] = [];
  const consider = (v: Violation): void => {
    if (filter.host !== undefined && v.host !== filter.host) return;
    if (filter.group !== undefined && v.group !== filter.group) return;
    if (isAtOrBefore(v.opened, at) && (v.closed === undefined || !isAtOrBefore(v.closed, at))) out.push(v);
  };
  for (const v of state.violations.closed) consider(v);
  for (const v of Object.values(state.violations.open)) consider(v);
  return out;
};
