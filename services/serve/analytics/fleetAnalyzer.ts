import type { ChangedGroups, EventRef, FleetState, GroupState, UserOwner, Violation } from '../../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../../schemas/index.js';
import type { DailyCompliance, EventPoint, GroupStateChange, SinkBatch, ViolationRecord } from './analyticsSink.js';

/** the part of the fleet projection the analyzer drives (structurally `FleetProjection`) */
export interface FleetFold {
  initialState(): FleetState;
  /**
   * `opened` receives the violations the event opened, `changed` the groups it may have changed (see the fleet
   * projection's evolve); a fold that leaves `changed` as given (`all`) has every group of the host compared
   */
  evolve(state: FleetState, event: IommuEvent, position: bigint | undefined, opened: Violation[], changed: ChangedGroups): FleetState;
}

export type AnalyzerOutput = Omit<SinkBatch, 'checkpoint'>;

/**
 * Wraps the pure fleet fold and turns each event's effect into analytics rows: violations opened or
 * closed, groups whose state changed, and per host/day compliance. No I/O; deterministic, so folding the
 * same history again yields the same rows (what makes the sink's replays idempotent).
 */
export interface FleetAnalyzer {
  /** folds without producing rows (rebuilding the state up to a checkpoint) */
  skip(recorded: RecordedEvent): void;
  /** folds a batch in order and returns its rows; events at or before {@link FleetAnalyzer.position} are ignored */
  apply(batch: readonly RecordedEvent[]): AnalyzerOutput;
  /**
   * Takes an event another fold already folded (the live projection, so each event is folded once): `state` is
   * the state holding the event's host after it, `opened` and `closed` the violations the event opened and
   * closed, `changed` the groups that fold reports the event changed (its groups sorted here; absent: every group
   * of the host compared). Its rows wait for {@link FleetAnalyzer.drain}; events at or before the position are
   * ignored.
   */
  observe(recorded: RecordedEvent, state: FleetState, opened: readonly Violation[], closed: readonly Violation[], changed?: ChangedGroups): void;
  /** the rows of the events observed since the last drain */
  drain(): AnalyzerOutput;
  /** events observed and not drained yet */
  pending(): number;
  /** the last global position folded (0n before any) */
  position(): bigint;
  /** the fleet as this analyzer folded it (one state per resident host inside; merged here for a caller that looks) */
  state(): FleetState;
  /**
   * Resumed at a checkpoint ({@link AnalyzerOptions.resumeAt}): whether `host` still needs its state at the
   * analyzer's position (given with {@link FleetAnalyzer.seed}) before an event of it is folded or observed.
   */
  needsSeed(host: string): boolean;
  /** a host's state at the analyzer's position (resumed; folded before any event of it after the checkpoint) */
  seed(host: string, state: FleetState): void;
  /** hosts held in memory, their states or (following) their groups as last written (at most {@link AnalyzerOptions.maxResidentHosts} after each batch or drain) */
  residentHosts(): number;
  /** day accumulators held in memory (at most {@link DAYS_HELD_PER_HOST} per host, plus days not yet output) */
  heldDays(): number;
  /**
   * host/days whose rows so far count only the events after a point: their base is in the sink. `since` is that
   * point (the checkpoint resumed at, or the position before the event that met again a day no longer held): a
   * base row with a later version already counts some of the events counted here
   */
  partialDays(): { host: string; day: string; since: bigint }[];
  /**
   * The sink's rows of the partial days `asked` (each day as of the checkpoint) added in (a day the sink has no
   * row of began after the checkpoint and is complete as it is); returns `rows` (an output's compliance, made
   * while those days were partial) with the same bases added.
   */
  completeDays(asked: readonly { host: string; day: string }[], bases: readonly DailyCompliance[], rows: readonly DailyCompliance[]): DailyCompliance[];
}

export interface AnalyzerOptions {
  /**
   * Resume after this position (the sink's checkpoint) instead of folding from the start: each host's state
   * there is seeded when it is first met, and the days it had before are completed from the sink's rows.
   */
  readonly resumeAt?: bigint;
  /**
   * Host states (and their groups as last written) kept in memory: after each batch applied or drained, the least
   * recently used beyond this are let go of, and {@link FleetAnalyzer.needsSeed} asks for them again (the caller
   * seeds them from the live projection at the analyzer's position, so the rows are those of an unbounded fold).
   * Only for a caller that seeds; {@link FleetAnalyzer.skip} never lets go. @defaultValue unbounded
   */
  readonly maxResidentHosts?: number;
}

const SECONDS_PER_DAY = 86_400;
// nothing opened or closed: one shared empty list rather than a new one per event
const NONE: readonly Violation[] = Object.freeze([]);

/**
 * The days of each host whose compliance accumulators stay in memory: its latest ones. An older day's row is in
 * the sink already; an event that comes back to it (late delivery, a clock set back) makes it partial, and the
 * projector completes it from the sink's row, as for a day begun before a resumed checkpoint.
 */
export const DAYS_HELD_PER_HOST = 3;
/** whole seconds of a time in ns as canonical digits (NanosSchema): exact as a number, with no BigInt per event */
const secondsOf = (timeNs: string): number => (timeNs.length > 9 ? Number(timeNs.slice(0, -9)) : 0);

/** the kernel state of a group (protocol.md §1.0): K0, Kn, user-owned blocked, user-owned attached */
export const groupStateName = (g: GroupState): string => {
  if (g.twoOwners) return 'two-owners';
  if (g.userOwner === null) return g.kernelDmaDrivers > 0 ? 'kernel-dma' : 'kernel-idle';
  return g.domain.kind === 'blocking' || g.domain.kind === 'default' ? 'user-blocked' : 'user-attached';
};

const domainName = (g: GroupState): string =>
  g.domain.kind === 'hwpt' ? `hwpt:${g.domain.hwptId ?? '?'}${g.domain.ictx !== undefined ? `@${g.domain.ictx}` : ''}` : g.domain.kind === 'container' ? `container:${g.domain.container ?? '?'}` : g.domain.kind;

// what the dashboard shows of a group; a change emits a row. Compared field by field without building
// strings: the check runs for every group of the event's host on every event (the sink's hot path)
interface GroupShot {
  twoOwners: boolean;
  ownerKind: string | undefined;
  ownerHandle: string | undefined;
  domainKind: string;
  hwptId: number | undefined;
  ictx: string | undefined;
  container: string | undefined;
  userOwnerCount: number;
  kernelDmaDrivers: number;
  members: readonly string[];
  attachedDevices: readonly string[];
  uncertain: boolean;
  openViolations: number;
}


/**
 * The shot taken again, in place: the member and attached lists copied only when they changed, so a shot's lists are
 * never changed after they are made (the group rows share them as their `devices`)
 */
const retake = (g: GroupState, s: GroupShot): GroupShot => {
  s.twoOwners = g.twoOwners;
  s.ownerKind = g.userOwner?.kind;
  s.ownerHandle = g.userOwner?.handle;
  s.domainKind = g.domain.kind;
  s.hwptId = g.domain.hwptId;
  s.ictx = g.domain.ictx;
  s.container = g.domain.container;
  s.userOwnerCount = g.userOwnerCount;
  s.kernelDmaDrivers = g.kernelDmaDrivers;
  if (!sameList(g.members, s.members)) s.members = [...g.members];
  if (!sameList(g.attachedDevices, s.attachedDevices)) s.attachedDevices = [...g.attachedDevices];
  s.uncertain = g.uncertain;
  s.openViolations = g.openViolations;
  return s;
};

/** a group's first shot: a blank one of the same shape, taken by `retake` (what a shot holds of a group is written once) */
const shotOf = (g: GroupState): GroupShot =>
  retake(g, {
    twoOwners: false,
    ownerKind: undefined,
    ownerHandle: undefined,
    domainKind: '',
    hwptId: undefined,
    ictx: undefined,
    container: undefined,
    userOwnerCount: 0,
    kernelDmaDrivers: 0,
    members: [],
    attachedDevices: [],
    uncertain: false,
    openViolations: 0,
  });

/** a host's groups as last written, by group number (an array: read for every group of the host on every event) */
interface HostShots {
  readonly byGroup: GroupShot[];
  count: number;
  /** the state the shots were last taken from: only the same state, folded on, may have just its changed groups compared */
  of: FleetState | null;
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

const unchanged = (g: GroupState, s: GroupShot): boolean =>
  g.twoOwners === s.twoOwners &&
  g.userOwner?.kind === s.ownerKind &&
  g.userOwner?.handle === s.ownerHandle &&
  g.domain.kind === s.domainKind &&
  g.domain.hwptId === s.hwptId &&
  g.domain.ictx === s.ictx &&
  g.domain.container === s.container &&
  g.userOwnerCount === s.userOwnerCount &&
  g.kernelDmaDrivers === s.kernelDmaDrivers &&
  g.uncertain === s.uncertain &&
  g.openViolations === s.openViolations &&
  sameList(g.members, s.members) &&
  sameList(g.attachedDevices, s.attachedDevices);

const NO_OWNERS: readonly UserOwner[] = Object.freeze([]);
const NO_PASIDS: Readonly<Record<string, number>> = Object.freeze({});
const hasKeys = (o: object): boolean => {
  for (const _ in o) return true;
  return false;
};

const toPoint = (ref: EventRef, fallbackPosition: bigint): EventPoint => ({
  eventId: ref.eventId,
  globalPosition: ref.position !== undefined ? BigInt(ref.position) : fallbackPosition,
  timeNs: BigInt(ref.timeNs),
});

/**
 * The group a device event's device belonged to at that moment (the state after the event), for an event whose
 * data names a device but no group (DriverBound, a device fd opened...): the analytics row's group is then filled.
 * Read from the host's kernel model, whose device the record's group is (readModel.ts `deriveDevice`): reading the
 * records derived every device the fold had marked, on every device event (issue 23, sink8: ~9% of the analyzer's
 * CPU over 200 hosts), for one number. The records only when the state has no model (restored from a snapshot
 * written without it).
 */
const memberGroup = (e: IommuEvent, host: FleetState['hosts'][string] | undefined): number | null => {
  const data = e.data as Record<string, unknown>;
  if (host === undefined || typeof data.group === 'number' || typeof data.device !== 'string') return null;
  const model = host.kernel;
  return (model != null ? model.devices.get(data.device)?.group : host.devices[data.device]?.group) ?? null;
};

/** a projection key names a condition (rule, host, subject) that may open again later: add the occurrence */
export const violationOccurrenceKey = (v: Violation): string => `${v.key}@${v.opened.eventId}`;

const toViolationRecord = (v: Violation, version: bigint, withClose: boolean): ViolationRecord => ({
  key: violationOccurrenceKey(v),
  host: v.host,
  ...(v.group !== undefined ? { group: v.group } : {}),
  ...(v.device !== undefined ? { device: v.device } : {}),
  rule: v.ruleId,
  severity: v.severity,
  message: v.message,
  opened: toPoint(v.opened, version),
  ...(withClose && v.closed !== undefined ? { closed: toPoint(v.closed, version) } : {}),
  evidence: [...v.evidence],
  version,
});

interface DayAccumulator {
  readonly host: string;
  day: string;
  opened: number;
  closed: number;
  maxOpen: number;
  openAtEnd: number;
  /** a number, not a bigint: a bigint sum allocates on every event (exact up to 2^53 events a host-day) */
  events: number;
  /** the day's first and last event time, as canonical digits (compared without a BigInt) */
  first: string;
  last: string;
  /** completed from a sink row that had no times: they stay unknown */
  untimed: boolean;
  /** the day's last topology snapshot (by time, canonical digits) and whether it found an IOMMU; undefined: none */
  snapshot: string | undefined;
  snapshotIommu: boolean;
  /** completed from a sink row written before snapshots were kept: whether the day had one stays unknown */
  factsUnknown: boolean;
  version: bigint;
  /** the rows being gathered that list this day (a marker: no set of days to look up on every event) */
  listedIn: Emit | undefined;
}

type Emit = { violations: ViolationRecord[]; groups: GroupStateChange[]; touchedDays: DayAccumulator[] };

/** a < b for times as canonical digits (NanosSchema: no leading zero) */
const earlier = (a: string, b: string): boolean => a.length < b.length || (a.length === b.length && a < b);

export const createFleetAnalyzer = (fold: FleetFold, options: AnalyzerOptions = {}): FleetAnalyzer => {
  // one state per host (hosts fold independently): a resumed analyzer takes a host's state as it meets it
  // in order of last use (a host folded is moved to the end): the first ones are let go of beyond maxResidentHosts
  const states = new Map<string, FleetState>();
  const maxResident = options.maxResidentHosts === undefined ? Infinity : Math.max(1, options.maxResidentHosts);
  // hosts whose state was let go of: seeded again before their next event
  const evicted = new Set<string>();
  const resumed = options.resumeAt !== undefined;
  // resumed: the hosts seeded (or met first after the checkpoint: their rows began after it)
  const seeded = new Set<string>();
  // host/days whose accumulators count only the events after a point (the sink has the rest), with that point:
  // resumed, the checkpoint; a day met again after it was let go, the position before that event
  const partial = new Map<string, bigint>();
  // violations opened by the event being folded, in order (some may be closed again by it), as the fold
  // reports them: listing the open map per event cost time in proportion to every violation open (hardening #1)
  const openedNow: Violation[] = [];
  const changedNow: ChangedGroups = { all: true, groups: [] };
  let position = options.resumeAt ?? 0n;
  // per host, per group: what was last written
  const shots = new Map<string, HostShots>();
  // the UTC day of the previous event: consecutive events nearly always share it. Its bounds as ns digits too, so
  // the check of a time within it compares texts (no number cut out of each event's time)
  let dayStart = 0;
  let dayEnd = 0;
  let dayName = '';
  let dayFromText = '';
  let dayToText = '';
  const dayOfEvent = (timeNs: string): string => {
    if (timeNs.length === dayFromText.length && timeNs.length === dayToText.length && timeNs >= dayFromText && timeNs < dayToText) return dayName;
    const seconds = secondsOf(timeNs);
    if (seconds < dayStart || seconds >= dayEnd) {
      dayStart = seconds - (seconds % SECONDS_PER_DAY);
      dayEnd = dayStart + SECONDS_PER_DAY;
      dayName = new Date(dayStart * 1000).toISOString().slice(0, 10);
      dayFromText = dayStart === 0 ? '' : `${dayStart}000000000`;
      dayToText = `${dayEnd}000000000`;
    }
    return dayName;
  };
  const openByHost = new Map<string, number>();
  // per host, its day accumulators by day (its latest DAYS_HELD_PER_HOST once their rows are out), and the latest
  // day it let go of: a day at or before it that comes back is partial (its row is in the sink)
  const daysOf = new Map<string, Map<string, DayAccumulator>>();
  const letGo = new Map<string, string>();
  // hosts holding more days than that, trimmed once the rows of their days are out
  const crowded = new Set<string>();
  const dayKey = (host: string, day: string): string => `${host}\u0000${day}`;

  const closedTotal = (state: FleetState): number => state.violations.closed.length + state.violations.closedDropped;

  // folds one event; `emit` collects rows (absent while skipping). Returns the group of the event's device then
  const step = (r: RecordedEvent, emit?: Emit): number | null => {
    const host = r.event.host;
    if (evicted.has(host)) throw new Error(`fleet analyzer: the state of host ${host} was let go of and not seeded again`);
    const before = states.get(host) ?? fold.initialState();
    const closedBefore = closedTotal(before);
    openedNow.length = 0;
    changedNow.all = true;
    let state: FleetState;
    try {
      state = fold.evolve(before, r.event, r.globalPosition, openedNow, changedNow);
    } catch (err) {
      // the state may be part-changed: every group of the host is compared at its next event
      const hostShots = shots.get(host);
      if (hostShots !== undefined) hostShots.of = null;
      throw err;
    }
    if (maxResident !== Infinity) states.delete(host);
    states.set(host, state);
    const newlyClosed = closedTotal(state) - closedBefore;
    // every violation this event opened, including one it closed again (reported by the fold, not a scan of the map)
    const opened: readonly Violation[] = openedNow.length === 0 ? NONE : [...openedNow];
    const closedList = state.violations.closed;
    const closed = newlyClosed > 0 ? closedList.slice(Math.max(0, closedList.length - newlyClosed)) : NONE;
    return rowsOf(r, state, opened, closed, emit, changedNow);
  };

  // the rows of one folded event, from the state after it and the violations it opened and closed
  // returns the group the event's device belonged to then (for an event that names a device and no group), else null
  // `changed`: the groups the fold reports the event changed (absent: every group of the host compared)
  const rowsOf = (r: RecordedEvent, after: FleetState, opened: readonly Violation[], closed: readonly Violation[], emit?: Emit, changed?: ChangedGroups): number | null => {
    const e = r.event;
    // every event after this point is counted here: a day's row in the sink with a later version counts some of them too
    const since = position;
    position = r.globalPosition;

    for (const v of opened) openByHost.set(v.host, (openByHost.get(v.host) ?? 0) + 1);
    for (const v of closed) openByHost.set(v.host, (openByHost.get(v.host) ?? 0) - 1);

    // daily compliance of every host whose open count moved, and of the event's own host
    const quiet = opened.length === 0 && closed.length === 0;
    const today = dayOfEvent(e.time);
    if (quiet) countDay(r, e.host, today, 0, 0, since, emit);
    else {
      for (const host of new Set<string>([e.host, ...opened.map((v) => v.host), ...closed.map((v) => v.host)])) {
        countDay(r, host, today, opened.filter((v) => v.host === host).length, closed.filter((v) => v.host === host).length, since, emit);
      }
    }
    // folding without rows (up to the sink's checkpoint): the days let go of are in the sink already
    if (emit === undefined && crowded.size > 0) trimDays();
    return groupRows(r, after, opened, closed, emit, changed);
  };

  /** one host's day as the event leaves it: its events (the event's own host), violations opened and closed, open count */
  const countDay = (r: RecordedEvent, host: string, today: string, openedHere: number, closedHere: number, since: bigint, emit: Emit | undefined): void => {
    const e = r.event;
    const openNow = Math.max(0, openByHost.get(host) ?? 0);
    let hostDays = daysOf.get(host);
    if (hostDays === undefined) daysOf.set(host, (hostDays = new Map()));
    let acc = hostDays.get(today);
    if (acc === undefined) {
      // a violation still open from an earlier day makes this day non-compliant too
      const openBefore = Math.max(0, openNow - openedHere + closedHere);
      // a day let go of and met again, or (resumed) a day of a host as of the checkpoint: the sink holds the rest of it
      if (today <= (letGo.get(host) ?? '')) partial.set(dayKey(host, today), since);
      else if (seeded.has(host)) partial.set(dayKey(host, today), options.resumeAt ?? 0n);
      acc = { host, day: today, opened: 0, closed: 0, maxOpen: openBefore, openAtEnd: openBefore, events: 0, first: e.time, last: e.time, untimed: false, snapshot: undefined, snapshotIommu: false, factsUnknown: false, version: 0n, listedIn: undefined };
      hostDays.set(today, acc);
      if (hostDays.size > DAYS_HELD_PER_HOST) crowded.add(host);
    }
    acc.opened += openedHere;
    acc.closed += closedHere;
    acc.maxOpen = Math.max(acc.maxOpen, openNow);
    acc.openAtEnd = openNow;
    if (host === e.host) {
      acc.events += 1;
      if (earlier(e.time, acc.first)) acc.first = e.time;
      if (earlier(acc.last, e.time)) acc.last = e.time;
      // the day's latest snapshot by time (of two at one time, the later folded), as the compliance reads it
      if (e.type === 'TopologySnapshotTaken' && (acc.snapshot === undefined || !earlier(e.time, acc.snapshot))) {
        acc.snapshot = e.time;
        acc.snapshotIommu = (e.data as { capabilities?: { iommu?: unknown } }).capabilities?.iommu === true;
      }
    }
    acc.version = r.globalPosition;
    if (emit !== undefined && acc.listedIn !== emit) {
      acc.listedIn = emit;
      emit.touchedDays.push(acc);
    }
  };

  // the rows of the groups the event changed and of the violations it opened and closed; returns the group the event's
  // device belonged to then (for an event that names a device and no group), else null
  const groupRows = (r: RecordedEvent, after: FleetState, opened: readonly Violation[], closed: readonly Violation[], emit?: Emit, changed?: ChangedGroups): number | null => {
    const e = r.event;
    // as a bigint only for the rows that carry it (a group changed)
    let timeNs: bigint | undefined;
    const hostState = after.hosts[e.host];
    if (hostState !== undefined) {
      let hostShots = shots.get(e.host);
      if (hostShots === undefined) shots.set(e.host, (hostShots = { byGroup: [], count: 0, of: null }));
      else if (maxResident !== Infinity) {
        // in order of last use, as the states: following the live projection (observe), a host's state is held
        // only once it was seeded, and moves with its shots, so a busy host is not let go of for its seed's age
        shots.delete(e.host);
        shots.set(e.host, hostShots);
        if (states.delete(e.host)) states.set(e.host, after);
      }
      const byGroup = hostShots.byGroup;
      if (changed !== undefined && !changed.all && hostShots.of === after) {
        // only the groups the fold reports changed, in group order (as the values of integer keys come, below)
        const ids = changed.groups.sort((a, b) => a - b);
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]!;
          if (i > 0 && id === ids[i - 1]) continue;
          const g = hostState.groups[id];
          if (g !== undefined) timeNs = groupRow(r, g, hostShots, emit, timeNs);
          else if (byGroup[id] !== undefined) {
            // a group gone from the host is forgotten (see below)
            delete byGroup[id];
            hostShots.count--;
          }
        }
      } else {
        // the values, not a for-in: the group ids are integer keys, which for-in hands out as new strings each time
        const groups = Object.values(hostState.groups);
        for (const g of groups) timeNs = groupRow(r, g, hostShots, emit, timeNs);
        // a group gone from the host is forgotten (a group coming back is a change; and what is kept is what the
        // state holds, so an analyzer resumed from a state has the same shots as one that folded everything)
        if (hostShots.count > groups.length) {
          const gone: number[] = [];
          byGroup.forEach((_, group) => {
            if (!(String(group) in hostState.groups)) gone.push(group);
          });
          for (const group of gone) delete byGroup[group];
          hostShots.count -= gone.length;
        }
      }
      hostShots.of = after;
    }
    if (emit !== undefined) {
      // the open version, unless the same event also closed it (then only the closed version is written)
      for (const v of opened) if (v.closed?.eventId !== e.id) emit.violations.push(toViolationRecord(v, r.globalPosition, false));
      for (const v of closed) emit.violations.push(toViolationRecord(v, r.globalPosition, true));
    }
    return memberGroup(e, hostState);
  };

  /** compares one group with its shot: a row when it changed (or is new); returns the event's time as a bigint once made */
  const groupRow = (r: RecordedEvent, g: GroupState, hostShots: HostShots, emit: Emit | undefined, timeNs: bigint | undefined): bigint | undefined => {
    const e = r.event;
    const byGroup = hostShots.byGroup;
    let shot = byGroup[g.group];
    if (shot !== undefined && unchanged(g, shot)) return timeNs;
    if (shot === undefined) {
      byGroup[g.group] = shot = shotOf(g);
      hostShots.count++;
    } else retake(g, shot);
    emit?.groups.push({
      host: e.host,
      group: g.group,
      at: { eventId: e.id, globalPosition: r.globalPosition, timeNs: (timeNs ??= BigInt(e.time)) },
      eventType: e.type,
      state: groupStateName(g),
      owner: g.userOwner === null ? '' : `${g.userOwner.kind}:${g.userOwner.handle}`,
      domain: domainName(g),
      ownerCount: g.userOwner === null ? g.kernelDmaDrivers : g.userOwnerCount,
      devices: shot.members,
      // the object, serialized once by the insert (not into a string that the row's JSON escapes again); a copy of
      // what the fold changes in place later (the owner and container records are replaced, never changed)
      detail: {
        attachedDevices: shot.attachedDevices,
        extraOwners: g.extraOwners.length === 0 ? NO_OWNERS : [...g.extraOwners],
        kernelDmaDrivers: g.kernelDmaDrivers,
        userOwnerCount: g.userOwnerCount,
        legacyGroupOpen: g.legacyGroupOpen,
        container: g.container,
        pasids: hasKeys(g.pasids) ? { ...g.pasids } : NO_PASIDS,
        uncertain: g.uncertain,
        uncertainReason: g.uncertainReason,
        openViolations: g.openViolations,
      },
    });
    return timeNs;
  };

  const newEmit = (): Emit => ({ violations: [], groups: [], touchedDays: [] });
  let observed = newEmit();
  let observedEvents: RecordedEvent[] = [];
  let observedGroups: (number | null)[] = [];

  /**
   * Lets go of each crowded host's days but its latest DAYS_HELD_PER_HOST, once their rows are out: not a day whose
   * row waits for a drain, nor a partial one (the projector completes it from the sink before it writes)
   */
  const trimDays = (): void => {
    for (const host of crowded) {
      const hostDays = daysOf.get(host);
      if (hostDays === undefined) continue;
      const days = [...hostDays.keys()].sort();
      for (const day of days.slice(0, days.length - DAYS_HELD_PER_HOST)) {
        if (hostDays.get(day)!.listedIn === observed || partial.has(dayKey(host, day))) continue;
        hostDays.delete(day);
        if (day > (letGo.get(host) ?? '')) letGo.set(host, day);
      }
      if (hostDays.size <= DAYS_HELD_PER_HOST) crowded.delete(host);
    }
  };

  const rowOf = (acc: DayAccumulator): DailyCompliance => ({
    host: acc.host,
    day: acc.day,
    opened: acc.opened,
    closed: acc.closed,
    maxOpen: acc.maxOpen,
    openAtEnd: acc.openAtEnd,
    events: BigInt(acc.events),
    ...(acc.untimed ? {} : { firstNs: BigInt(acc.first), lastNs: BigInt(acc.last) }),
    ...(acc.snapshot === undefined ? {} : { snapshot: { timeNs: BigInt(acc.snapshot), iommu: acc.snapshotIommu } }),
    ...(acc.factsUnknown ? { factsUnknown: true as const } : {}),
    version: acc.version,
  });

  const outputOf = (events: RecordedEvent[], eventGroups: (number | null)[], emit: Emit): AnalyzerOutput => {
    const compliance: DailyCompliance[] = [];
    for (const acc of emit.touchedDays) {
      compliance.push(rowOf(acc));
      acc.listedIn = undefined;
    }
    // the rows are out: the days of these hosts but their latest ones may go
    emit.touchedDays = [];
    if (crowded.size > 0) trimDays();
    return { events, eventGroups, violations: emit.violations, groupStates: emit.groups, compliance };
  };

  /**
   * a day's counts after a checkpoint with the day as of the checkpoint added in (its end: the later part's); its
   * first and last event across both, unknown when the base row never had them
   */
  const withBase = (later: DailyCompliance, base: DailyCompliance): DailyCompliance => {
    const { firstNs: _f, lastNs: _l, snapshot: _s, ...rest } = later;
    const snapshot = later.snapshot === undefined || (base.snapshot !== undefined && base.snapshot.timeNs > later.snapshot.timeNs) ? base.snapshot : later.snapshot;
    return {
      ...rest,
      opened: later.opened + base.opened,
      closed: later.closed + base.closed,
      maxOpen: Math.max(later.maxOpen, base.maxOpen),
      events: later.events + base.events,
      ...(later.firstNs !== undefined && base.firstNs !== undefined ? { firstNs: base.firstNs < later.firstNs ? base.firstNs : later.firstNs } : {}),
      ...(later.lastNs !== undefined && base.lastNs !== undefined ? { lastNs: base.lastNs > later.lastNs ? base.lastNs : later.lastNs } : {}),
      ...(snapshot === undefined ? {} : { snapshot }),
      ...(base.factsUnknown === true ? { factsUnknown: true as const } : {}),
    };
  };

  /**
   * Lets go of the least recently used host states beyond maxResidentHosts, with their groups as last written (after
   * every event of a host they are its state's groups, so a seed gives them back as they were)
   */
  const trimHosts = (): void => {
    const letGoOf = (host: string): void => {
      states.delete(host);
      shots.delete(host);
      evicted.add(host);
    };
    for (const host of states.keys()) {
      if (states.size <= maxResident) break;
      letGoOf(host);
    }
    // following the live projection, a host's shots are held without its state (and pin the state they were
    // taken of): bounded too, or they grew with every host ever followed (issue 23: ~8.7 kB per host at 1e4)
    for (const host of shots.keys()) {
      if (shots.size <= maxResident) break;
      letGoOf(host);
    }
  };

  /** a host's state at the checkpoint: what the fold goes on from, the groups as last written, its open count */
  const seed = (host: string, state: FleetState): void => {
    states.delete(host);
    states.set(host, state);
    const hostState = state.hosts[host];
    const hostShots: HostShots = { byGroup: [], count: 0, of: state };
    if (hostState !== undefined) {
      for (const g of Object.values(hostState.groups)) {
        if (hostShots.byGroup[g.group] === undefined) hostShots.count++;
        hostShots.byGroup[g.group] = shotOf(g);
      }
    }
    shots.set(host, hostShots);
    // let go of and met again: its days and open count stayed in memory
    if (evicted.delete(host)) return;
    seeded.add(host);
    let open = 0;
    for (const key in state.violations.open) if (state.violations.open[key]!.host === host) open++;
    openByHost.set(host, open);
  };

  /** the fleet of per-host states as one (a view for callers that look; the fold never uses it) */
  const merged = (): FleetState => {
    const out: FleetState = { formatVersion: 1, hosts: {}, violations: { open: {}, closed: [], closedDropped: 0 }, eventCount: 0, lastPosition: null };
    for (const s of states.values()) {
      Object.assign(out.hosts, s.hosts);
      Object.assign(out.violations.open, s.violations.open);
      out.violations.closed.push(...s.violations.closed);
      out.violations.closedDropped += s.violations.closedDropped;
      out.eventCount += s.eventCount;
    }
    out.lastPosition = position > 0n ? position.toString() : null;
    return out;
  };

  return {
    skip: (r) => {
      if (r.globalPosition > position) step(r);
    },
    needsSeed: (host) => evicted.has(host) || (resumed && !seeded.has(host)),
    seed,
    partialDays: () => [...partial].map(([key, since]) => ({ host: key.slice(0, key.indexOf('\u0000')), day: key.slice(key.indexOf('\u0000') + 1), since })),
    heldDays: () => {
      let n = 0;
      for (const hostDays of daysOf.values()) n += hostDays.size;
      return n;
    },
    completeDays: (asked, bases, rows) => {
      const base = new Map(bases.map((b) => [`${b.host}\u0000${b.day}`, b]));
      const completing = new Set<string>();
      for (const { host, day } of asked) {
        const key = dayKey(host, day);
        const acc = daysOf.get(host)?.get(day);
        if (acc === undefined || !partial.delete(key)) continue;
        completing.add(key);
        const b = base.get(key);
        if (b === undefined) continue;
        const merged = withBase(rowOf(acc), b);
        Object.assign(acc, { opened: merged.opened, closed: merged.closed, maxOpen: merged.maxOpen, events: Number(merged.events) });
        acc.snapshot = merged.snapshot?.timeNs.toString();
        acc.snapshotIommu = merged.snapshot?.iommu ?? false;
        if (merged.factsUnknown === true) acc.factsUnknown = true;
        if (merged.firstNs === undefined || merged.lastNs === undefined) acc.untimed = true;
        else {
          acc.first = merged.firstNs.toString();
          acc.last = merged.lastNs.toString();
        }
      }
      return rows.map((r) => {
        const key = `${r.host}\u0000${r.day}`;
        const b = base.get(key);
        return completing.has(key) && b !== undefined ? withBase(r, b) : r;
      });
    },
    apply: (batch) => {
      const emit = newEmit();
      const events: RecordedEvent[] = [];
      const groups: (number | null)[] = [];
      for (const r of batch) {
        if (r.globalPosition <= position) continue;
        events.push(r);
        groups.push(step(r, emit));
      }
      trimHosts();
      return outputOf(events, groups, emit);
    },
    observe: (r, after, opened, closed, changed) => {
      if (r.globalPosition <= position) return;
      if (evicted.has(r.event.host)) throw new Error(`fleet analyzer: the groups of host ${r.event.host} were let go of and not seeded again`);
      observedEvents.push(r);
      observedGroups.push(rowsOf(r, after, opened, closed, observed, changed));
    },
    drain: () => {
      const out = outputOf(observedEvents, observedGroups, observed);
      trimHosts();
      observed = newEmit();
      observedEvents = [];
      observedGroups = [];
      return out;
    },
    pending: () => observedEvents.length,
    // the hosts held: their states (a fold) or, following the live projection, their groups as last written
    residentHosts: () => Math.max(states.size, shots.size),
    position: () => position,
    state: merged,
  };
};
