import type { EventRef, FleetState, GroupState, Violation } from '../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../schemas/index.js';
import type { DailyCompliance, EventPoint, GroupStateChange, SinkBatch, ViolationRecord } from './analyticsSink.js';

/** the part of the fleet projection the analyzer drives (structurally `FleetProjection`) */
export interface FleetFold {
  initialState(): FleetState;
  /** `opened` receives the violations the event opened (see the fleet projection's evolve) */
  evolve(state: FleetState, event: IommuEvent, position: bigint | undefined, opened: Violation[]): FleetState;
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
   * closed. Its rows wait for {@link FleetAnalyzer.drain}; events at or before the position are ignored.
   */
  observe(recorded: RecordedEvent, state: FleetState, opened: readonly Violation[], closed: readonly Violation[]): void;
  /** the rows of the events observed since the last drain */
  drain(): AnalyzerOutput;
  /** events observed and not drained yet */
  pending(): number;
  /** the last global position folded (0n before any) */
  position(): bigint;
  state(): FleetState;
}

const NS_PER_DAY = 86_400_000_000_000n;
const dayOf = (timeNs: bigint): string => new Date(Number(timeNs / 1_000_000n)).toISOString().slice(0, 10);

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

const shotOf = (g: GroupState): GroupShot => ({
  twoOwners: g.twoOwners,
  ownerKind: g.userOwner?.kind,
  ownerHandle: g.userOwner?.handle,
  domainKind: g.domain.kind,
  hwptId: g.domain.hwptId,
  ictx: g.domain.ictx,
  container: g.domain.container,
  userOwnerCount: g.userOwnerCount,
  kernelDmaDrivers: g.kernelDmaDrivers,
  members: [...g.members],
  attachedDevices: [...g.attachedDevices],
  uncertain: g.uncertain,
  openViolations: g.openViolations,
});

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

const toPoint = (ref: EventRef, fallbackPosition: bigint): EventPoint => ({
  eventId: ref.eventId,
  globalPosition: ref.position !== undefined ? BigInt(ref.position) : fallbackPosition,
  timeNs: BigInt(ref.timeNs),
});

/**
 * The group a device event's device belonged to at that moment (the state after the event), for an event whose
 * data names a device but no group (DriverBound, a device fd opened...): the analytics row's group is then filled
 */
const memberGroup = (e: IommuEvent, host: FleetState['hosts'][string] | undefined): number | null => {
  const data = e.data as Record<string, unknown>;
  if (host === undefined || typeof data.group === 'number' || typeof data.device !== 'string') return null;
  return host.devices[data.device]?.group ?? null;
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
  day: string;
  opened: number;
  closed: number;
  maxOpen: number;
  openAtEnd: number;
  events: bigint;
  version: bigint;
}

export const createFleetAnalyzer = (fold: FleetFold): FleetAnalyzer => {
  let state = fold.initialState();
  // violations opened by the event being folded, in order (some may be closed again by it), as the fold
  // reports them: listing the open map per event cost time in proportion to every violation open (hardening #1)
  const openedNow: Violation[] = [];
  let position = 0n;
  // per host, per group: what was last written
  const shots = new Map<string, Map<number, GroupShot>>();
  // the UTC day of the previous event: consecutive events nearly always share it
  let dayStart = 0n;
  let dayEnd = 0n;
  let dayName = '';
  const dayOfEvent = (timeNs: bigint): string => {
    if (timeNs < dayStart || timeNs >= dayEnd) {
      dayStart = timeNs - (((timeNs % NS_PER_DAY) + NS_PER_DAY) % NS_PER_DAY);
      dayEnd = dayStart + NS_PER_DAY;
      dayName = dayOf(dayStart);
    }
    return dayName;
  };
  const openByHost = new Map<string, number>();
  const days = new Map<string, DayAccumulator>();

  const closedTotal = (): number => state.violations.closed.length + state.violations.closedDropped;

  type Emit = { violations: ViolationRecord[]; groups: GroupStateChange[]; touchedDays: Set<string> };

  // folds one event; `emit` collects rows (absent while skipping). Returns the group of the event's device then
  const step = (r: RecordedEvent, emit?: Emit): number | null => {
    const closedBefore = closedTotal();
    openedNow.length = 0;
    state = fold.evolve(state, r.event, r.globalPosition, openedNow);
    const newlyClosed = closedTotal() - closedBefore;
    // every violation this event opened, including one it closed again (reported by the fold, not a scan of the map)
    const opened: Violation[] = openedNow.length === 0 ? [] : [...openedNow];
    const closedList = state.violations.closed;
    const closed = newlyClosed > 0 ? closedList.slice(Math.max(0, closedList.length - newlyClosed)) : [];
    return rowsOf(r, state, opened, closed, emit);
  };

  // the rows of one folded event, from the state after it and the violations it opened and closed; returns the
  // group the event's device belonged to then (for an event that names a device and no group), else null
  const rowsOf = (r: RecordedEvent, after: FleetState, opened: readonly Violation[], closed: readonly Violation[], emit?: Emit): number | null => {
    const e = r.event;
    position = r.globalPosition;

    for (const v of opened) openByHost.set(v.host, (openByHost.get(v.host) ?? 0) + 1);
    for (const v of closed) openByHost.set(v.host, (openByHost.get(v.host) ?? 0) - 1);

    // daily compliance of every host whose open count moved, and of the event's own host
    const quiet = opened.length === 0 && closed.length === 0;
    const hostsTouched = quiet ? [e.host] : new Set<string>([e.host, ...opened.map((v) => v.host), ...closed.map((v) => v.host)]);
    const timeNs = BigInt(e.time);
    const today = dayOfEvent(timeNs);
    for (const host of hostsTouched) {
      const key = `${host}\u0000${today}`;
      const openedHere = quiet ? 0 : opened.filter((v) => v.host === host).length;
      const closedHere = quiet ? 0 : closed.filter((v) => v.host === host).length;
      const openNow = Math.max(0, openByHost.get(host) ?? 0);
      let acc = days.get(key);
      if (acc === undefined) {
        // a violation still open from an earlier day makes this day non-compliant too
        const openBefore = Math.max(0, openNow - openedHere + closedHere);
        acc = { day: today, opened: 0, closed: 0, maxOpen: openBefore, openAtEnd: openBefore, events: 0n, version: 0n };
        days.set(key, acc);
      }
      acc.opened += openedHere;
      acc.closed += closedHere;
      acc.maxOpen = Math.max(acc.maxOpen, openNow);
      acc.openAtEnd = openNow;
      if (host === e.host) acc.events += 1n;
      acc.version = r.globalPosition;
      emit?.touchedDays.add(key);
    }

    const hostState = after.hosts[e.host];
    if (hostState !== undefined) {
      let hostShots = shots.get(e.host);
      if (hostShots === undefined) shots.set(e.host, (hostShots = new Map()));
      for (const id in hostState.groups) {
        const g = hostState.groups[id];
        if (g === undefined) continue;
        const shot = hostShots.get(g.group);
        if (shot !== undefined && unchanged(g, shot)) continue;
        hostShots.set(g.group, shotOf(g));
        emit?.groups.push({
          host: e.host,
          group: g.group,
          at: { eventId: e.id, globalPosition: r.globalPosition, timeNs },
          eventType: e.type,
          state: groupStateName(g),
          owner: g.userOwner === null ? '' : `${g.userOwner.kind}:${g.userOwner.handle}`,
          domain: domainName(g),
          ownerCount: g.userOwner === null ? g.kernelDmaDrivers : g.userOwnerCount,
          devices: [...g.members],
          detail: JSON.stringify({
            attachedDevices: g.attachedDevices,
            extraOwners: g.extraOwners,
            kernelDmaDrivers: g.kernelDmaDrivers,
            userOwnerCount: g.userOwnerCount,
            legacyGroupOpen: g.legacyGroupOpen,
            container: g.container,
            pasids: g.pasids,
            uncertain: g.uncertain,
            uncertainReason: g.uncertainReason,
            openViolations: g.openViolations,
          }),
        });
      }
    }
    if (emit !== undefined) {
      // the open version, unless the same event also closed it (then only the closed version is written)
      for (const v of opened) if (v.closed?.eventId !== e.id) emit.violations.push(toViolationRecord(v, r.globalPosition, false));
      for (const v of closed) emit.violations.push(toViolationRecord(v, r.globalPosition, true));
    }
    return memberGroup(e, hostState);
  };

  const newEmit = (): Emit => ({ violations: [], groups: [], touchedDays: new Set<string>() });
  let observed = newEmit();
  let observedEvents: RecordedEvent[] = [];
  let observedGroups: (number | null)[] = [];

  const outputOf = (events: RecordedEvent[], eventGroups: (number | null)[], emit: Emit): AnalyzerOutput => {
      const compliance: DailyCompliance[] = [];
      for (const key of emit.touchedDays) {
        const acc = days.get(key);
        if (acc === undefined) continue;
        const host = key.slice(0, key.indexOf('\u0000'));
        compliance.push({
          host,
          day: acc.day,
          opened: acc.opened,
          closed: acc.closed,
          maxOpen: acc.maxOpen,
          openAtEnd: acc.openAtEnd,
          events: acc.events,
          version: acc.version,
        });
      }
      return { events, eventGroups, violations: emit.violations, groupStates: emit.groups, compliance };
  };

  return {
    skip: (r) => {
      if (r.globalPosition > position) step(r);
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
      return outputOf(events, groups, emit);
    },
    observe: (r, after, opened, closed) => {
      if (r.globalPosition <= position) return;
      observedEvents.push(r);
      observedGroups.push(rowsOf(r, after, opened, closed, observed));
    },
    drain: () => {
      const out = outputOf(observedEvents, observedGroups, observed);
      observed = newEmit();
      observedEvents = [];
      observedGroups = [];
      return out;
    },
    pending: () => observedEvents.length,
    position: () => position,
    state: () => state,
  };
};
