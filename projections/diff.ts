import type { IommuEvent } from '../schemas/index.js';
import type { FleetProjection } from './fleetProjection.js';
import { eventRefOf } from './fleetProjection.js';
import type { DeviceState, EventRef, FleetState, GroupState, HostState, Violation } from './types.js';

/** one field that differs: a dotted path inside the group or device, and both values (null = absent) */
export interface FieldChange {
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
}

// fields that are bookkeeping, not kernel state
const IGNORED = new Set(['openViolations']);

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const sameJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return false;
};

const diffRecords = (a: Record<string, unknown> | null | undefined, b: Record<string, unknown> | null | undefined, prefix: string, out: FieldChange[]): void => {
  const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
  for (const k of keys) {
    if (prefix === '' && IGNORED.has(k)) continue;
    const va = a?.[k] ?? null;
    const vb = b?.[k] ?? null;
    if (sameJson(va, vb)) continue;
    const path = prefix === '' ? k : `${prefix}.${k}`;
    // records keyed by ids (pasids) are diffed per key; arrays and small objects (domain, owner) as a whole
    if (isPlainObject(va) && isPlainObject(vb) && k === 'pasids') diffRecords(va, vb, path, out);
    else out.push({ path, before: va, after: vb });
  }
};

/**
 * What changed in one group between two states (either may be absent: the group appeared or went).
 * Used by the API's "difference between two times" and by replay's state comparison.
 */
export const diffGroupState = (a: GroupState | null | undefined, b: GroupState | null | undefined): FieldChange[] => {
  const out: FieldChange[] = [];
  diffRecords(a as unknown as Record<string, unknown>, b as unknown as Record<string, unknown>, '', out);
  return out;
};

export const diffDeviceState = (a: DeviceState | null | undefined, b: DeviceState | null | undefined): FieldChange[] => {
  const out: FieldChange[] = [];
  diffRecords(a as unknown as Record<string, unknown>, b as unknown as Record<string, unknown>, '', out);
  return out;
};

export interface HostChanges {
  readonly host: string;
  readonly groups: readonly { readonly group: number; readonly changes: readonly FieldChange[] }[];
  readonly devices: readonly { readonly device: string; readonly changes: readonly FieldChange[] }[];
}

/** every group and device of one host that differs between two states (groups and devices sorted) */
export const diffHostState = (a: HostState | null | undefined, b: HostState | null | undefined, host: string): HostChanges => {
  const groups: { group: number; changes: FieldChange[] }[] = [];
  const gk = new Set([...Object.keys(a?.groups ?? {}), ...Object.keys(b?.groups ?? {})]);
  for (const k of [...gk].sort((x, y) => Number(x) - Number(y))) {
    const changes = diffGroupState(a?.groups[k], b?.groups[k]);
    if (changes.length > 0) groups.push({ group: Number(k), changes });
  }
  const devices: { device: string; changes: FieldChange[] }[] = [];
  const dk = new Set([...Object.keys(a?.devices ?? {}), ...Object.keys(b?.devices ?? {})]);
  for (const k of [...dk].sort()) {
    const changes = diffDeviceState(a?.devices[k], b?.devices[k]);
    if (changes.length > 0) devices.push({ device: k, changes });
  }
  return { host, groups, devices };
};

/** what one event did: the group/device fields it changed and the violations it opened or closed */
export interface EventChange extends HostChanges {
  readonly event: EventRef;
  readonly type: IommuEvent['type'];
  readonly violationsOpened: readonly Violation[];
  readonly violationsClosed: readonly Violation[];
}

/**
 * Applies one event (mutating `state`, like evolve) and describes the change it made: for the API's
 * timeline ("events with the state change each made"). Copies the event's host before applying, so it
 * costs a host-sized copy per event: for timelines, not for bulk folding.
 */
export const evolveWithChanges = (projection: FleetProjection, state: FleetState, event: IommuEvent, position?: bigint): EventChange => {
  const before = state.hosts[event.host] ? structuredClone(state.hosts[event.host]!) : undefined;
  const closedBefore = state.violations.closed.length + state.violations.closedDropped;
  const opened: Violation[] = [];
  projection.evolve(state, event, position, opened);
  const changes = diffHostState(before, state.hosts[event.host], event.host);
  // the ones still open after the event (one it opened and closed again is among the closed)
  const violationsOpened = opened.filter((v) => state.violations.open[v.key] === v);
  const newlyClosed = state.violations.closed.length + state.violations.closedDropped - closedBefore;
  const violationsClosed = newlyClosed > 0 ? state.violations.closed.slice(-newlyClosed) : [];
  return { ...changes, event: eventRefOf(event, position), type: event.type, violationsOpened, violationsClosed };
};
