import type { Logger } from 'pino';
import {
  clockStepsAcross,
  createFleetProjection,
  createFolder,
  fromSnapshot,
  lastClockReturn,
  toSnapshotJson,
  type AsOf,
  type ChangedGroups,
  type ClockStep,
  type FleetProjection,
  type FleetProjectionOptions,
  type FleetState,
  type HostState,
  type Violation,
} from '../../../projections/index.js';
import { hostOfStream, hostStreamName, type RecordedEvent } from '../../../schemas/index.js';
import type { EventStore, ReadStreamOptions } from '../../shared/eventStore/eventStore.js';
import type { SequenceWatch } from '../../shared/ingest/ingestService.js';
import type { CheckpointRow, HostSnapshotRow, LiveMarker, SnapshotStore } from './snapshotStore.js';

export interface LiveProjectionOptions {
  readonly store: EventStore;
  readonly snapshots: SnapshotStore;
  readonly projection?: FleetProjectionOptions;
  /** the fold itself, for tests that need a failing one @defaultValue createFleetProjection(projection) */
  readonly fold?: FleetProjection;
  /**
   * a snapshot of a host after every N of its events: `?at=` folds at most N events (500 events fold in a few ms;
   * a snapshot is a few KB) @defaultValue 500
   */
  readonly snapshotEvery?: number;
  /** how often to look for events appended by other processes (a Kafka consumer) @defaultValue 500 */
  readonly pollMs?: number;
  /**
   * how often the live state is checkpointed for a fast restart, at the soonest @defaultValue 10_000. A
   * checkpoint writes every host folded since the last one, so it also waits until at least
   * {@link EVENTS_PER_STATE_WRITE} events per host it would write were folded (a fleet whose hosts each got one
   * event would otherwise write a state per event), until nothing was folded for {@link QUIET_MS}, or for at
   * most {@link MAX_CHECKPOINT_DELAY_MS}.
   */
  readonly checkpointMs?: number;
  /**
   * host states kept in memory; beyond it, after each batch folded and each checkpoint, the least recently used
   * hosts go back to disk (read again on their next use), a host folded since the last checkpoint with its row
   * written first: memory follows the hosts in use, not the fleet, between checkpoints too @defaultValue 100_000
   * (a fleet of 1e5 hosts fits: about 7 KB of heap per host state)
   */
  readonly maxResidentHosts?: number;
  /** the clock of the checkpoint's timing, ms (tests) @defaultValue Date.now */
  readonly now?: () => number;
  readonly logger?: Logger;
  /** called after each applied batch, with the events in it (metrics, analytics) */
  readonly onApplied?: (batch: readonly RecordedEvent[]) => void;
  /** a sequence fact as the fold found it, whoever stored the event: a gap opened, an event out of seq order (metrics) */
  readonly onSequence?: (host: string, kind: 'gap' | 'out-of-order') => void;
}

/**
 * Told of every event as the live projection folds it (analytics: each event folded once): `state` holds the
 * event's host after it, `opened` and `closed` the violations the event opened and closed, `changed` the groups
 * of the host the fold reports the event may have changed (see the fleet projection's evolve), undefined when
 * any may have (the fold threw on the event). Synchronous, in store order; the arrays are reused after the call
 * returns, and a follower may reorder `changed.groups`.
 */
export type FoldFollower = (
  recorded: RecordedEvent,
  state: FleetState,
  opened: readonly Violation[],
  closed: readonly Violation[],
  changed: ChangedGroups | undefined,
) => void;

/** told of every event just before the live projection folds it: `state` holds the event's host before it (read only) */
export type FoldWatcher = (recorded: RecordedEvent, state: FleetState) => void;

/**
 * Closed violations each host's state keeps (issue 23): a host state is folded for years, so its list of closed
 * violations must be bounded per host, not per fleet. Older ones stay readable: `GET /v1/violations?at=` folds
 * the host from a snapshot up to that time, the analytics `violations` table holds every one, and the host's
 * events replay them (`/v1/hosts/{host}/replay`). `closedDropped` counts what the bound dropped. Sized for
 * memory: a closed violation is ~670 B of state, the rest of a small host ~7 KB, so 20 keep a host under
 * ~21 KB (2 GiB for 1e5 hosts) however long its history.
 */
export const DEFAULT_CLOSED_VIOLATIONS_PER_HOST = 20;

/** a checkpoint writes at most one host state per this many events folded since the last one (unless idle) */
export const EVENTS_PER_STATE_WRITE = 4;
/** a checkpoint counts the ingest as paused once nothing was folded for this long (ms) */
export const QUIET_MS = 1_000;
/**
 * while events keep coming, a checkpoint waits at least this many times what the last one cost (its writes
 * stop the fold): checkpoints take at most about 1/this of the ingest's time, whatever the number of hosts
 * each writes (issue 23: at 1e4 hosts and more, a checkpoint of the hosts touched in 10 s took seconds)
 */
export const CHECKPOINT_COST_SHARE = 20;
/** the longest a checkpoint waits for that, once its interval passed, while events keep coming */
export const MAX_CHECKPOINT_DELAY_MS = 300_000;

const closedCount = (s: FleetState): number => s.violations.closed.length + s.violations.closedDropped;

/** a host's sequence facts as its recorded events show them (`GET /v1/hosts/{host}/sequence`) */
export interface SequenceReport {
  readonly host: string;
  readonly maxSeq: number | null;
  /** inclusive ranges of missing sequence numbers, oldest first (at most MAX_SEQUENCE_GAPS) */
  readonly gaps: readonly (readonly [number, number])[];
  readonly gapsOpened: number;
  readonly outOfOrder: number;
}

/**
 * Events an ingest request is storing, watched while the projection folds them: `notes` waits until the fold
 * has caught up with the store, then gives, per event id, what the fold found about its seq (a gap it opened,
 * a late arrival, a repeat), and stops watching. The one source of an ingest answer's warnings.
 */

/** the ingest answer's words for a sequence fact the fold found on `event` (`opened`: the violations it opened) */
const sequenceNotesOf = (r: RecordedEvent, host: string, opened: readonly Violation[], wasLate: boolean): string[] => {
  const seq = r.event.seq;
  const notes: string[] = [];
  let late = false;
  for (const v of opened) {
    if (v.ruleId === 'sequence-gap') {
      const range = v.key.slice(v.key.lastIndexOf('|') + 1);
      const to = Number(range.slice(range.indexOf('..') + 2));
      notes.push(`sequence gap on ${host}: seq ${range} missing ${to < seq ? 'before' : 'after'} ${seq}`);
    } else if (v.ruleId === 'sequence-late-arrival') {
      late = true;
      notes.push(`out of order on ${host}: seq ${seq} arrived after a later one (fills a gap)`);
    } else if (v.ruleId === 'sequence-out-of-order') {
      late = true;
      notes.push(`seq ${seq} repeated on ${host} with a different event id`);
    }
  }
  if (wasLate && !late) notes.push(`out of order on ${host}: seq ${seq} arrived after a later one`);
  return notes;
};

/** a host's open violations, rule and severity by key: what the metrics count for a host whose state is on disk */
type OpenSummary = Readonly<Record<string, { readonly ruleId: string; readonly severity: string }>>;

const NOTHING_OPEN: OpenSummary = Object.freeze({});

const openSummaryOf = (state: FleetState): OpenSummary => {
  const open: Record<string, { ruleId: string; severity: string }> = {};
  for (const [key, v] of Object.entries(state.violations.open)) open[key] = { ruleId: v.ruleId, severity: v.severity };
  return open;
};

interface HostEntry {
  /** undefined while the state is on disk (a restart reads a host's state when it is first used) */
  state: FleetState | undefined;
  /** the open violations of a state on disk (from its checkpoint row) */
  open: OpenSummary | undefined;
  /** where the host stands (its last event folded); undefined after a restart until it is used (read from its checkpoint) */
  lastPosition: bigint | undefined;
  lastRevision: bigint | undefined;
  lastTimeNs: bigint | undefined;
}

// a snapshot format change (new projection code) must not be loaded as if it were the old one (v3: a live host's
// group and device records written as their facts, snapshots.ts format 3)
const FORMAT = 'fleet-v3';

/** the identity of a store: its first event (a replaced or emptied store has another one, or none) */
const storeIdOf = (first: RecordedEvent): string => `${first.globalPosition}:${first.event.id}`;

/**
 * The in-process read side: every host folded with the pure fleet projection, one state per host (hosts
 * are independent, so a host's `?at=` never folds other hosts' events). Catches up from the store after
 * each ingest (`notify`) and on a short poll, so events appended by another process are seen too.
 */
export const createLiveProjection = (options: LiveProjectionOptions) => {
  const { store, snapshots, logger } = options;
  const projection =
    options.fold ?? createFleetProjection({ ...options.projection, closedViolationLimit: options.projection?.closedViolationLimit ?? DEFAULT_CLOSED_VIOLATIONS_PER_HOST });
  const every = BigInt(Math.max(1, options.snapshotEvery ?? 500));
  const hosts = new Map<string, HostEntry>();
  let position = 0n;
  let running: Promise<void> | null = null;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  const now = options.now ?? Date.now;
  let lastCheckpoint = now();
  // what the last checkpoint cost (ms of `now`): the next one, while events keep coming, waits CHECKPOINT_COST_SHARE times it
  let lastCheckpointCost = 0;
  const maxResident = Math.max(1, options.maxResidentHosts ?? 100_000);
  const checkpointMs = options.checkpointMs ?? 10_000;
  // what the next checkpoint would write (hosts folded since the last one) and the events folded meanwhile
  // the hosts folded since the last checkpoint (dirty): a checkpoint visits these, not the fleet
  const dirtyHosts = new Set<string>();
  let foldedSinceCheckpoint = 0;
  // when the fold last moved (the `now` clock): the ingest counts as paused QUIET_MS after it
  let lastFoldAt = -Infinity;
  // events folded by this process (a restart's log says how many it refolded: none after a clean stop)
  let foldedTotal = 0;
  // the hosts whose state is in memory, least recently used first (a use moves a host to the end): the ones
  // to let go are at the front, with no sort of the fleet per eviction
  const resident = new Map<string, HostEntry>();
  let stopped = false;
  let unlisten: (() => void) | undefined;
  // the violations the event being folded opens (evolve's `opened`), and the ingest requests watching events
  const openedNow: Violation[] = [];
  // and the groups it changed (evolve's `changed`), asked for only while someone follows the fold
  const changedNow: ChangedGroups = { all: true, groups: [] };
  const watches = new Set<{ ids: Set<string>; notes: Map<string, string[]> }>();
  const followers = new Set<FoldFollower>();
  const watchers = new Set<FoldWatcher>();
  // announced batches behind a gap (another process appended before them), in order: the catch-up reads the
  // gap, then folds them; a batch announced meanwhile waits behind them
  const behindGap: (readonly RecordedEvent[])[] = [];

  const entryFor = (host: string): HostEntry => {
    let e = hosts.get(host);
    if (!e) hosts.set(host, (e = { state: projection.initialState(), open: undefined, lastPosition: 0n, lastRevision: -1n, lastTimeNs: 0n }));
    return e;
  };

  let storeId: string | null = null;

  // only for a host folded in this process or read from its checkpoint: it knows where it stands
  const rowOf = (host: string, e: HostEntry, state: FleetState): HostSnapshotRow => ({
    host,
    position: e.lastPosition!,
    revision: e.lastRevision!,
    timeNs: e.lastTimeNs!,
    snapshot: toSnapshotJson(state),
  });

  // most hosts have nothing open: the empty summary's text, not an object and its JSON per host
  const checkpointRowOf = (host: string, e: HostEntry, state: FleetState): CheckpointRow => ({
    ...rowOf(host, e, state),
    open: Object.keys(state.violations.open).length === 0 ? '{}' : JSON.stringify(openSummaryOf(state)),
  });

  /**
   * A history snapshot (time travel) leaves the closed violations out, counted as dropped (what a bounded list
   * does with the oldest ones): a state at a point answers what was open then (violationsAt leaves out every
   * violation closed at or before it) and what changes after it (counts of closed, not the list). The list,
   * bounded only by closedViolationLimit, grew with the history, and every `?at=` parsed it: about 10 KB per
   * 1,000 events of a host, hundreds of KB per snapshot at 1e6 events.
   */
  const historyRowOf = (host: string, e: HostEntry, state: FleetState): HostSnapshotRow => {
    const v = state.violations;
    return rowOf(host, e, v.closed.length === 0 ? state : { ...state, violations: { ...v, closed: [], closedDropped: v.closedDropped + v.closed.length } });
  };

  /**
   * The derived state on disk is lost (corrupt, or a checkpoint that does not parse): the file is moved aside
   * and the whole fleet folded again from the event store (the store of record), on the next catch-up.
   */
  const rebuild = (cause: unknown): void => {
    logger?.error({ err: cause, file: snapshots.file }, 'projection snapshots unusable: refolding every host from the event store');
    snapshots.recoverFromCorruption(cause);
    hosts.clear();
    resident.clear();
    dirtyHosts.clear();
    behindGap.length = 0;
    position = 0n;
    storeId = null;
    if (!stopped) setImmediate(() => void notify());
  };

  /** a host's state, read from its checkpoint the first time it is used after a restart; undefined when lost */
  const stateOf = (host: string, e: HostEntry): FleetState | undefined => {
    resident.delete(host);
    if (e.state !== undefined) {
      resident.set(host, e);
      return e.state;
    }
    try {
      const row = snapshots.checkpointOf(host);
      if (row === undefined) throw new Error(`projection snapshots: the checkpoint of host ${host} is missing`);
      e.state = fromSnapshot(row.snapshot, { owned: true });
      e.open = undefined;
      e.lastPosition = row.position;
      e.lastRevision = row.revision;
      e.lastTimeNs = row.timeNs;
      resident.set(host, e);
      return e.state;
    } catch (err) {
      rebuild(err);
      return undefined;
    }
  };

  /** thrown out of a batch when a host's state could not be read: the fold starts over (see rebuild) */
  class StateLost extends Error {}

  /**
   * Runs an access to projections.sqlite; corruption found there (after it opened) moves the file aside and
   * starts an empty one (derived data), every host then dirty so the next checkpoint writes it whole again.
   */
  const guarded = <T>(access: () => T, fallback: T): T => {
    try {
      return access();
    } catch (e) {
      if (!snapshots.isCorruption(e)) throw e;
      // states still on disk went with the file: everything is folded again
      if ([...hosts.values()].some((entry) => entry.state === undefined)) {
        rebuild(e);
        return fallback;
      }
      snapshots.recoverFromCorruption(e);
      for (const host of hosts.keys()) dirtyHosts.add(host);
      return fallback;
    }
  };

  /**
   * Writes these hosts' rows, each made as the store writes it, not all of them first: a checkpoint of every
   * host of a large fleet held every state's text at once (issue 23: 4.8 kB per idle host, ~0.5 GB at 1e5
   * hosts, on top of the states themselves); with `marker`, the marker after them. False when not saved.
   */
  const saveRows = (written: readonly [string, HostEntry][], marker?: LiveMarker): boolean => {
    function* rows(): Generator<CheckpointRow> {
      for (const [host, e] of written) yield checkpointRowOf(host, e, e.state!);
    }
    const saved = guarded(() => {
      snapshots.saveCheckpoints(rows(), marker);
      return true;
    }, false);
    // only once saved: a failed save leaves the hosts dirty for the next checkpoint
    if (saved) for (const [host] of written) dirtyHosts.delete(host);
    return saved;
  };

  const checkpoint = (): void => {
    const started = now();
    // a dirty host was folded, so its state is in memory
    const dirty: [string, HostEntry][] = [];
    for (const host of dirtyHosts) {
      const e = hosts.get(host);
      if (e?.state !== undefined) dirty.push([host, e]);
    }
    if (!saveRows(dirty, { position, format: FORMAT, storeId })) return;
    foldedSinceCheckpoint = 0;
    lastCheckpoint = now();
    lastCheckpointCost = lastCheckpoint - started;
    evict();
  };

  /**
   * Beyond maxResidentHosts, the least recently used hosts go back to disk: their checkpoint row holds them, or,
   * for a host folded since the last checkpoint, its row written now, ahead of the marker (a restart reads each
   * row where its host stands and passes over the events it holds). Between checkpoints too: the hosts folded
   * meanwhile were all held until the next one (issue 23: the cap did not bound memory during an ingest).
   */
  const evict = (): void => {
    if (resident.size <= maxResident) return;
    const leaving: [string, HostEntry][] = [];
    const unsaved: [string, HostEntry][] = [];
    for (const entry of resident) {
      if (leaving.length >= resident.size - maxResident) break;
      leaving.push(entry);
      if (dirtyHosts.has(entry[0])) unsaved.push(entry);
    }
    // not written (a disk error): none goes, they stay resident and dirty for the next checkpoint
    if (unsaved.length > 0 && !saveRows(unsaved)) return;
    for (const [host, e] of leaving) {
      e.open = openSummaryOf(e.state!);
      e.state = undefined;
      resident.delete(host);
    }
  };

  const apply = (batch: readonly RecordedEvent[]): void => {
    const due: HostSnapshotRow[] = [];
    // a catch-up read and the store's notice can both bring an event: the first to arrive folds it
    const fresh = batch[0] !== undefined && batch[0].globalPosition <= position ? batch.filter((r) => r.globalPosition > position) : batch;
    if (storeId === null && position === 0n && fresh[0] !== undefined) storeId = storeIdOf(fresh[0]);
    for (const r of fresh) {
      const host = hostOfStream(r.streamName) ?? r.event.host;
      const e = entryFor(host);
      const before = stateOf(host, e);
      // its state was lost: every host is folded again from the start (rebuild); the batch is dropped
      if (before === undefined) throw new StateLost(host);
      // its checkpoint already holds this event: a checkpoint cut short between its transactions (snapshotStore
      // saveCheckpoints) left the host's row past the marker the restart folds from
      if (r.globalPosition <= e.lastPosition!) {
        position = r.globalPosition;
        continue;
      }
      e.state = before;
      for (const w of watchers) {
        try {
          w(r, before);
        } catch (err) {
          logger?.error({ err, eventId: r.event.id }, 'a watcher of the live projection failed on an event');
        }
      }
      const outOfOrderBefore = before.hosts[host]?.sequence.outOfOrder ?? 0;
      const closedBefore = closedCount(before);
      openedNow.length = 0;
      // a fold that does not report (options.fold) leaves it so: every group changed
      changedNow.all = true;
      try {
        e.state = projection.evolve(before, r.event, r.globalPosition, openedNow, followers.size > 0 ? changedNow : undefined);
        const wasLate = (e.state.hosts[host]?.sequence.outOfOrder ?? 0) > outOfOrderBefore;
        if (wasLate || openedNow.length > 0) noteSequence(r, host, wasLate);
        if (followers.size > 0) follow(r, e.state, closedBefore, changedNow);
      } catch (err) {
        // a projection defect must not stall every host behind one event: the host is marked uncertain from
        // here (visible in the API) and the error logged with the event
        logger?.error({ err, eventId: r.event.id, host, position: r.globalPosition.toString() }, 'projection failed on an event; host state marked uncertain');
        // and the events of the host held after it (reorder buffer) are not held forever behind it
        try {
          e.state = projection.passOver(e.state, r.event, r.globalPosition);
        } catch (again) {
          logger?.error({ err: again, eventId: r.event.id, host }, 'projection failed passing over an event');
        }
        const hs = e.state.hosts[host];
        if (hs && !hs.uncertain) {
          hs.uncertain = { since: { eventId: r.event.id, seq: r.event.seq, timeNs: r.event.time, position: r.globalPosition.toString() }, reason: `projection error: ${(err as Error).message}` };
        }
        // the state may be part-changed, and passOver applied the events held after it: any group may have changed
        if (followers.size > 0) follow(r, e.state, closedBefore, undefined);
      }
      e.lastPosition = r.globalPosition;
      e.lastRevision = r.streamPosition;
      e.lastTimeNs = BigInt(r.event.time);
      dirtyHosts.add(host);
      // after every `every` events of the host by its stream revision, not a count kept in memory: a checkpoint
      // (replaced by the next one) and a restart do not move the next one, so a host with fewer events than that
      // between checkpoints still gets them, and `?at=` folds at most `every` events wherever it lands
      if ((r.streamPosition + 1n) % every === 0n) due.push(historyRowOf(host, e, e.state));
      position = r.globalPosition;
    }
    foldedSinceCheckpoint += fresh.length;
    if (fresh.length > 0) lastFoldAt = now();
    foldedTotal += fresh.length;
    if (due.length > 0) guarded(() => snapshots.saveHistory(due), undefined);
    evict();
    if (fresh.length > 0) options.onApplied?.(fresh);
  };

  const follow = (r: RecordedEvent, state: FleetState, closedBefore: number, changed: ChangedGroups | undefined): void => {
    const newlyClosed = closedCount(state) - closedBefore;
    const list = state.violations.closed;
    const closed = newlyClosed > 0 ? list.slice(Math.max(0, list.length - newlyClosed)) : [];
    for (const f of followers) {
      try {
        f(r, state, openedNow, closed, changed);
      } catch (err) {
        logger?.error({ err, eventId: r.event.id }, 'a follower of the live projection failed on an event');
      }
    }
  };

  /** what the fold found about an event's seq: counted (metrics) and told to the ingest request watching it */
  const noteSequence = (r: RecordedEvent, host: string, wasLate: boolean): void => {
    let lateOrRepeat = wasLate;
    for (const v of openedNow) {
      if (v.ruleId === 'sequence-gap') options.onSequence?.(host, 'gap');
      else if (v.ruleId === 'sequence-out-of-order') lateOrRepeat = true;
    }
    if (lateOrRepeat) options.onSequence?.(host, 'out-of-order');
    for (const w of watches) {
      if (!w.ids.has(r.event.id)) continue;
      const notes = sequenceNotesOf(r, host, openedNow, wasLate);
      if (notes.length > 0) w.notes.set(r.event.id, notes);
    }
  };

  const watchSequence = (): SequenceWatch => {
    const w = { ids: new Set<string>(), notes: new Map<string, string[]>() };
    watches.add(w);
    return {
      add: (id) => void w.ids.add(id),
      notes: async (upTo) => {
        try {
          // this process's appends are folded as the store announces them; what it did not announce is read
          if (position < upTo) await notify();
          return w.notes;
        } finally {
          watches.delete(w);
        }
      },
      cancel: () => void watches.delete(w),
    };
  };

  /** a host's state (read from disk on first use), undefined when unknown */
  const fleetStateOf = (host: string): FleetState | undefined => {
    const e = hosts.get(host);
    return e && stateOf(host, e);
  };

  const sequenceReport = (name: string): SequenceReport | undefined => {
    const h = fleetStateOf(name)?.hosts[name];
    if (!h) return undefined;
    const s = h.sequence;
    return { host: name, maxSeq: h.lastSeq, gaps: s.gaps.map((g) => [g.from, g.to] as const), gapsOpened: s.gapsOpened, outOfOrder: s.outOfOrder };
  };

  /** folds the next events of the store read back from it, up to `maxCount` of them; false when there were none */
  const readAndApply = async (maxCount: number): Promise<boolean> => {
    const batch: RecordedEvent[] = [];
    for await (const r of store.readAll({ after: position, maxCount })) batch.push(r);
    if (batch.length === 0) return false;
    try {
      apply(batch);
    } catch (e) {
      // the fold starts over from position 0 (rebuild): read from there
      if (!(e instanceof StateLost)) throw e;
    }
    return true;
  };

  /** the batches announced behind a gap: the gap read from the store (another process's events), then each folded */
  const foldBehindGap = async (): Promise<void> => {
    for (let next = behindGap[0]; next !== undefined; next = behindGap[0]) {
      const first = next[0]!.globalPosition;
      // positions below a committed one are committed: the gap is there to read (a bound by count, so not one
      // event of this process's later batches is read back; more rounds if the store's positions are sparse)
      while (position < first - 1n && (await readAndApply(Math.min(5_000, Number(first - 1n - position)))));
      // a rebuild (state lost) emptied the queue: everything is read again
      if (behindGap[0] !== next) continue;
      behindGap.shift();
      applyAnnounced(next);
    }
  };

  /**
   * Folds what the store holds: its announced batches as they come, the rest read. While this process's own
   * appends are being written, a read would meet them committed and not yet announced and decode them again
   * (issue 23: most of the catch-up's reads during an ingest): it waits for their announcement instead, which
   * shows any gap another process's appends left before them. Done once the fold reached what was committed
   * when it began, or the store has nothing more.
   */
  const catchUp = async (): Promise<void> => {
    const head = store.appendsInFlight ? await store.headPosition() : undefined;
    for (;;) {
      await foldBehindGap();
      const inFlight = store.appendsInFlight?.();
      if (inFlight !== undefined) {
        if (head !== undefined && position >= head) break;
        await inFlight;
        continue;
      }
      if (!(await readAndApply(5_000))) break;
    }
    if (checkpointDue()) checkpoint();
  };

  /**
   * A checkpoint's cost is one state write per host folded since the last one: it waits for the interval, and
   * then until it writes at most one state per EVENTS_PER_STATE_WRITE events folded meanwhile, so its cost per
   * event stays bounded whatever the number of hosts (a restart after a crash folds that tail again), and until
   * CHECKPOINT_COST_SHARE times what the last one cost passed, so its share of the time stays bounded too; when the
   * events stop (nothing folded for QUIET_MS) it is taken at the next
   * catch-up. Not at a catch-up that merely found nothing new: every ingest request and the poll ask for one,
   * often just after a fold, so an ingest of new hosts (one state each to write) was taken for paused and a
   * checkpoint wrote every host folded so far in the middle of it (issue 23: most of the live projection's cost).
   */
  const checkpointDue = (): boolean => {
    const elapsed = now() - lastCheckpoint;
    if (elapsed < checkpointMs) return false;
    // not while an append of this process is still being committed: the fold waits for the writer then, and a
    // slow commit (a loaded disk: a second and more per batch) made a running ingest look paused, so a
    // checkpoint wrote every host folded in the middle of it, whatever the bounds below (issue 23)
    const quiet = now() - lastFoldAt >= QUIET_MS && store.appendsInFlight?.() === undefined;
    const worthIt = foldedSinceCheckpoint >= EVENTS_PER_STATE_WRITE * dirtyHosts.size && elapsed >= CHECKPOINT_COST_SHARE * lastCheckpointCost;
    return quiet || worthIt || elapsed >= Math.max(checkpointMs, MAX_CHECKPOINT_DELAY_MS);
  };

  /** run one catch-up at a time; a notify during a run schedules exactly one more */
  const notify = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await catchUp();
        } while (again);
      } catch (e) {
        logger?.error({ err: e }, 'live projection catch-up failed');
      } finally {
        running = null;
      }
    })();
    return running;
  };

  /**
   * Events this process just appended, handed over by the store: applied at once when they follow on what was
   * folded (even while a catch-up reads: apply skips what either already folded), instead of being read back
   * and decoded again. Behind a gap (another process appended in between) a batch waits while the catch-up
   * reads the gap, and only the gap, from the store.
   */
  const onAppended = (batch: readonly RecordedEvent[]): void => {
    if (stopped || batch.length === 0) return;
    if (batch.at(-1)!.globalPosition <= position) return;
    if (behindGap.length > 0 || batch[0]!.globalPosition > position + 1n) {
      behindGap.push(batch);
      void notify();
      return;
    }
    applyAnnounced(batch);
  };

  const applyAnnounced = (batch: readonly RecordedEvent[]): void => {
    try {
      apply(batch);
    } catch (e) {
      if (!(e instanceof StateLost)) logger?.error({ err: e }, 'live projection apply failed');
    }
  };

  /** why the derived state on disk cannot be used with this store, or null when it can */
  const mismatch = async (marker: { position: bigint; format: string; storeId: string | null }): Promise<string | null> => {
    if (marker.format !== FORMAT) return `projection snapshot format changed (${marker.format}, now ${FORMAT})`;
    const head = await store.headPosition();
    if (marker.position > head) return `projection snapshots reach position ${marker.position} but the event store ends at ${head} (a replaced or truncated store)`;
    let first: RecordedEvent | undefined;
    for await (const r of store.readAll({ after: 0n, maxCount: 1 })) first = r;
    const current = first ? storeIdOf(first) : null;
    if (marker.position > 0n && marker.storeId !== current) {
      return `projection snapshots were folded from another event store (first event ${marker.storeId ?? 'unknown'}, this store's ${current ?? 'none'})`;
    }
    storeId = current;
    return null;
  };

  const restore = async (): Promise<void> => {
    const marker = snapshots.marker();
    if (!marker) return;
    const reason = await mismatch(marker);
    if (reason !== null) {
      logger?.warn({ file: snapshots.file, markerPosition: marker.position.toString() }, `${reason}: discarded, rebuilding from the event store`);
      snapshots.reset();
      return;
    }
    const index = snapshots.restoreIndexAt(marker.position);
    // most hosts have nothing open: one shared empty summary, not a parse per host
    const open = new Map(index.open);
    for (const host of index.hosts) {
      const summary = open.get(host);
      hosts.set(host, {
        // read when the host is first used, with where it stands: a restart costs a name per host, not every state
        state: undefined,
        open: summary === undefined ? NOTHING_OPEN : (JSON.parse(summary) as OpenSummary),
        lastPosition: undefined,
        lastRevision: undefined,
        lastTimeNs: undefined,
      });
    }
    position = marker.position;
  };

  const start = async (): Promise<void> => {
    const t0 = Date.now();
    try {
      await restore();
    } catch (e) {
      // a checkpoint row that does not parse is as corrupt as a page that does not
      if (!snapshots.isCorruption(e) && !(e instanceof SyntaxError)) throw e;
      // derived data: a corrupt file is moved aside and everything is folded again from the store
      hosts.clear();
      resident.clear();
      dirtyHosts.clear();
      position = 0n;
      storeId = null;
      snapshots.recoverFromCorruption(e);
    }
    const restoredMs = Date.now() - t0;
    unlisten = store.onAppended?.(onAppended);
    await notify();
    logger?.info({ position: position.toString(), hosts: hosts.size, restoredMs, folded: foldedTotal, ms: Date.now() - t0 }, 'live projection caught up');
    timer = setInterval(() => void notify(), options.pollMs ?? 500);
    timer.unref();
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unlisten?.();
    if (timer) clearInterval(timer);
    while (running) await running;
    checkpoint();
  };

  /**
   * A host's state as of a position or time: its newest snapshot at or before that point, then its own
   * stream folded up to the point. By time, "the state at T" is the one definition of the projections'
   * `AsOf` (the host's state after its last event dated ≤ T, in recorded order): host clocks are not
   * monotonic, so the fold goes on past events dated after T until the live state's clock steps show that
   * no later event of the host comes back to T or before.
   */
  const hostStateAt = async (host: string, at: AsOf): Promise<FleetState> => {
    const snap = guarded(() => ('position' in at ? snapshots.beforePosition(host, at.position) : snapshots.beforeTime(host, at.timeNs)), undefined);
    const snapshot = snap?.snapshot;
    const folder = createFolder(projection, {
      state: snapshot === undefined ? projection.initialState() : fromSnapshot(snapshot, { owned: true }),
      until: at,
    });
    const from: bigint | 'start' = snap ? snap.revision + 1n : 'start';
    const folded = position;
    const lastReturn = 'timeNs' in at ? lastClockReturnPosition(host, at.timeNs) : undefined;
    const range = 'position' in at ? positionRange(host, at.position, from) : { fromRevision: from };
    for await (const r of store.readStream(hostStreamName(host), range)) {
      if (!folder.step(r)) break;
      if ('timeNs' in at && lastReturn !== undefined && r.globalPosition > lastReturn && r.globalPosition <= folded && BigInt(r.event.time) > at.timeNs) break;
    }
    return folder.state;
  };

  /** where a host stands (its last event folded): known once folded or used, else read alone from its checkpoint */
  const standingOf = (host: string, e: HostEntry): { position: bigint; revision: bigint } | undefined => {
    if (e.lastPosition === undefined) {
      const st = guarded(() => snapshots.standingOf(host), undefined);
      if (st === undefined) return undefined;
      e.lastPosition = st.position;
      e.lastRevision = st.revision;
      e.lastTimeNs = st.timeNs;
    }
    return { position: e.lastPosition, revision: e.lastRevision! };
  };

  /**
   * The read of a host's stream for its state at position `at`, from revision `from` on: bounded by a count when a
   * known event of the host lies past the position (its next history snapshot, else its last event folded), so
   * the store reads at most the events between two snapshots (`snapshotEvery`), however long the host's history
   * after the position. A bound by position alone is not one for the store: every event of the host after it
   * was scanned to find that none was left (the whole rest of a long stream, for each `?at=` early in it). The
   * events read past the position are not folded (the folder stops at the first).
   */
  const positionRange = (host: string, at: bigint, from: bigint | 'start'): ReadStreamOptions => {
    const first = from === 'start' ? 0n : from;
    const e = hosts.get(host);
    const last = e && standingOf(host, e);
    // not folded that far yet: the tail may hold more of its events; bounded by the position only
    if (last === undefined || at > position) return { fromRevision: from, toPosition: at };
    // every event of the host up to the one folded last is at or before the position
    if (last.position <= at) return { fromRevision: from, toPosition: at, maxCount: Math.max(0, Number(last.revision + 1n - first)) };
    const next = guarded(() => snapshots.after(host, at), undefined);
    const bound = next !== undefined && next.revision < last.revision ? next.revision : last.revision;
    return { fromRevision: from, maxCount: Math.max(0, Number(bound - first)) };
  };

  /**
   * The store position past which, once an event dated after `timeNs` is met, nothing more of the host's
   * stream belongs to its state at that time (the definition on {@link AsOf}): 0 when its clock never went
   * back to `timeNs` or before, the last such step's position otherwise; undefined when not known (older
   * steps dropped by the bound, or the host not loaded), and a fold must then read to the end.
   */
  const lastClockReturnPosition = (host: string, timeNs: bigint): bigint | undefined => {
    const liveHost = fleetStateOf(host)?.hosts[host];
    if (!liveHost) return undefined;
    const step = lastClockReturn(liveHost, timeNs);
    return step === null ? 0n : step?.event.position !== undefined ? BigInt(step.event.position) : undefined;
  };

  /**
   * The events whose time went back across `at` on this host (a time): the state at `at` depends on a
   * clock jump when this is not empty. Empty for a position.
   */
  const clockNotMonotonicAt = (host: string, at: AsOf): ClockStep[] => {
    const h = fleetStateOf(host)?.hosts[host];
    return h && 'timeNs' in at ? clockStepsAcross(h, at.timeNs) : [];
  };

  return {
    start,
    stop,
    notify,
    projection,
    position: () => position,
    hostNames: (): string[] => [...hosts.keys()].sort(),
    /** how many host states are in memory (the others are read from disk when used) */
    residentHosts: (): number => resident.size,
    /** live per-host states (each read from disk on first use after a restart); treat as read-only */
    hostEntries: function* (): Iterable<[string, FleetState]> {
      for (const [h, e] of [...hosts]) {
        const state = stateOf(h, e);
        if (state !== undefined) yield [h, state];
      }
    },
    /** every host's open violations, without reading the states still on disk (the metrics' scrape) */
    openViolationEntries: function* (): Iterable<[string, { readonly violations: { readonly open: OpenSummary } }]> {
      for (const [h, e] of hosts) yield [h, { violations: { open: e.state?.violations.open ?? e.open ?? {} } }];
    },
    host: (host: string): HostState | undefined => fleetStateOf(host)?.hosts[host],
    hostFleetState: fleetStateOf,
    hostStateAt,
    sequenceReport,
    watchSequence,
    /** tells `follower` of every event folded from now on (and `before`, of the state before each); returns the function that stops it */
    follow: (follower: FoldFollower, before?: FoldWatcher): (() => void) => {
      followers.add(follower);
      if (before) watchers.add(before);
      return () => {
        followers.delete(follower);
        if (before) watchers.delete(before);
      };
    },
    clockNotMonotonicAt,
    lastClockReturnPosition,
  };
};
export type LiveProjection = ReturnType<typeof createLiveProjection>;
