import { createFdIndex, indexFdOpened, NO_PASIDS, reindexGroup } from './fdIndex.js';
import { DEFAULT_DOMAIN, NO_ATTACHED, NO_OWNERS } from './kernel.js';
import { shareIfEmpty } from './sharedEmptyMap.js';
import type { Capabilities, ContainerState, DeviceFdState, DeviceState, GroupState, IommufdObject, ModelState } from './types.js';

/**
 * A model state as plain JSON data (issue 16: the projection's snapshots are `JSON.stringify(state)`, so a
 * host's kernel state kept in them has no Map, bigint or undefined). The maps become arrays in their
 * insertion order (the order decisions iterate them in), IOVA bounds decimal strings; the fd index is
 * derived data and is rebuilt on the way back. `fromKernelStateJson(JSON.parse(JSON.stringify(
 * toKernelStateJson(s))))` decides and evolves as `s` does (stateJson.unit.spec.ts).
 */
export interface KernelStateJson {
  readonly format: 1;
  readonly caps: Capabilities;
  readonly devices: readonly DeviceState[];
  /** `extraOwners` absent: written before groups held them (none) */
  readonly groups: readonly (Omit<GroupState, 'extraOwners'> & { readonly extraOwners?: GroupState['extraOwners'] })[];
  /** `accessGranted` absent: written before fds held it (stateJson reads it from how the fd was opened and bound) */
  readonly fds: readonly (Omit<DeviceFdState, 'accessGranted'> & { readonly accessGranted?: boolean })[];
  readonly ictxs: readonly { readonly handle: string; readonly open: boolean; readonly objects: readonly (readonly [number, IommufdObjectJson])[] }[];
  readonly groupFds: readonly (readonly [string, number])[];
  readonly containers: readonly ContainerState[];
  readonly crashed: ModelState['crashed'];
  readonly revision: number;
}

/** an iommufd object with its IOVA areas as decimal strings */
export type IommufdObjectJson =
  | Exclude<IommufdObject, { kind: 'ioas' }>
  | { readonly kind: 'ioas'; readonly compat: boolean; readonly areas?: readonly (readonly [string, string])[]; readonly fileAreas?: readonly string[] };

const objectToJson = (o: IommufdObject): IommufdObjectJson =>
  o.kind === 'ioas' && o.areas !== undefined ? { ...o, areas: o.areas.map(([a, b]) => [a.toString(), b.toString()] as const) } : (o as IommufdObjectJson);

const objectFromJson = (o: IommufdObjectJson): IommufdObject =>
  o.kind === 'ioas' && o.areas !== undefined ? { ...o, areas: o.areas.map(([a, b]) => [BigInt(a), BigInt(b)] as const) } : (o as IommufdObject);

/** the state as JSON data; it shares the records with the state, which changes them in place: stringify it or copy it before the state moves on */
export const toKernelStateJson = (state: ModelState): KernelStateJson => ({
  format: 1,
  caps: state.caps,
  devices: [...state.devices.values()],
  groups: [...state.groups.values()],
  fds: [...state.fds.values()],
  ictxs: [...state.ictxs.values()].map((c) => ({ handle: c.handle, open: c.open, objects: [...c.objects].map(([id, o]) => [id, objectToJson(o)] as const) })),
  groupFds: [...state.groupFds],
  containers: [...state.containers.values()],
  crashed: state.crashed,
  revision: state.revision,
});

/** the model state a JSON form holds (its fd index rebuilt) */
export const fromKernelStateJson = (json: KernelStateJson): ModelState => {
  const fdIndex = createFdIndex();
  const groups = new Map<number, GroupState>();
  for (const read of json.groups) {
    // a state written before groups held extra owners (recorded second claims) has none. Empty lists and PASIDs are the
    // shared frozen ones a folded group holds (issue 23: a restart reads every host back from here)
    const extraOwners = read.extraOwners ?? NO_OWNERS;
    const g: GroupState = {
      ...read,
      extraOwners: extraOwners.length === 0 ? NO_OWNERS : extraOwners,
      attached: read.attached.length === 0 ? NO_ATTACHED : read.attached,
      pasids: Object.keys(read.pasids).length === 0 ? NO_PASIDS : read.pasids,
    };
    reindexGroup(fdIndex, null, NO_PASIDS, g);
    groups.set(g.id, g);
  }
  const fds = new Map<string, DeviceFdState>();
  for (const read of json.fds) {
    // a state written before fds held df->access_granted: a group-path fd has it from its open, a cdev fd from BIND
    const fd: DeviceFdState = { ...read, accessGranted: read.accessGranted ?? (read.via === 'group' || read.ictx !== null) };
    indexFdOpened(fdIndex, fd);
    fds.set(fd.handle, fd);
  }
  return {
    caps: json.caps,
    // copies: the state changes its records in place (mutate.ts), the JSON stays as it was read
    devices: new Map(json.devices.map((d) => [d.name, { ...d, domain: d.domain.kind === 'default' ? DEFAULT_DOMAIN : d.domain }])),
    groups,
    // the Maps a folded state leaves empty are the shared empty Map (sharedEmptyMap.ts): so are these when empty
    fds: shareIfEmpty(fds),
    fdIndex,
    ictxs: shareIfEmpty(new Map(json.ictxs.map((c) => [c.handle, { handle: c.handle, open: c.open, objects: new Map(c.objects.map(([id, o]) => [id, objectFromJson(o)])) }]))),
    groupFds: shareIfEmpty(new Map(json.groupFds)),
    containers: shareIfEmpty(new Map(json.containers.map((c) => [c.handle, { ...c }]))),
    crashed: json.crashed,
    revision: json.revision,
  };
};
