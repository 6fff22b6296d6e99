import { dropFdHwpt, indexFdClosed, indexFdOpened, indexFdReopened, addFdHwpt, reindexGroup, NO_PASIDS } from './fdIndex.js';
import { ownMap, shareIfEmpty } from './sharedEmptyMap.js';
import type { Capabilities, ContainerState, DeviceFdState, DeviceState, Domain, GroupState, IctxState, IommufdObject, ModelState, Owner } from './types.js';

/**
 * The only writers of a ModelState (issue 16, step 1): a transition changes the model's records in place, field
 * by field, through these. Each keeps the fd index (fdIndex.ts), bumps `revision` (a decision is applied as
 * decided only to the state it was decided on) and tells a `ModelChanges` what changed. Records are typed
 * readonly everywhere else; a shared frozen record (NEW_IOAS, BLOCKING, NO_OWNERS, NO_ATTACHED, NO_PASIDS, DEFAULT_DOMAIN) is only
 * ever replaced in a field, never written through.
 */

type Writable<T> = { -readonly [K in keyof T]: T[K] };

// the Maps most hosts leave empty start as the shared empty Map (sharedEmptyMap.ts): these writers put one of the
// state's own in its place before a `set` (ownMap) and the shared one back when a delete empties it (shareIfEmpty)
const writable = (state: ModelState): Writable<ModelState> => state;

/** the same domain (a move to it calls no iommu op) */
export const sameDomain = (a: Domain, b: Domain): boolean => {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'default':
      return true;
    case 'blocking':
      return a.ictx === (b as typeof a).ictx;
    case 'hwpt':
      return a.ictx === (b as typeof a).ictx && a.hwpt === (b as typeof a).hwpt;
    case 'container':
      return a.container === (b as typeof a).container;
    default: {
      const unreachable: never = a;
      return unreachable;
    }
  }
};

/** the same items in the same order */
export const sameList = <T>(a: readonly T[], b: readonly T[]): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

// the keys of `sameRecord`'s first record, reused: a comparison allocates nothing
const recordKeys: string[] = [];

/**
 * Two flat records with the same defined fields in the same order, each the same value (`===`): what JSON and
 * every reader see of them is the same, so a writer that would put `b` over `a` (a re-read that changed nothing)
 * keeps `a`. Undefined fields are skipped, as JSON skips them.
 */
export const sameRecord = (a: object, b: object): boolean => {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) if (x[k] !== undefined) recordKeys[n++] = k;
  let i = 0;
  for (const k in y) {
    const v = y[k];
    if (v === undefined) continue;
    if (i >= n || recordKeys[i] !== k || x[k] !== v) return false;
    i++;
  }
  return i === n;
};

/** what of a device record changes (`ModelChanges.device`) */
export const DEVICE_DOMAIN = 1;
export const DEVICE_GROUP = 2;
export const DEVICE_DRIVER = 4;
/** any other field (the reset fence, a snapshot's flags) */
export const DEVICE_OTHER = 8;

/** what of a group record changes (`ModelChanges.group`) */
export const GROUP_OWNERS = 1; // owner, extra owners, PASID attachments
export const GROUP_CONTAINER = 2;
export const GROUP_MEMBERS = 4; // devices, attached devices
export const GROUP_OTHER = 8; // owner_cnt, the group node, sub-groups, the default-domain mark
const GROUP_ALL = GROUP_OWNERS | GROUP_CONTAINER | GROUP_MEMBERS | GROUP_OTHER;
const DEVICE_ALL = DEVICE_DOMAIN | DEVICE_GROUP | DEVICE_DRIVER | DEVICE_OTHER;

/**
 * What a transition changed, told as it applies: the fleet projection marks the read-model records to derive
 * again (readModel.ts), the replay forgets the ids of freed objects, the simulator traces domain moves.
 */
export interface ModelChanges {
  caps(): void;
  /**
   * device `d` changed (told after the write; a removed one before it goes), `parts` of it, with its group and
   * domain before (a new device: its own)
   */
  device(model: ModelState, d: DeviceState, parts: number, fromGroup: number | null, fromDomain: Domain): void;
  /**
   * group `g` changed: told after the write with the `parts` that changed, and also before it, as it was, when
   * what it had (its owners, its container, its member list) changes (`parts` then names those)
   */
  group(model: ModelState, g: GroupState, parts: number): void;
  /** fd `fd` opened or changed (told after the write) or closed (told before it goes), bound to `fromIctx` before */
  fd(fd: DeviceFdState, fromIctx: string | null): void;
  /** an object set or (`gone`) removed */
  object(ictx: string, id: number, gone: boolean): void;
  /** a ctx opened, closed, or (`gone`) released */
  ictx(handle: string, gone: boolean): void;
  groupFd(handle: string): void;
  container(handle: string): void;
  /** an iommufd object freed (IOMMU_DESTROY, an auto hwpt let go, every object of a released ctx): the replay's id map */
  freed(ictx: string, id: number): void;
  /** a device moved to another domain, in the order they move: one attach_device_to_domain trace each (§2.1) */
  moved(device: string): void;
}

/** a reader of none of it (a replay that keeps no id map, a fold without a projection) */
export const NO_CHANGES: ModelChanges = Object.freeze({
  caps: () => {},
  device: () => {},
  group: () => {},
  fd: () => {},
  object: () => {},
  ictx: () => {},
  groupFd: () => {},
  container: () => {},
  freed: () => {},
  moved: () => {},
});

// ---- capabilities ----------------------------------------------------------------------------------------

export const setCaps = (state: ModelState, obs: ModelChanges, caps: Capabilities): void => {
  state.revision += 1;
  obs.caps();
  state.caps = caps;
};

// ---- devices --------------------------------------------------------------------------------------------

/** a device record put whole (a snapshot's read, a device first seen): the one it replaces is told as removed */
export const putDevice = (state: ModelState, obs: ModelChanges, next: DeviceState): void => {
  state.revision += 1;
  const prev = state.devices.get(next.name);
  if (prev) {
    const parts =
      (prev.domain !== next.domain ? DEVICE_DOMAIN : 0) | (prev.group !== next.group ? DEVICE_GROUP : 0) | (prev.driver !== next.driver ? DEVICE_DRIVER : 0) | DEVICE_OTHER;
    state.devices.set(next.name, next);
    obs.device(state, next, parts, prev.group, prev.domain);
    if (!sameDomain(prev.domain, next.domain)) obs.moved(next.name);
    return;
  }
  state.devices.set(next.name, next);
  obs.device(state, next, DEVICE_ALL, next.group, next.domain);
};

export const removeDevice = (state: ModelState, obs: ModelChanges, name: string): void => {
  state.revision += 1;
  const prev = state.devices.get(name);
  if (!prev) return;
  obs.device(state, prev, DEVICE_ALL, prev.group, prev.domain);
  state.devices.delete(name);
};

/** the device's domain (one attach_device_to_domain when it is another domain) */
export const setDeviceDomain = (state: ModelState, obs: ModelChanges, d: DeviceState, domain: Domain): void => {
  const from = d.domain;
  if (from === domain) return;
  state.revision += 1;
  (d as Writable<DeviceState>).domain = domain;
  obs.device(state, d, DEVICE_DOMAIN, d.group, from);
  if (!sameDomain(from, domain)) obs.moved(d.name);
};

export const setDeviceDriver = (state: ModelState, obs: ModelChanges, d: DeviceState, driver: string | null): void => {
  if (d.driver === driver) return;
  state.revision += 1;
  (d as Writable<DeviceState>).driver = driver;
  obs.device(state, d, DEVICE_DRIVER, d.group, d.domain);
};

/** between pci_dev_reset_iommu_prepare and _done (ops/reset.ts): absent when not fenced, as a snapshot writes it */
export const setDeviceResetting = (state: ModelState, obs: ModelChanges, d: DeviceState, resetting: boolean): void => {
  state.revision += 1;
  const w = d as Writable<DeviceState>;
  if (resetting) w.resetting = true;
  else delete w.resetting;
  obs.device(state, d, DEVICE_OTHER, d.group, d.domain);
};

// ---- groups ---------------------------------------------------------------------------------------------

/** a group record put whole (a snapshot's group first seen, a group read back) */
export const putGroup = (state: ModelState, obs: ModelChanges, g: GroupState): void => {
  state.revision += 1;
  const prev = state.groups.get(g.id);
  if (prev) obs.group(state, prev, GROUP_OWNERS | GROUP_CONTAINER | GROUP_MEMBERS);
  if (prev) reindexGroup(state.fdIndex, prev.owner, prev.pasids, g);
  else reindexGroup(state.fdIndex, null, NO_PASIDS, g);
  state.groups.set(g.id, g);
  obs.group(state, g, GROUP_ALL);
};

/** the fields of a group a transition changes (undefined: kept; null is a value) */
export type GroupChange = Partial<Omit<GroupState, 'id'>>;

/**
 * `g`'s fields in `change` written in place: the owners and PASIDs reindexed (fdIndex.ts), the reader told which
 * parts change. A change that sets nothing new is still told (as a replaced record was): its readers re-derive.
 * For the rarer changes (a snapshot's or hotplug's members, the group node, the container); the frequent ones
 * have their own writers below (a change object of many shapes makes every field read of it a slow lookup).
 */
export const changeGroup = (state: ModelState, obs: ModelChanges, g: GroupState, change: GroupChange): void => {
  state.revision += 1;
  const ownersLeave = (change.owner !== undefined && change.owner !== g.owner) || (change.extraOwners !== undefined && change.extraOwners !== g.extraOwners);
  const owners = ownersLeave || (change.pasids !== undefined && change.pasids !== g.pasids);
  const container = change.container !== undefined && change.container !== g.container;
  const membersLeave = change.devices !== undefined && change.devices !== g.devices;
  const parts = (owners ? GROUP_OWNERS : 0) | (container ? GROUP_CONTAINER : 0) | (membersLeave || (change.attached !== undefined && change.attached !== g.attached) ? GROUP_MEMBERS : 0) | GROUP_OTHER;
  // what the group had that it no longer has (its owners, container, members), told before it goes
  const leaving = (ownersLeave ? GROUP_OWNERS : 0) | (container ? GROUP_CONTAINER : 0) | (membersLeave ? GROUP_MEMBERS : 0);
  if (leaving !== 0) obs.group(state, g, leaving);
  // the index reads the owner and PASIDs as they were
  const ownerBefore = g.owner;
  const pasidsBefore = g.pasids;
  const w = g as Writable<GroupState>;
  if (change.devices !== undefined) w.devices = change.devices;
  if (change.subGroups !== undefined) w.subGroups = change.subGroups;
  if (change.ownerCnt !== undefined) w.ownerCnt = change.ownerCnt;
  if (change.owner !== undefined) w.owner = change.owner;
  if (change.extraOwners !== undefined) w.extraOwners = change.extraOwners;
  if (change.attached !== undefined) w.attached = change.attached;
  if (change.pasids !== undefined) w.pasids = change.pasids;
  if (change.groupFd !== undefined) w.groupFd = change.groupFd;
  if (change.container !== undefined) w.container = change.container;
  // a group without a default domain yet is rare (ops/probeDefer.ts): the mark is off the common shape
  if (change.noDefaultDomain === true) w.noDefaultDomain = true;
  else if (change.noDefaultDomain === false) delete w.noDefaultDomain;
  if (owners) reindexGroup(state.fdIndex, ownerBefore, pasidsBefore, g);
  obs.group(state, g, parts);
};

/** the group's attached devices (igroup->device_list: an attach joins, a detach leaves) */
export const setGroupAttached = (state: ModelState, obs: ModelChanges, g: GroupState, attached: readonly string[]): void => {
  state.revision += 1;
  (g as Writable<GroupState>).attached = attached;
  obs.group(state, g, GROUP_MEMBERS | GROUP_OTHER);
};

/** the group's owner_cnt alone (a DMA-API driver bound or unbound, another reference of the same owner) */
export const setGroupOwnerCount = (state: ModelState, obs: ModelChanges, g: GroupState, ownerCnt: number): void => {
  state.revision += 1;
  (g as Writable<GroupState>).ownerCnt = ownerCnt;
  obs.group(state, g, GROUP_OTHER);
};

/** who owns the group and how many references they hold (a claim, a release): the owners reindexed (fdIndex.ts) */
export const setGroupOwners = (state: ModelState, obs: ModelChanges, g: GroupState, owner: Owner | null, extraOwners: readonly Owner[], ownerCnt: number): void => {
  state.revision += 1;
  const w = g as Writable<GroupState>;
  w.ownerCnt = ownerCnt;
  if (owner === g.owner && extraOwners === g.extraOwners) {
    obs.group(state, g, GROUP_OTHER);
    return;
  }
  obs.group(state, g, GROUP_OWNERS);
  const ownerBefore = g.owner;
  w.owner = owner;
  w.extraOwners = extraOwners;
  reindexGroup(state.fdIndex, ownerBefore, g.pasids, g);
  obs.group(state, g, GROUP_OWNERS | GROUP_OTHER);
};

/** the group's PASID attachments (pasid → hwpt), a new record each time: the index counts the hwpts they use */
export const setGroupPasids = (state: ModelState, obs: ModelChanges, g: GroupState, pasids: Readonly<Record<string, number>>): void => {
  state.revision += 1;
  const pasidsBefore = g.pasids;
  (g as Writable<GroupState>).pasids = pasids;
  reindexGroup(state.fdIndex, g.owner, pasidsBefore, g);
  obs.group(state, g, GROUP_OWNERS | GROUP_OTHER);
};

// ---- device fds -----------------------------------------------------------------------------------------

export const putFd = (state: ModelState, obs: ModelChanges, fd: DeviceFdState): void => {
  state.revision += 1;
  const prev = state.fds.get(fd.handle);
  if (prev) {
    obs.fd(prev, prev.ictx);
    indexFdClosed(state.fdIndex, prev);
  }
  writable(state).fds = ownMap(state.fds).set(fd.handle, fd);
  // an open on a handle the state holds (its close not recorded) keeps the handle's place in `fds` (Map.set), and so in
  // a snapshot, whose index is rebuilt in `fds` order: the index puts it there too, not last, or a device's first
  // bound fd (`boundOf`) would be another one after a restart than in the fold it was written from
  if (prev) indexFdReopened(state.fdIndex, state.fds, fd);
  else indexFdOpened(state.fdIndex, fd);
  obs.fd(fd, null);
};

export const removeFd = (state: ModelState, obs: ModelChanges, handle: string): void => {
  state.revision += 1;
  const fd = state.fds.get(handle);
  if (!fd) return;
  obs.fd(fd, fd.ictx);
  indexFdClosed(state.fdIndex, fd);
  state.fds.delete(handle);
  writable(state).fds = shareIfEmpty(state.fds);
};

/** the fields of an fd a transition changes (undefined: kept) */
export type FdChange = Partial<Pick<DeviceFdState, 'ictx' | 'devId' | 'hwpt' | 'accessGranted'>>;

/** `fd`'s fields in `change` written in place; its place in the by-hwpt index follows (the by-device lists hold the record itself) */
export const changeFd = (state: ModelState, obs: ModelChanges, fd: DeviceFdState, change: FdChange): void => {
  state.revision += 1;
  const fromIctx = fd.ictx;
  const w = fd as Writable<DeviceFdState>;
  const ictx = change.ictx !== undefined ? change.ictx : fd.ictx;
  const hwpt = change.hwpt !== undefined ? change.hwpt : fd.hwpt;
  const moves = ictx !== fd.ictx || hwpt !== fd.hwpt;
  if (moves) dropFdHwpt(state.fdIndex, fd);
  w.ictx = ictx;
  w.hwpt = hwpt;
  if (change.devId !== undefined) w.devId = change.devId;
  if (change.accessGranted !== undefined) w.accessGranted = change.accessGranted;
  if (moves) addFdHwpt(state.fdIndex, fd);
  obs.fd(fd, fromIctx);
};

// ---- iommufd contexts and objects -----------------------------------------------------------------------

/** the ctx open (made, or a recorded one first seen) or closed while something holds it */
export const setIctxOpen = (state: ModelState, obs: ModelChanges, handle: string, open: boolean): void => {
  state.revision += 1;
  const ictx = state.ictxs.get(handle);
  if (ictx) (ictx as Writable<IctxState>).open = open;
  else writable(state).ictxs = ownMap(state.ictxs).set(handle, { handle, open, objects: new Map() });
  obs.ictx(handle, false);
};

/** the ctx released: every object it still holds is freed with it */
export const removeIctx = (state: ModelState, obs: ModelChanges, handle: string): void => {
  state.revision += 1;
  const ictx = state.ictxs.get(handle);
  if (ictx) for (const id of ictx.objects.keys()) obs.freed(handle, id);
  obs.ictx(handle, true);
  state.ictxs.delete(handle);
  writable(state).ictxs = shareIfEmpty(state.ictxs);
};

/** an object set at `id` (nothing when the model holds no such ctx) */
export const putObject = (state: ModelState, obs: ModelChanges, ictx: string, id: number, object: IommufdObject): void => {
  state.revision += 1;
  obs.object(ictx, id, false);
  state.ictxs.get(ictx)?.objects.set(id, object);
};

/** the object at `id` freed */
export const removeObject = (state: ModelState, obs: ModelChanges, ictx: string, id: number): void => {
  state.revision += 1;
  obs.freed(ictx, id);
  obs.object(ictx, id, true);
  state.ictxs.get(ictx)?.objects.delete(id);
};

// ---- the legacy group node and containers ---------------------------------------------------------------

/** the group node's fd open on `group`, or (null) closed */
export const setGroupFd = (state: ModelState, obs: ModelChanges, handle: string, group: number | null): void => {
  state.revision += 1;
  obs.groupFd(handle);
  if (group !== null) {
    writable(state).groupFds = ownMap(state.groupFds).set(handle, group);
    return;
  }
  state.groupFds.delete(handle);
  writable(state).groupFds = shareIfEmpty(state.groupFds);
};

export const putContainer = (state: ModelState, obs: ModelChanges, container: ContainerState): void => {
  state.revision += 1;
  obs.container(container.handle);
  writable(state).containers = ownMap(state.containers).set(container.handle, container);
};

export const changeContainer = (state: ModelState, obs: ModelChanges, c: ContainerState, change: Partial<Omit<ContainerState, 'handle'>>): void => {
  state.revision += 1;
  obs.container(c.handle);
  const w = c as Writable<ContainerState>;
  if (change.iommuType !== undefined) w.iommuType = change.iommuType;
  if (change.open !== undefined) w.open = change.open;
};

export const removeContainer = (state: ModelState, obs: ModelChanges, handle: string): void => {
  state.revision += 1;
  obs.container(handle);
  state.containers.delete(handle);
  writable(state).containers = shareIfEmpty(state.containers);
};
