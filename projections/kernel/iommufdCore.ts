import { fdsOfDevice, fdsOnHwpt, pasidUsersOf } from './fdIndex.js';
import { groupDevices, nextObjectId, setDomain } from './kernel.js';
import { changeFd, putObject, removeObject, setGroupAttached, type ModelChanges } from './mutate.js';
import type { DeviceFdState, Domain, GroupState, IctxState, ModelState } from './types.js';

/**
 * iommufd object bookkeeping shared by the models that have an iommu_fd (upstream and the seed stages):
 * auto-domain search, hwpt user counting and freeing, joining and leaving a group's attachment. The checks
 * only read; the plans write the state in place (mutate.ts).
 */

/** auto hwpts of an IOAS, lowest id first (iommufd_device_auto_get_domain walks ioas->hwpt_list) */
export const autoHwptsOf = (ictx: IctxState, ioas: number): number[] => {
  const out: number[] = [];
  for (const [id, o] of ictx.objects) if (o.kind === 'hwpt' && o.auto && o.ioas === ioas) out.push(id);
  return out.sort((a, b) => a - b);
};

/** the hwpt the group's attached devices share (igroup->hwpt), if any: every attached fd of the group is on it */
export const groupHwpt = (state: ModelState, g: GroupState, devices: readonly string[] = g.attached): { ictx: string; hwpt: number } | null => {
  for (const device of devices) {
    if (!g.attached.includes(device)) continue;
    for (const fd of fdsOfDevice(state, device)) if (fd.ictx !== null && fd.hwpt !== null) return { ictx: fd.ictx, hwpt: fd.hwpt };
  }
  return null;
};

/** devices (fds) and PASIDs still using a hwpt, ignoring the fds in `leaving` */
export const hwptInUse = (state: ModelState, ictx: string, hwpt: number, leaving: readonly string[]): boolean => {
  for (const fd of fdsOnHwpt(state, ictx, hwpt)) if (!leaving.includes(fd.handle)) return true;
  return pasidUsersOf(state, ictx, hwpt) > 0;
};

const NO_FDS: readonly string[] = Object.freeze([]);

/** iommufd_hw_pagetable_put, after its users left it (their fds already off it): an auto hwpt nobody uses any more is destroyed (S1 step 6, S7) */
export const freeAutoHwpt = (state: ModelState, ictx: string, hwpt: number, changes: ModelChanges): void => {
  const o = state.ictxs.get(ictx)?.objects.get(hwpt);
  if (o && o.kind === 'hwpt' && o.auto && !hwptInUse(state, ictx, hwpt, NO_FDS)) removeObject(state, changes, ictx, hwpt);
};

export interface HwptTarget {
  readonly hwpt: number;
  readonly created: boolean;
}

/**
 * Resolve an IOAS to a hwpt: `prefer` first when it is an auto hwpt of that IOAS (the group's own),
 * else the first existing auto hwpt (domains are shared between compatible groups), else a new one.
 */
export const resolveIoas = (ictx: IctxState, ioas: number, prefer: number | null, taken: readonly number[] = []): HwptTarget => {
  const autos = autoHwptsOf(ictx, ioas);
  if (prefer !== null && autos.includes(prefer)) return { hwpt: prefer, created: false };
  const first = autos[0];
  if (first !== undefined) return { hwpt: first, created: false };
  return { hwpt: nextObjectId(ictx, taken), created: true };
};

/** the auto hwpt on `ioas` made when the target is new */
export const createdHwpt = (state: ModelState, ictx: string, ioas: number, target: HwptTarget, changes: ModelChanges): void => {
  if (target.created) putObject(state, changes, ictx, target.hwpt, { kind: 'hwpt', ioas, auto: true });
};

/** the first attach in a (sub-)group moves every listed device to the hwpt; others only join the list */
export const joinGroup = (state: ModelState, g: GroupState, fd: DeviceFdState, hwpt: number, moveDevices: readonly string[] | null, changes: ModelChanges): void => {
  if (moveDevices) setDomain(state, moveDevices, { kind: 'hwpt', ictx: fd.ictx ?? '', hwpt }, changes);
  changeFd(state, changes, fd, { hwpt });
  setGroupAttached(state, changes, g, [...g.attached, fd.device]);
};

/** no other device of `peers` (the group's) stays attached when `device` detaches */
export const isLastAttached = (state: ModelState, g: GroupState, device: string, peers: readonly string[] = namesOf(state, g)): boolean =>
  !g.attached.some((d) => d !== device && peers.includes(d));

/**
 * Detach one device: it leaves igroup->device_list; when the (sub-)group's list empties the devices go to
 * `emptyDomain` (blocking); its auto hwpt is freed when unused.
 */
export const leaveGroup = (state: ModelState, g: GroupState, fd: DeviceFdState, peers: readonly string[], emptyDomain: Domain, changes: ModelChanges): void => {
  // read before the writes: whether it is the last, and the hwpt the fd leaves
  const last = isLastAttached(state, g, fd.device, peers);
  const { ictx, hwpt } = fd;
  changeFd(state, changes, fd, { hwpt: null });
  setGroupAttached(state, changes, g, g.attached.filter((d) => d !== fd.device));
  if (last) setDomain(state, peers, emptyDomain, changes);
  if (ictx !== null && hwpt !== null) freeAutoHwpt(state, ictx, hwpt, changes);
};

/**
 * group device names the model knows, for setDomain over a whole group: the group's own list when it knows them
 * all (the common case: no copy per detach or unbind), else the known ones in the group's order
 */
export const namesOf = (state: ModelState, g: GroupState): readonly string[] => {
  for (const name of g.devices) if (!state.devices.has(name)) return groupDevices(state, g).map((d) => d.name);
  return g.devices;
};

