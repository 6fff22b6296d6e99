import type { EventRef, FleetState, GroupState, Violation } from '../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../schemas/index.js';
import type { DailyCompliance, EventPoint, GroupStateChange, SinkBatch, ViolationRecord } from './analyticsSink.js';

/** the part of the fleet projection the analyzer drives (structurally `FleetProjection`) */
export interface FleetFold {
  initialState(): FleetState;
  evolve(state: FleetState, event: IommuEvent, position?: bigint): FleetState;
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
  /** the last global position folded (0n before any) */
  position(): bigint;
  state(): FleetState;
}

const dayOf = (timeNs: string): string => new Date(Number(BigInt(timeNs) / 1_000_000n)).toISOString().slice(0, 10);

/** the kernel state of a group (protocol.md §1.0): K0, Kn, user-owned blocked, user-owned attached */
export const groupStateName = (g: GroupState): string => {
  if (g.twoOwners) return 'two-owners';
  if (g.userOwner === null) return g.kernelDmaDrivers > 0 ? 'kernel-dma' : 'kernel-idle';
  return g.domain.kind === 'blocking' || g.domain.kind === 'default' ? 'user-blocked' : 'user-attached';
};

const domainName = (g: GroupState): string =>
  g.domain.kind === 'hwpt' ? `hwpt:${g.domain.hwptId ?? '?'}${g.domain.ictx !== undefined ? `@${g.domain.ictx}` : ''}` : g.domain.kind === 'container' ? `container:${g.domain.container ?? '?'}` : g.domain.kind;

// cheap identity of what the dashboard shows of a group; a change emits a row
const signature = (g: GroupState): string =>
  `${groupStateName(g)}|${g.userOwner?.kind ?? ''}:${g.userOwner?.handle ?? ''}|${domainName(g)}|${g.userOwnerCount}|${g.kernelDmaDrivers}|${g.members.join(',')}|${g.attachedDevices.join(',')}|${g.uncertain ? 1 : 0}|${g.openViolations}`;

const toPoint = (ref: EventRef, fallbackPosition: bigint): EventPoint => ({
  eventId: ref.eventId,
  globalPosition: ref.position !== undefined ? BigInt(ref.position) : fallbackPosition,
  timeNs: BigInt(ref.timeNs),
});

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
  let position = 0n;
  const signatures = new Map<string, string>();
  const openByHost = new Map<string, number>();
  const days = new Map<string, DayAccumulator>();

  const closedTotal = (): number => state.violations.closed.length + state.violations.closedDropped;

  // folds one event; `emit` collects rows (absent while skipping)
  const step = (r: RecordedEvent, emit?: { violations: ViolationRecord[]; groups: GroupStateChange[]; touchedDays: Set<string> }): void => {
    const e = r.event;
    const openBefore = Object.keys(state.violations.open).length;
    const closedBefore = closedTotal();
    state = fold.evolve(state, e, r.globalPosition);
    position = r.globalPosition;
    const newlyClosed = closedTotal() - closedBefore;
    const openAfter = Object.keys(state.violations.open).length;
    const newlyOpened = openAfter - openBefore + newlyClosed;

    const opened: Violation[] = [];
    if (newlyOpened > 0) {
      for (const v of Object.values(state.violations.open)) if (v.opened.eventId === e.id) opened.push(v);
    }
    const closedList = state.violations.closed;
    const closed = newlyClosed > 0 ? closedList.slice(Math.max(0, closedList.length - newlyClosed)) : [];
    // a violation opened and closed by this very event went straight to the closed log
    for (const v of closed) if (v.opened.eventId === e.id) opened.push(v);

    for (const v of opened) openByHost.set(v.host, (openByHost.get(v.host) ?? 0) + 1);
    for (const v of closed) openByHost.set(v.host, (openByHost.get(v.host) ?? 0) - 1);

    // daily compliance of every host whose open count moved, and of the event's own host
    const hostsTouched = new Set<string>([e.host, ...opened.map((v) => v.host), ...closed.map((v) => v.host)]);
    const today = dayOf(e.time);
    for (const host of hostsTouched) {
      const key = `${host}\u0000${today}`;
      const openedHere = opened.filter((v) => v.host === host).length;
      const closedHere = closed.filter((v) => v.host === host).length;
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

    const hostState = state.hosts[e.host];
    if (hostState !== undefined) {
      for (const g of Object.values(hostState.groups)) {
        const key = `${e.host}\u0000${g.group}`;
        const sig = signature(g);
        if (signatures.get(key) === sig) continue;
        signatures.set(key, sig);
        emit?.groups.push({
          host: e.host,
          group: g.group,
          at: { eventId: e.id, globalPosition: r.globalPosition, timeNs: BigInt(e.time) },
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
  };

  return {
    skip: (r) => {
      if (r.globalPosition > position) step(r);
    },
    apply: (batch) => {
      const emit = { violations: [] as ViolationRecord[], groups: [] as GroupStateChange[], touchedDays: new Set<string>() };
      const events: RecordedEvent[] = [];
      for (const r of batch) {
        if (r.globalPosition <= position) continue;
        events.push(r);
        step(r, emit);
      }
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
      return { events, violations: emit.violations, groupStates: emit.groups, compliance };
    },
    position: () => position,
    state: () => state,
  };
};
