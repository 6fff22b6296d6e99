import type { IommuEvent } from '../../../schemas/index.js';

/**
 * What an event touches, for the group/device indexes every adapter keeps beside the host streams.
 * Pure: adapters call it at append time and store one index row per key.
 */
export interface IndexKeys {
  readonly groups: readonly number[];
  readonly devices: readonly string[];
}

/** membership changes an event implies, so device-only events can also be indexed under their group */
export type MembershipChange =
  | { readonly kind: 'reset'; readonly members: readonly (readonly [device: string, group: number])[] }
  | { readonly kind: 'set'; readonly device: string; readonly group: number }
  | { readonly kind: 'remove'; readonly device: string; readonly group: number };

const uniq = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

/** the groups and devices named in the event's own data (the snapshot names many) */
export const indexKeysOf = (event: IommuEvent): IndexKeys => {
  if (event.type === 'TopologySnapshotTaken') {
    const groups = event.data.groups.map((g) => g.group);
    for (const d of event.data.devices) if (d.group !== null) groups.push(d.group);
    const devices = event.data.devices.map((d) => d.device as string);
    for (const g of event.data.groups) devices.push(...g.devices);
    return { groups: uniq(groups), devices: uniq(devices) };
  }
  const data = event.data as { group?: unknown; device?: unknown };
  return {
    groups: typeof data.group === 'number' ? [data.group] : [],
    devices: typeof data.device === 'string' ? [data.device] : [],
  };
};

/** how the event changes which group each device of its host belongs to (none for most events) */
export const membershipChangeOf = (event: IommuEvent): MembershipChange | undefined => {
  switch (event.type) {
    case 'TopologySnapshotTaken': {
      const members: [string, number][] = [];
      for (const g of event.data.groups) for (const d of g.devices) members.push([d, g.group]);
      for (const d of event.data.devices) if (d.group !== null) members.push([d.device, d.group]);
      return { kind: 'reset', members };
    }
    case 'DeviceAddedToGroup':
    case 'TraceAddDeviceToGroup':
      return { kind: 'set', device: event.data.device, group: event.data.group };
    case 'DeviceRemovedFromGroup':
    case 'TraceRemoveDeviceFromGroup':
      return { kind: 'remove', device: event.data.device, group: event.data.group };
    default:
      return undefined;
  }
};

/** index key strings as stored: `g:<group>` and `d:<device>` */
export const groupKey = (group: number): string => `g:${group}`;
export const deviceKey = (device: string): string => `d:${device}`;

/**
 * {@link IndexKeys} as one string, to cross a thread boundary cheaply. Groups are numbers and devices are
 * validated PCI addresses or mdev UUIDs, so neither separator can occur inside a value.
 */
export const encodeIndexKeys = (keys: IndexKeys): string => `${keys.groups.join('\u0001')}\u0000${keys.devices.join('\u0001')}`;

export const decodeIndexKeys = (encoded: string): IndexKeys => {
  const cut = encoded.indexOf('\u0000');
  const g = encoded.slice(0, cut);
  const d = encoded.slice(cut + 1);
  return { groups: g === '' ? [] : g.split('\u0001').map(Number), devices: d === '' ? [] : d.split('\u0001') };
};

/**
 * Folds a membership change into a host's device → group map: the one definition of membership for the
 * indexes (every adapter, `verify` and the evidence bundle). A removal names the group it leaves: it is
 * ignored when the device already belongs to another one. Returns whether the map changed.
 */
export const applyMembershipChange = (members: Map<string, number>, change: MembershipChange | undefined): boolean => {
  if (change === undefined) return false;
  if (change.kind === 'reset') {
    // a host's periodic topology snapshot mostly restates what it had: unchanged, nothing to rewrite (the
    // members list a device once per place the snapshot names it: the last one holds)
    const next = new Map(change.members);
    if (next.size === members.size && [...next].every(([d, g]) => members.get(d) === g)) return false;
    members.clear();
    for (const [d, g] of next) members.set(d, g);
    return true;
  }
  if (change.kind === 'set') {
    members.set(change.device, change.group);
    return true;
  }
  if (members.get(change.device) !== change.group) return false;
  members.delete(change.device);
  return true;
};

/** the groups a device-only event is also filed under: each named device's current group */
export const groupsViaDevices = (keys: IndexKeys, members: ReadonlyMap<string, number>): number[] => {
  if (keys.groups.length > 0) return [];
  const out: number[] = [];
  for (const d of keys.devices) {
    const g = members.get(d);
    if (g !== undefined) out.push(g);
  }
  return out;
};

/**
 * The index keys an event is filed under, given its host's device → group map, which it then updates: its
 * own groups and devices, and a device-only event also under each device's current group. The rule every
 * adapter (and `verify`, checking the SQLite index) applies.
 */
export const fileUnderKeys = (event: IommuEvent, members: Map<string, number>): Set<string> => {
  const own = indexKeysOf(event);
  const keys = new Set([...own.groups.map(groupKey), ...own.devices.map(deviceKey)]);
  for (const g of groupsViaDevices(own, members)) keys.add(groupKey(g));
  applyMembershipChange(members, membershipChangeOf(event));
  return keys;
};
