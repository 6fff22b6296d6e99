import type { ContainerState, DeviceFdState, DeviceState, GroupState } from './types.js';

/**
 * Copy-with-changes for the state records, used instead of `{ ...record, field }` on the replay's hot path:
 * on Node 20 a spread that overwrites a key takes V8's slow clone path (≈10× a literal of the same fields,
 * measured), and a replayed operation makes several such copies. Each helper builds the whole record in one
 * fixed field order (one hidden class). A patch field left out (undefined) keeps the old value; null is a value.
 */
const or = <T>(value: T | undefined, keep: T): T => (value === undefined ? keep : value);

export const deviceWith = (d: DeviceState, p: Partial<DeviceState>): DeviceState => {
  const next: DeviceState = {
    name: d.name,
    group: or(p.group, d.group),
    driver: or(p.driver, d.driver),
    bridge: d.bridge,
    requireDirect: d.requireDirect,
    maxPasids: d.maxPasids,
    pasidAttach: d.pasidAttach,
    domain: or(p.domain, d.domain),
    dirtyTracking: d.dirtyTracking,
  };
  // the rare SR-IOV and reset-fence fields (issue 19) stay off the common record's shape
  if (d.physfn === undefined && d.sriovPf === undefined && d.resetting === undefined && p.resetting === undefined) return next;
  const resetting = or(p.resetting, d.resetting);
  return { ...next, ...(d.physfn !== undefined ? { physfn: d.physfn } : {}), ...(d.sriovPf !== undefined ? { sriovPf: d.sriovPf } : {}), ...(resetting ? { resetting } : {}) };
};

export const groupWith = (g: GroupState, p: Partial<Omit<GroupState, 'id'>>): GroupState => {
  const next: GroupState = {
    id: g.id,
    devices: or(p.devices, g.devices),
    subGroups: or(p.subGroups, g.subGroups),
    ownerCnt: or(p.ownerCnt, g.ownerCnt),
    owner: or(p.owner, g.owner),
    extraOwners: or(p.extraOwners, g.extraOwners),
    attached: or(p.attached, g.attached),
    pasids: or(p.pasids, g.pasids),
    groupFd: or(p.groupFd, g.groupFd),
    container: or(p.container, g.container),
  };
  // a group without a default domain yet (issue 19, ops/probeDefer.ts) is rare: off the common shape
  return or(p.noDefaultDomain, g.noDefaultDomain) === true ? { ...next, noDefaultDomain: true } : next;
};

export const fdWith = (fd: DeviceFdState, p: Partial<Omit<DeviceFdState, 'handle' | 'device' | 'via' | 'noiommu'>>): DeviceFdState => {
  const next: DeviceFdState = {
    handle: fd.handle,
    device: fd.device,
    via: fd.via,
    ictx: or(p.ictx, fd.ictx),
    devId: or(p.devId, fd.devId),
    hwpt: or(p.hwpt, fd.hwpt),
    accessGranted: or(p.accessGranted, fd.accessGranted),
  };
  // a noiommu-vfioN fd (7.3, ops/noiommu.ts) keeps its mark
  return fd.noiommu ? { ...next, noiommu: true } : next;
};

/** a device fd as its open makes it: unbound; a group-path fd is granted access at once (vfio_df_group_open), a cdev fd at BIND */
export const openedFd = (handle: string, device: string, via: 'cdev' | 'group'): DeviceFdState => ({
  handle,
  device,
  via,
  ictx: null,
  devId: null,
  hwpt: null,
  accessGranted: via === 'group',
});

export const containerWith = (c: ContainerState, p: Partial<Omit<ContainerState, 'handle'>>): ContainerState => ({
  handle: c.handle,
  iommuType: or(p.iommuType, c.iommuType),
  open: or(p.open, c.open),
});
