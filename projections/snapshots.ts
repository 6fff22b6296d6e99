import { ValidationError } from '../schemas/index.js';
import { fromKernelStateJson, toKernelStateJson, type KernelStateJson } from './kernel/stateJson.js';
import type { ModelState } from './kernel/types.js';
import { readModelFactsOf, readModelFromFacts, type ReadModelFactsJson } from './readModel.js';
import { topologyRecord } from './topologyRecords.js';
import type { FleetState, HostState } from './types.js';

/**
 * A serialisable copy of the fleet state at one point of the fold. JSON-safe: positions and times are
 * decimal strings, the state has no bigint, Map, Set or undefined, so `JSON.parse(JSON.stringify(s))`
 * restores it exactly. "As of T" = the newest snapshot at or before T plus a short fold.
 */
export interface FleetSnapshot {
  /**
   * 2: some host carries its kernel model state (`HostState.kernel`, written as stateJson.ts's JSON form:
   * every state the projection folds since issue 16); 1: none does (written before). 3: as 2, and some host
   * (one the fold built: readModel.ts `liveHost`) carries the facts of its group and device records
   * (`readModelFacts`) in place of the records, which are derived again on read. All are read; a format-1
   * host's kernel is null (unknown) until a refold from the store.
   */
  readonly formatVersion: 1 | 2 | 3;
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

/** a host as a snapshot holds it: its groups and devices null when `readModelFacts` describes them */
type HostJson = HostState & { readonly readModelFacts?: ReadModelFactsJson };

const snapshotOf = (state: FleetState): FleetSnapshot => {
  let timeNs: string | null = null;
  let facts = false;
  for (const h of Object.values(state.hosts)) {
    timeNs = maxNs(timeNs, h.lastTimeNs);
    if ((h as HostJson).readModelFacts !== undefined) facts = true;
  }
  return { formatVersion: facts ? 3 : hasKernel(state) ? 2 : 1, eventCount: state.eventCount, position: state.lastPosition, timeNs, state };
};

/**
 * A host with its kernel model as JSON data (a shallow copy), and, with `facts` (the JSON text) for a live host, the
 * facts of its group and device records in place of the records (`readModelFactsOf`): they are not read, so a
 * checkpoint neither derives the records pending nor keeps them, and its row is about 40% shorter. The fields stay
 * in their order. A snapshot object (`toSnapshot`) keeps the records: its readers read its state as it is.
 */
const hostJson = (h: HostState, facts: boolean): HostState => {
  if (h.kernel == null) return h;
  const recordFacts = facts ? readModelFactsOf(h, h.kernel) : undefined;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(h)) out[key] = recordFacts !== undefined && (key === 'groups' || key === 'devices') ? null : (h as unknown as Record<string, unknown>)[key];
  out.kernel = toKernelStateJson(h.kernel);
  if (recordFacts !== undefined) out.readModelFacts = recordFacts;
  return out as unknown as HostState;
};

/** the state with each host's kernel model as JSON data (see hostJson) */
const withKernelJson = (state: FleetState, facts: boolean): FleetState => {
  if (!hasKernel(state)) return state;
  const hosts: Record<string, HostState> = {};
  for (const [name, h] of Object.entries(state.hosts)) hosts[name] = hostJson(h, facts);
  return { ...state, hosts };
};

/** a snapshot of the state as it is now (a deep copy: later folding does not change it) */
export const toSnapshot = (state: FleetState): FleetSnapshot => snapshotOf(cloneState(withKernelJson(state, false)));

/** the JSON text of a snapshot of the state as it is now, without an intermediate copy of the state */
export const toSnapshotJson = (state: FleetState): string => JSON.stringify(snapshotOf(withKernelJson(state, true)));

/** a read host's topology records, the shared ones where they are alike (topologyRecords.ts), in place */
const shareTopology = (h: HostState): void => {
  const topology = h.topology as Record<string, HostState['topology'][string]> | undefined;
  if (typeof topology !== 'object' || topology === null) return;
  for (const [device, t] of Object.entries(topology)) topology[device] = topologyRecord(t.headerType, t.requireDirect, t.maxPasids, t.pasidAttach);
};

/**
 * The hosts' kernel model states read back from their JSON form (a parsed format-2 or 3 snapshot), in place, a
 * host written with its record facts (format 3) given its records again, a new object with the fields in their order,
 * and every host's topology records the shared ones where they are alike.
 */
const readHosts = (state: FleetState): FleetState => {
  for (const [name, h] of Object.entries(state.hosts)) {
    shareTopology(h);
    const k = h.kernel as unknown;
    if (k != null && !((k as ModelState).devices instanceof Map)) h.kernel = fromKernelStateJson(k as KernelStateJson);
    const facts = (h as HostJson).readModelFacts;
    if (facts === undefined) continue;
    if (h.kernel == null || typeof facts !== 'object' || facts === null || !Array.isArray(facts.groups) || !Array.isArray(facts.devices)) {
      const path = `snapshot.state.hosts.${name}.readModelFacts`;
      throw new ValidationError(`${path}: expected the facts of the host's records (groups and devices lists) beside its kernel model`, [{ path, message: 'expected groups and devices lists beside a kernel model' }]);
    }
    const records = readModelFromFacts(h.kernel, facts);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(h)) if (key !== 'readModelFacts') out[key] = key === 'groups' || key === 'devices' ? records[key] : value;
    state.hosts[name] = out as unknown as HostState;
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
  if (s.formatVersion !== 1 && s.formatVersion !== 2 && s.formatVersion !== 3) {
    throw new ValidationError(`snapshot.formatVersion: expected 1, 2 or 3, got ${JSON.stringify(s.formatVersion)}`, [
      { path: 'snapshot.formatVersion', message: `expected 1, 2 or 3, got ${JSON.stringify(s.formatVersion)}` },
    ]);
  }
  const st = s.state as FleetState | undefined;
  if (typeof st !== 'object' || st === null || st.formatVersion !== 1 || typeof st.hosts !== 'object' || typeof st.violations !== 'object') {
    throw new ValidationError('snapshot.state: expected a fleet state of format 1', [{ path: 'snapshot.state', message: 'expected a fleet state of format 1' }]);
  }
  const state = options.owned ? st : cloneState(st);
  return readHosts(state);
};
