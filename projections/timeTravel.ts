import type { IommuEvent, RecordedEvent } from '../schemas/index.js';
import type { FleetProjection } from './fleetProjection.js';
import type { ClockStep, EventRef, FleetState, HostState, Violation } from './types.js';

/**
 * A point in the history: a store position (inclusive) or a wall-clock time in ns (inclusive).
 *
 * **"The state at time T"** (every time-travel path uses this one definition): a host's state after the
 * LAST event of the host, in recorded order, whose time is ≤ T. Events recorded before that one count even
 * when their clock says later than T (a clock that jumped ahead and came back): the answer is always a
 * prefix of the host's history, a state the kernel really was in, and no event dated ≤ T is hidden by a
 * neighbour dated in the future. Skipping the events dated after T instead would fold a history that never
 * happened (an ATTACH without the BIND before it). When the host's clock is monotonic this is simply
 * "every event with time ≤ T". When it is not, more than one moment of the history may claim T: the
 * answer then depends on a clock jump, and {@link clockStepsAcross} names the events whose time went
 * back across T (APIs report them beside the answer).
 */
export type AsOf = { readonly position: bigint } | { readonly timeNs: bigint };

/** what the folds accept: a bare event (tests, files) or a recorded one with its store position */
export type FoldInput = IommuEvent | RecordedEvent;

const isRecorded = (x: FoldInput): x is RecordedEvent => 'globalPosition' in x;

// decimal strings without leading zeros compare by length, then lexically: no bigint per event
const compareDecimal = (a: string, b: string): number => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0);

/** recorded order on one host: by store position when both refs have one, else by seq */
const isNotAfter = (a: EventRef, b: EventRef): boolean =>
  a.position !== undefined && b.position !== undefined ? compareDecimal(a.position, b.position) <= 0 : a.seq <= b.seq;

/**
 * The events of a host whose time went back from after T to T or before (the previous event is dated after
 * T, this one within it), oldest first: where "the state at T" depends on a clock jump. Empty when it does not.
 */
export const clockStepsAcross = (host: HostState, timeNs: bigint): ClockStep[] => {
  const t = timeNs.toString();
  return host.clock.wentBack.filter((c) => compareDecimal(c.event.timeNs, t) <= 0 && compareDecimal(c.previousTimeNs, t) > 0);
};

/**
 * The last event of the host (recorded order) whose time went back to T or before. Between steps back the
 * host's times never decrease, so once a fold of the host's stream has passed this event and meets an event
 * dated after T, no later event is dated ≤ T and the fold may stop; and every event recorded before it is in
 * the state at T. `null`: no such step (the first event dated after T ends the state at T); `undefined`: not
 * known, older steps were dropped by the bound.
 */
export const lastClockReturn = (host: HostState, timeNs: bigint): ClockStep | null | undefined => {
  const t = timeNs.toString();
  const steps = host.clock.wentBack;
  for (let i = steps.length - 1; i >= 0; i--) if (compareDecimal(steps[i]!.event.timeNs, t) <= 0) return steps[i]!;
  return host.clock.wentBackDropped > 0 ? undefined : null;
};

/**
 * True when the event a ref names is in the state at `at`: by store position (a ref without one counts);
 * by time, under the definition of {@link AsOf}: dated ≤ T, or recorded before the host's last step back to
 * T or before. Without `host` (the host's state folded past the ref) a time is compared alone.
 */
export const isAtOrBefore = (ref: EventRef, at: AsOf, host?: HostState): boolean =>
  isInStateAt(ref, at, () => (host && 'timeNs' in at ? lastClockReturn(host, at.timeNs) : null));

/** {@link isAtOrBefore} with the host's last step back to T looked up only when needed (and by the caller's cache) */
const isInStateAt = (ref: EventRef, at: AsOf, back: () => ClockStep | null | undefined): boolean => {
  if ('position' in at) return ref.position === undefined ? true : BigInt(ref.position) <= at.position;
  if (compareDecimal(ref.timeNs, at.timeNs.toString()) <= 0) return true;
  const step = back();
  return step !== null && step !== undefined && isNotAfter(ref, step.event);
};

export interface FoldOptions {
  /** fold on this state (mutated in place) instead of a fresh one */
  readonly state?: FleetState;
  /** stop at this point: events after it are skipped */
  readonly until?: AsOf;
}

/**
 * One folding step per input; `false` once a position bound is passed (the rest can be skipped). With a
 * time bound, a host's events dated after it wait until a later event of the host dated within it shows
 * they belong to the state at T (the definition of {@link AsOf}); those still waiting at the end do not.
 */
export const createFolder = (projection: FleetProjection, options: FoldOptions) => {
  let state = options.state ?? projection.initialState();
  const until = options.until;
  const untilText = until && 'timeNs' in until ? until.timeNs.toString() : '';
  const waiting = new Map<string, { event: IommuEvent; position: bigint | undefined }[]>();
  return {
    step(item: FoldInput): boolean {
      const event = isRecorded(item) ? item.event : item;
      const position = isRecorded(item) ? item.globalPosition : undefined;
      if (until) {
        if ('position' in until) {
          if (position !== undefined && position > until.position) return false;
        } else if (compareDecimal(event.time, untilText) > 0) {
          const list = waiting.get(event.host);
          if (list) list.push({ event, position });
          else waiting.set(event.host, [{ event, position }]);
          return true;
        } else {
          const list = waiting.get(event.host);
          if (list) {
            waiting.delete(event.host);
            for (const w of list) state = projection.evolve(state, w.event, w.position);
          }
        }
      }
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
 * order is position order); as a time, each host is folded up to its last event dated within it (see
 * {@link AsOf}), so the scan goes on to the end.
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

/**
 * Violations open at `at`, from the intervals a later state recorded: opened at or before `at` and not
 * closed by then (by time, under the definition of {@link AsOf}, from the hosts' clock steps the state
 * recorded). Works on any state that has folded past `at` (closed ones dropped by the bound aside).
 */
export const violationsAt = (state: FleetState, at: AsOf, filter: { host?: string; group?: number } = {}): Violation[] => {
  const out: Violation[] = [];
  // one look-up of each host's last clock step back to T per call, not one per violation
  const steps = new Map<string, ClockStep | null | undefined>();
  const consider = (v: Violation): void => {
    if (filter.host !== undefined && v.host !== filter.host) return;
    if (filter.group !== undefined && v.group !== filter.group) return;
    const back = (): ClockStep | null | undefined => {
      if (!steps.has(v.host)) {
        const host = state.hosts[v.host];
        steps.set(v.host, host && 'timeNs' in at ? lastClockReturn(host, at.timeNs) : null);
      }
      return steps.get(v.host);
    };
    if (isInStateAt(v.opened, at, back) && (v.closed === undefined || !isInStateAt(v.closed, at, back))) out.push(v);
  };
  for (const v of state.violations.closed) consider(v);
  for (const v of Object.values(state.violations.open)) consider(v);
  return out;
};
