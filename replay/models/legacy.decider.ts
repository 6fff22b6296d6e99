import { isVfioDriverName } from '../../schemas/index.js';
import { groupPathFds } from './fdIndex.js';
import { namesOf } from './iommufdCore.js';
import {
  COMMON_RULES,
  crash,
  decideCloseContainer,
  decideOpenContainer,
  decideUnbindDriver,
  evolve,
  fail,
  groupDevices,
  initialState,
  isLegacyViable,
  isManagedDma,
  observe,
  ok,
  setDomain,
} from './kernel.js';
import type { Decision, DeviceFdState, Effect, GroupState, ModelState, Operation, ProtocolDecider } from './types.js';
import { containerWith, deviceWith, groupWith } from './records.js';

/** VFIO before v5.19 (old drivers/vfio/vfio.c): group viability at GET_DEVICE_FD, the BOUND_DRIVER notifier */
export const LEGACY_RULES = {
  ...COMMON_RULES,
  'legacy.probe.ok': 'driver core binds; VFIO only learns of it through the BOUND_DRIVER notifier',
  'legacy.notifier.bug-on':
    'vfio_iommu_group_notifier: IOMMU_GROUP_NOTIFY_BOUND_DRIVER for a non-viable driver in a group with container users → BUG_ON(vfio_group_nb_verify) — kernel crash',
  'legacy.no-cdev': 'no /dev/vfio/devices/vfioN before the VFIO cdev (v6.6): open fails -ENOENT',
  'legacy.no-dev-iommu': 'no /dev/iommu before iommufd (v6.2): open fails -ENOENT',
  'legacy.no-iommufd-ioctl': 'BIND/ATTACH/DETACH_IOMMUFD_PT do not exist: vfio-pci ioctl default → -ENOTTY',
  'legacy.access': 'a group-path device fd has full access',
  'legacy.close': 'device fd close',
  'legacy.group.no-vfio-devices': 'vfio_group_fops_open: no vfio device registered in the group → -ENODEV',
  'legacy.group.already-open': 'vfio_group_fops_open: group already opened → -EBUSY',
  'legacy.group.opened': 'group fd opened',
  'legacy.group.closed': 'group fd close: the group leaves its container (type1 detaches its domain)',
  'legacy.group.status': 'VFIO_GROUP_GET_STATUS: VIABLE iff every device is vfio_dev_viable (driver-less, vfio, pci-stub, bridge); CONTAINER_SET when set',
  'legacy.group.container-already-set': 'vfio_group_set_container: container_users → -EINVAL',
  'legacy.group.not-a-container': 'vfio_group_set_container: "is this really our fd?" → -EINVAL',
  'legacy.group.set': 'vfio_group_set_container: no viability check (§1.6); type1 attaches its domain if the backend is set',
  'legacy.group.rmrr': 'intel-iommu (2021): unmanaged-domain attach of an RMRR-locked device → -EPERM [UNCONFIRMED, not in the reference]',
  'legacy.group.unset-none': 'UNSET_CONTAINER with none set → -EINVAL',
  'legacy.group.unset-busy': 'UNSET_CONTAINER while device fds are open → -EBUSY',
  'legacy.group.unset': 'UNSET_CONTAINER: group back to its default domain',
  'legacy.get-device-fd.not-viable': 'vfio_group_get_device_fd: no container users, no iommu driver, or group not viable → -EINVAL (§1.6)',
  'legacy.get-device-fd.no-device': 'vfio_device_get_from_name: no such device → -ENODEV',
  'legacy.get-device-fd.ok': 'GET_DEVICE_FD: a device fd (several per device allowed)',
  'legacy.container.iommu-already-set': 'VFIO_SET_IOMMU: backend already set → -EINVAL',
  'legacy.container.no-groups': 'VFIO_SET_IOMMU: no group in the container → -EINVAL',
  'legacy.container.set-iommu': 'VFIO_SET_IOMMU: type1 attaches its domain to every group',
} as const;

const R = <K extends keyof typeof LEGACY_RULES>(k: K): K => k;

const groupFdOf = (state: ModelState, handle: string, group: number): GroupState | undefined =>
  state.groupFds.get(handle) === group ? state.groups.get(group) : undefined;
const inUse = (g: GroupState): boolean => g.owner !== null;

/** driver bind: the notifier's BUG_ON when a non-viable driver lands in a group in use (S27, pre-v5.19) */
export const decideNotifierBind = (state: ModelState, device: string, driver: string, viable: (driver: string, bridge: boolean) => boolean, okRule: string, crashRule: string): Decision => {
  const d = state.devices.get(device);
  if (!d) return fail('ENODEV', 'common.driver.no-device');
  if (d.driver !== null) return fail('EBUSY', 'common.driver.already-bound');
  const g = d.group === null ? undefined : state.groups.get(d.group);
  if (g && inUse(g) && !viable(driver, d.bridge)) {
    return crash(crashRule, `BUG_ON: ${driver} bound to ${device} in group ${g.id}, which is in use by userspace`);
  }
  const effects: Effect[] = [{ type: 'DeviceSet', device: deviceWith(d, { driver }) }];
  if (g && !isManagedDma(state, driver) && g.owner === null) effects.push({ type: 'GroupSet', group: groupWith(g, { ownerCnt: g.ownerCnt + 1 }) });
  return ok(okRule, effects);
};

const legacyViableDriver = (driver: string, bridge: boolean): boolean => isLegacyViable({ driver, bridge } as Parameters<typeof isLegacyViable>[0]);

const release = (state: ModelState, g: GroupState): Effect[] => [
  { type: 'GroupSet', group: groupWith(g, { container: null, owner: null }) },
  ...setDomain(state, namesOf(state, g), { kind: 'default' }),
];

/** the group-fd / container ioctls as pre-v5.19 VFIO had them; the seed stages keep this uAPI */
export type GroupOperation = Extract<Operation, { kind: 'openGroup' | 'closeGroup' | 'groupStatus' | 'setContainer' | 'unsetContainer' | 'getDeviceFd' | 'setIommu' }>;

export const decideLegacyGroupOp = (state: ModelState, op: GroupOperation): Decision => {
  switch (op.kind) {
    case 'openGroup': {
      const g = state.groups.get(op.group);
      if (!g || !g.devices.some((n) => isVfioDriverName(state.devices.get(n)?.driver ?? ''))) return fail('ENODEV', R('legacy.group.no-vfio-devices'));
      if (g.groupFd !== null) return fail('EBUSY', R('legacy.group.already-open'));
      return ok(R('legacy.group.opened'), [
        { type: 'GroupSet', group: groupWith(g, { groupFd: op.groupFd }) },
        { type: 'GroupFdSet', handle: op.groupFd, group: op.group },
      ]);
    }
    case 'closeGroup': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('EBADF', 'common.fd.ebadf');
      const gone: Effect = { type: 'GroupFdSet', handle: op.groupFd, group: null };
      if (groupPathFds(state, g).length > 0) return ok(R('legacy.group.closed'), [gone]);
      return ok(R('legacy.group.closed'), [gone, ...release(state, groupWith(g, { groupFd: null }))]);
    }
    case 'groupStatus': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('EBADF', 'common.fd.ebadf');
      return ok(R('legacy.group.status'), [], { viable: groupDevices(state, g).every(isLegacyViable), containerSet: g.container !== null });
    }
    case 'setContainer': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('EBADF', 'common.fd.ebadf');
      if (g.container) return fail('EINVAL', R('legacy.group.container-already-set'));
      const c = state.containers.get(op.container);
      if (!c || !c.open) return state.ictxs.has(op.container) ? fail('EINVAL', R('legacy.group.not-a-container')) : fail('EBADF', 'common.fd.ebadf');
      const names = namesOf(state, g);
      if (c.iommuType !== null && names.some((n) => state.devices.get(n)?.requireDirect)) return fail('EPERM', R('legacy.group.rmrr'));
      const group = groupWith(g, { container: { handle: op.container, kind: 'legacy' }, owner: { kind: 'container', container: op.container } });
      const domain = c.iommuType !== null ? setDomain(state, names, { kind: 'container', container: op.container }) : [];
      return ok(R('legacy.group.set'), [{ type: 'GroupSet', group }, ...domain]);
    }
    case 'unsetContainer': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('EBADF', 'common.fd.ebadf');
      if (!g.container) return fail('EINVAL', R('legacy.group.unset-none'));
      if (groupPathFds(state, g).length > 0) return fail('EBUSY', R('legacy.group.unset-busy'));
      return ok(R('legacy.group.unset'), release(state, g));
    }
    case 'getDeviceFd': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('EBADF', 'common.fd.ebadf');
      const c = g.container ? state.containers.get(g.container.handle) : undefined;
      if (!c || c.iommuType === null || !groupDevices(state, g).every(isLegacyViable)) return fail('EINVAL', R('legacy.get-device-fd.not-viable'));
      const d = state.devices.get(op.device);
      if (!d || !g.devices.includes(op.device) || !isVfioDriverName(d.driver ?? '')) return fail('ENODEV', R('legacy.get-device-fd.no-device'));
      const fd: DeviceFdState = { handle: op.newFd, device: op.device, via: 'group', ictx: null, devId: null, hwpt: null };
      return ok(R('legacy.get-device-fd.ok'), [{ type: 'FdSet', handle: op.newFd, fd }], { deviceFd: op.newFd });
    }
    case 'setIommu': {
      const c = state.containers.get(op.container);
      if (!c || !c.open) return fail('EBADF', 'common.fd.ebadf');
      if (c.iommuType !== null) return fail('EINVAL', R('legacy.container.iommu-already-set'));
      const groups = [...state.groups.values()].filter((g) => g.container?.handle === op.container);
      if (groups.length === 0) return fail('EINVAL', R('legacy.container.no-groups'));
      const effects: Effect[] = [{ type: 'ContainerSet', handle: op.container, container: containerWith(c, { iommuType: op.iommuType }) }];
      for (const g of groups) {
        const names = namesOf(state, g);
        if (names.some((n) => state.devices.get(n)?.requireDirect)) return fail('EPERM', R('legacy.group.rmrr'));
        effects.push(...setDomain(state, names, { kind: 'container', container: op.container }));
      }
      return ok(R('legacy.container.set-iommu'), effects);
    }
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};

const decide = (op: Operation, state: ModelState): Decision => {
  switch (op.kind) {
    case 'bindDriver':
      return decideNotifierBind(state, op.device, op.driver, legacyViableDriver, R('legacy.probe.ok'), R('legacy.notifier.bug-on'));
    case 'unbindDriver':
      return decideUnbindDriver(state, op.device, op.driver);
    case 'openDevice':
      return fail('ENOENT', R('legacy.no-cdev'));
    case 'accessDevice':
      return state.fds.has(op.deviceFd) ? ok(R('legacy.access')) : fail('EBADF', 'common.fd.ebadf');
    case 'bindIommufd':
    case 'attachPt':
    case 'detachPt':
      return state.fds.has(op.deviceFd) ? fail('ENOTTY', R('legacy.no-iommufd-ioctl')) : fail('EBADF', 'common.fd.ebadf');
    case 'closeDevice':
      return state.fds.has(op.deviceFd) ? ok(R('legacy.close'), [{ type: 'FdSet', handle: op.deviceFd, fd: null }]) : fail('EBADF', 'common.fd.ebadf');
    case 'openIommufd':
      return fail('ENOENT', R('legacy.no-dev-iommu'));
    case 'closeIommufd':
    case 'allocIoas':
    case 'allocHwpt':
    case 'destroy':
    case 'mapIoas':
    case 'unmapIoas':
      // no iommufd ever opened: the handle names no open file
      return fail('EBADF', 'common.fd.ebadf');
    case 'openGroup':
    case 'closeGroup':
    case 'groupStatus':
    case 'setContainer':
    case 'unsetContainer':
    case 'getDeviceFd':
    case 'setIommu':
      return decideLegacyGroupOp(state, op);
    case 'openContainer':
      return decideOpenContainer(op.container);
    case 'closeContainer':
      return decideCloseContainer(state, op.container);
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};

export const legacyDecider: ProtocolDecider = {
  variant: 'legacy',
  description: 'VFIO before v5.19: type1 containers, viability at GET_DEVICE_FD (-EINVAL), BUG_ON on a kernel driver bound into a group in use',
  rules: LEGACY_RULES,
  initialState,
  decide,
  evolve,
  observe,
};
