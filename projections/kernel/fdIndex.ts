import { emptyMap, ownMap, shareIfEmpty } from './sharedEmptyMap.js';
import type { DeviceFdState, GroupState, ModelState, Owner } from './types.js';

/**
 * The open device fds indexed by device and by attached hwpt, so the models' lookups ("the fds of this
 * device", "who is on this hwpt") cost the few fds concerned instead of a scan of every open fd of the host.
 * Derived data: the model's writers (mutate.ts) keep it in step with `state.fds`, nothing else writes it.
 * Callers don't depend on the order of the fds returned (checked against plain scans in fdIndex.unit.spec.ts).
 */
export interface FdIndex {
  /**
   * device → its open fds in open order. Lists, not Maps: an fd's open and close then make no hash table (V8
   * reallocates a Map's table when a delete empties it). No empty lists: the index is a function of `fds` alone
   * (a state read back from a snapshot rebuilds it and must equal the one folded)
   */
  readonly byDevice: Map<string, DeviceFdState[]>;
  /** ictx → hwpt → fds attached to it (no empty lists either) */
  readonly byHwpt: Map<string, Map<number, DeviceFdState[]>>;
  /** ictx → hwpt → how many PASID attachments of the groups that ictx owns use it (kept on every owner or PASID change) */
  readonly pasidHwpts: Map<string, Map<number, number>>;
  /** ictx → how many groups it owns (`group->owner`, kept on every owner change; absent: none) */
  readonly ownedGroups: Map<string, number>;
}

// most hosts have no open fd: the four Maps start as the shared empty Map (sharedEmptyMap.ts); this file's writers
// put one of the index's own in its place before a `set` (ownMap) and the shared one back when emptied (shareIfEmpty)
export const createFdIndex = (): FdIndex => ({ byDevice: emptyMap(), byHwpt: emptyMap(), pasidHwpts: emptyMap(), ownedGroups: emptyMap() });
const writable = (index: FdIndex): { -readonly [K in keyof FdIndex]: FdIndex[K] } => index;

const ownerIctx = (owner: Owner | null): string | null => (owner?.kind === 'ictx' ? owner.ictx : null);

// for-in, not Object.values: no array per call (most groups have no PASID attachment)
const countPasids = (index: FdIndex, ictx: string | null, pasids: Readonly<Record<string, number>>, by: 1 | -1): void => {
  if (ictx === null) return;
  for (const pasid in pasids) {
    const hwpt = pasids[pasid]!;
    let hwpts = index.pasidHwpts.get(ictx);
    if (!hwpts) writable(index).pasidHwpts = ownMap(index.pasidHwpts).set(ictx, (hwpts = new Map()));
    const n = (hwpts.get(hwpt) ?? 0) + by;
    if (n > 0) hwpts.set(hwpt, n);
    else hwpts.delete(hwpt);
    if (hwpts.size === 0) {
      index.pasidHwpts.delete(ictx);
      writable(index).pasidHwpts = shareIfEmpty(index.pasidHwpts);
    }
  }
};

const countOwned = (index: FdIndex, ictx: string | null, by: 1 | -1): void => {
  if (ictx === null) return;
  const n = (index.ownedGroups.get(ictx) ?? 0) + by;
  if (n > 0) {
    writable(index).ownedGroups = ownMap(index.ownedGroups).set(ictx, n);
    return;
  }
  index.ownedGroups.delete(ictx);
  writable(index).ownedGroups = shareIfEmpty(index.ownedGroups);
};

/** no PASID attachment: a new group's (shared, frozen: a group's PASIDs are replaced, never written in place: mutate.ts) */
export const NO_PASIDS: Readonly<Record<string, number>> = Object.freeze({});

/**
 * the index after a group's owner or PASID attachments changed from `prevOwner` and `prevPasids` (a new group: null and
 * NO_PASIDS) to `next`'s (the two passed apart, not as a record: the writers change the group in place)
 */
export const reindexGroup = (index: FdIndex, prevOwner: Owner | null, prevPasids: Readonly<Record<string, number>>, next: GroupState): void => {
  const before = ownerIctx(prevOwner);
  const after = ownerIctx(next.owner);
  if (before !== after) {
    countOwned(index, before, -1);
    countOwned(index, after, 1);
  }
  if (prevPasids === next.pasids && before === after) return;
  countPasids(index, before, prevPasids, -1);
  countPasids(index, after, next.pasids, 1);
};

/** how many groups `ictx` owns */
export const groupsOwnedBy = (state: ModelState, ictx: string): number => state.fdIndex.ownedGroups.get(ictx) ?? 0;

/** PASID attachments (of groups `ictx` owns) on a hwpt of `ictx` */
export const pasidUsersOf = (state: ModelState, ictx: string, hwpt: number): number => state.fdIndex.pasidHwpts.get(ictx)?.get(hwpt) ?? 0;

const NONE: readonly DeviceFdState[] = Object.freeze([]);

/** the entry of `handle` removed (the rest keep their order; no splice, which returns a new array); the list's length after */
const drop = (fds: DeviceFdState[], handle: string): number => {
  let at = 0;
  while (at < fds.length && fds[at]!.handle !== handle) at += 1;
  if (at === fds.length) return at;
  for (let i = at + 1; i < fds.length; i++) fds[i - 1] = fds[i]!;
  fds.length -= 1;
  return fds.length;
};

/** `fd` off the list of the hwpt it is attached to (before its ctx or hwpt changes) */
export const dropFdHwpt = (index: FdIndex, fd: DeviceFdState): void => {
  if (fd.ictx === null || fd.hwpt === null) return;
  const hwpts = index.byHwpt.get(fd.ictx);
  const fds = hwpts?.get(fd.hwpt);
  if (!hwpts || !fds || drop(fds, fd.handle) > 0) return;
  hwpts.delete(fd.hwpt);
  if (hwpts.size > 0) return;
  index.byHwpt.delete(fd.ictx);
  writable(index).byHwpt = shareIfEmpty(index.byHwpt);
};

/** `fd` on the list of the hwpt it is attached to (after its ctx or hwpt changed) */
export const addFdHwpt = (index: FdIndex, fd: DeviceFdState): void => {
  if (fd.ictx === null || fd.hwpt === null) return;
  let hwpts = index.byHwpt.get(fd.ictx);
  if (!hwpts) writable(index).byHwpt = ownMap(index.byHwpt).set(fd.ictx, (hwpts = new Map()));
  const fds = hwpts.get(fd.hwpt);
  if (fds) fds.push(fd);
  else hwpts.set(fd.hwpt, [fd]);
};

/**
 * A new open fd indexed. The lists hold the fd records themselves, which the writers change in place (mutate.ts):
 * a list a lookup returned is the index's own, read it before the next change is applied.
 */
export const indexFdOpened = (index: FdIndex, fd: DeviceFdState): void => {
  const fds = index.byDevice.get(fd.device);
  if (fds) fds.push(fd);
  else writable(index).byDevice = ownMap(index.byDevice).set(fd.device, [fd]);
  addFdHwpt(index, fd);
};

/**
 * `fd` indexed after it took the place of an open fd of the same handle in `fds` (the old one already out of the
 * index): its device's list in `fds` order, the order a snapshot's index is rebuilt in (stateJson.ts). A scan of
 * the host's fds, on a rare path: an open of a handle whose close was not recorded.
 */
export const indexFdReopened = (index: FdIndex, fds: ReadonlyMap<string, DeviceFdState>, fd: DeviceFdState): void => {
  const list: DeviceFdState[] = [];
  for (const f of fds.values()) if (f.device === fd.device) list.push(f);
  writable(index).byDevice = ownMap(index.byDevice).set(fd.device, list);
  addFdHwpt(index, fd);
};

/** a closed fd out of the index */
export const indexFdClosed = (index: FdIndex, fd: DeviceFdState): void => {
  const fds = index.byDevice.get(fd.device);
  if (fds && drop(fds, fd.handle) === 0) {
    index.byDevice.delete(fd.device);
    writable(index).byDevice = shareIfEmpty(index.byDevice);
  }
  dropFdHwpt(index, fd);
};

/** the open fds of a device */
export const fdsOfDevice = (state: ModelState, device: string): readonly DeviceFdState[] => state.fdIndex.byDevice.get(device) ?? NONE;

/** the fds attached to a hwpt of an ictx */
export const fdsOnHwpt = (state: ModelState, ictx: string, hwpt: number): readonly DeviceFdState[] => state.fdIndex.byHwpt.get(ictx)?.get(hwpt) ?? NONE;

/** how many fds are open through the legacy group path (GET_DEVICE_FD) on the group's devices (counted: no list made) */
export const groupPathFdCount = (state: ModelState, g: GroupState): number => {
  let n = 0;
  for (const d of g.devices) for (const f of fdsOfDevice(state, d)) if (f.via === 'group') n += 1;
  return n;
};
