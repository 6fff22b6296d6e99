import type { DeviceFdState, GroupState, ModelState } from './types.js';

/**
 * The open device fds indexed by device and by attached hwpt, so the models' lookups ("the fds of this
 * device", "who is on this hwpt") cost the few fds concerned instead of a scan of every open fd of the host.
 * Derived data: `evolve` keeps it in step with `state.fds` on every FdSet, nothing else writes it.
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
  /** ictx → hwpt → how many PASID attachments of the groups that ictx owns use it (kept on every GroupSet) */
  readonly pasidHwpts: Map<string, Map<number, number>>;
  /** ictx → how many groups it owns (`group->owner`, kept on every GroupSet; absent: none) */
  readonly ownedGroups: Map<string, number>;
}

export const createFdIndex = (): FdIndex => ({ byDevice: new Map(), byHwpt: new Map(), pasidHwpts: new Map(), ownedGroups: new Map() });

const ownerIctx = (g: GroupState | undefined): string | null => (g?.owner?.kind === 'ictx' ? g.owner.ictx : null);

const countPasids = (index: FdIndex, g: GroupState, by: 1 | -1): void => {
  const ictx = ownerIctx(g);
  if (ictx === null) return;
  for (const hwpt of Object.values(g.pasids)) {
    let hwpts = index.pasidHwpts.get(ictx);
    if (!hwpts) index.pasidHwpts.set(ictx, (hwpts = new Map()));
    const n = (hwpts.get(hwpt) ?? 0) + by;
    if (n > 0) hwpts.set(hwpt, n);
    else hwpts.delete(hwpt);
    if (hwpts.size === 0) index.pasidHwpts.delete(ictx);
  }
};

const countOwned = (index: FdIndex, ictx: string | null, by: 1 | -1): void => {
  if (ictx === null) return;
  const n = (index.ownedGroups.get(ictx) ?? 0) + by;
  if (n > 0) index.ownedGroups.set(ictx, n);
  else index.ownedGroups.delete(ictx);
};

/** the index after a group changed from `prev` to `next` (its PASID attachments or its owner) */
export const reindexGroup = (index: FdIndex, prev: GroupState | undefined, next: GroupState): void => {
  const before = prev === undefined ? null : ownerIctx(prev);
  const after = ownerIctx(next);
  if (before !== after) {
    countOwned(index, before, -1);
    countOwned(index, after, 1);
  }
  if (prev !== undefined && prev.pasids === next.pasids && before === after) return;
  if (prev !== undefined) countPasids(index, prev, -1);
  countPasids(index, next, 1);
};

/** how many groups `ictx` owns */
export const groupsOwnedBy = (state: ModelState, ictx: string): number => state.fdIndex.ownedGroups.get(ictx) ?? 0;

/** PASID attachments (of groups `ictx` owns) on a hwpt of `ictx` */
export const pasidUsersOf = (state: ModelState, ictx: string, hwpt: number): number => state.fdIndex.pasidHwpts.get(ictx)?.get(hwpt) ?? 0;

const NONE: readonly DeviceFdState[] = Object.freeze([]);

/** `fd` in place of the entry of its handle, else appended (an update keeps its place, as in state.fds) */
const put = (fds: DeviceFdState[], fd: DeviceFdState): void => {
  for (let i = 0; i < fds.length; i++) {
    if (fds[i]!.handle === fd.handle) {
      fds[i] = fd;
      return;
    }
  }
  fds.push(fd);
};

/** the entry of `handle` removed (the rest keep their order; no splice, which returns a new array); the list's length after */
const drop = (fds: DeviceFdState[], handle: string): number => {
  let at = 0;
  while (at < fds.length && fds[at]!.handle !== handle) at += 1;
  if (at === fds.length) return at;
  for (let i = at + 1; i < fds.length; i++) fds[i - 1] = fds[i]!;
  fds.length -= 1;
  return fds.length;
};

const dropHwpt = (index: FdIndex, ictx: string, hwpt: number, handle: string): void => {
  const hwpts = index.byHwpt.get(ictx);
  const fds = hwpts?.get(hwpt);
  if (!hwpts || !fds || drop(fds, handle) > 0) return;
  hwpts.delete(hwpt);
  if (hwpts.size === 0) index.byHwpt.delete(ictx);
};

const addHwpt = (index: FdIndex, ictx: string, hwpt: number, fd: DeviceFdState): void => {
  let hwpts = index.byHwpt.get(ictx);
  if (!hwpts) index.byHwpt.set(ictx, (hwpts = new Map()));
  const fds = hwpts.get(hwpt);
  if (fds) put(fds, fd);
  else hwpts.set(hwpt, [fd]);
};

/**
 * The index after `state.fds` changed `handle` from `prev` to `next` (undefined/null: not open). The lists are
 * updated in place: a list a lookup returned is the index's own, read it before the next change is applied.
 */
export const reindexFd = (index: FdIndex, handle: string, prev: DeviceFdState | undefined, next: DeviceFdState | null): void => {
  if (prev && (!next || next.device !== prev.device)) {
    const fds = index.byDevice.get(prev.device);
    if (fds && drop(fds, handle) === 0) index.byDevice.delete(prev.device);
  }
  if (next) {
    const fds = index.byDevice.get(next.device);
    if (fds) put(fds, next);
    else index.byDevice.set(next.device, [next]);
  }
  if (prev && prev.ictx !== null && prev.hwpt !== null && !(next && next.ictx === prev.ictx && next.hwpt === prev.hwpt)) dropHwpt(index, prev.ictx, prev.hwpt, handle);
  if (next && next.ictx !== null && next.hwpt !== null) addHwpt(index, next.ictx, next.hwpt, next);
};

/** the open fds of a device */
export const fdsOfDevice = (state: ModelState, device: string): readonly DeviceFdState[] => state.fdIndex.byDevice.get(device) ?? NONE;

/** the fds attached to a hwpt of an ictx */
export const fdsOnHwpt = (state: ModelState, ictx: string, hwpt: number): readonly DeviceFdState[] => state.fdIndex.byHwpt.get(ictx)?.get(hwpt) ?? NONE;

/** fds opened through the legacy group path (GET_DEVICE_FD) on the group's devices */
export const groupPathFds = (state: ModelState, g: GroupState): DeviceFdState[] => g.devices.flatMap((d) => fdsOfDevice(state, d).filter((f) => f.via === 'group'));
