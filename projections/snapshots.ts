import { ValidationError } from '../schemas/index.js';
import { fromKernelStateJson, toKernelStateJson, type KernelStateJson } from './kernel/stateJson.js';
import type { ModelState } from './kernel/types.js';
import type { FleetState, HostState } from './types.js';

/**
 * A serialisable copy of the fleet state at one point of the fold. JSON-safe: positions and times are
 * decimal strings, the state has no bigint, Map, Set or undefined, so `JSON.parse(JSON.stringify(s))`
 * restores it exactly. "As of T" = the newest snapshot at or before T plus a short fold.
 */
export interface FleetSnapshot {
  /**
   * 2: some host carries its kernel model state (`HostState.kernel`, written as stateJson.ts's JSON form:
   * every state the projection folds since issue 16); 1: none does (written before). Both are read; a
   * format-1 host's kernel is null (unknown) until a refold from the store.
   */
  readonly formatVersion: 1 | 2;
  /** events folded into `state` */
  readonly eventCount: number;
  /** store position of the last event folded (decimal string), null when none had one */
  readonly position: string | null;
  /** wall-clock ns of the newest event folded, over all hosts (decimal string) */
  readonly timeNs: string | null;
  readonly state: FleetState;
}

/**
 * A deep copy of the state. `evolve` mutates the state it is given (that is what makes >1M events/s
 * possible), so a caller that wants to keep a state across further folding keeps a clone.
 */
export const cloneState = (state: FleetState): FleetState => structuredClone(state);

const maxNs = (a: string | null, b: string | null): string | null => {
  if (a === null) return b;
  if (b === null) return a;
  return a.length !== b.length ? (a.length > b.length ? a : b) : a > b ? a : b;
};

const hasKernel = (state: FleetState): boolean => {
  for (const h of Object.values(state.hosts)) if (h.kernel != null) return true;
  return false;
};

const snapshotOf = (state: FleetState): FleetSnapshot => {
  let timeNs: string | null = null;
  for (const h of Object.values(state.hosts)) timeNs = maxNs(timeNs, h.lastTimeNs);
  return { formatVersion: hasKernel(state) ? 2 : 1, eventCount: state.eventCount, position: state.lastPosition, timeNs, state };
};

/** the state with each host's kernel model as JSON data (shallow copies of the hosts that have one) */
const withKernelJson = (state: FleetState): FleetState => {
  if (!hasKernel(state)) return state;
  const hosts: Record<string, HostState> = {};
  for (const [name, h] of Object.entries(state.hosts)) hosts[name] = h.kernel == null ? h : ({ ...h, kernel: toKernelStateJson(h.kernel) as unknown as ModelState });
  return { ...state, hosts };
};

/** a snapshot of the state as it is now (a deep copy: later folding does not change it) */
export const toSnapshot = (state: FleetState): FleetSnapshot => snapshotOf(cloneState(withKernelJson(state)));

/** the JSON text of a snapshot of the state as it is now, without an intermediate copy of the state */
export const toSnapshotJson = (state: FleetState): string => JSON.stringify(snapshotOf(withKernelJson(state)));

/** the hosts' kernel model states read back from their JSON form (a parsed format-2 snapshot), in place */
const readKernels = (state: FleetState): FleetState => {
  for (const h of Object.values(state.hosts)) {
    const k = h.kernel as unknown;
    if (k != null && !((k as ModelState).devices instanceof Map)) h.kernel = fromKernelStateJson(k as KernelStateJson);
  }
  return state;
};

/**
 * The state a snapshot holds, as a fresh copy the caller may fold on. Accepts the snapshot object or
 * its parsed JSON; a snapshot of another format is a ValidationError naming the field. `owned`: the
 * caller owns the snapshot (it just parsed it) and gets its state itself, not a copy.
 */
export const fromSnapshot = (snapshot: unknown, options: { readonly owned?: boolean } = {}): FleetState => {
  const s = snapshot as Partial<FleetSnapshot> | null;
  if (typeof s !== 'object' || s === null) throw new ValidationError('snapshot: expected an object', [{ path: 'snapshot', message: 'expected an object' }]);
  if (s.formatVersion !== 1 && s.formatVersion !== 2) {
    throw new ValidationError(`snapshot.formatVersion: expected 1 or 2, got ${JSON.stringify(s.formatVersion)}`, [
      { path: 'snapshot.formatVersion', message: `expected 1 or 2, got ${JSON.stringify(s.formatVersion)}` },
    ]);
  }
  const st = s.state as FleetState | undefined;
  if (typeof st !== 'object' || st === null || st.formatVersion !== 1 || typeof st.hosts !== 'object' || typeof st.violations !== 'object') {
    throw new ValidationError('snapshot.state: expected a fleet state of format 1', [{ path: 'snapshot.state', message: 'expected a fleet state of format 1' }]);
  }
  const state = options.owned ? st : cloneState(st);
  return s.formatVersion === 2 ? readKernels(state) : state;
};
