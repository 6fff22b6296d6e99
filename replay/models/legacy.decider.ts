import { isVfioDriverName } from '../../schemas/index.js';
import { groupPathFdCount } from '../../projections/kernel/fdIndex.js';
import { namesOf } from '../../projections/kernel/iommufdCore.js';
import {
  decideOpenGroupNode,
  decideSetIommu,
  groupFdOf,
  crash,
  decideCloseContainer,
  decideOpenContainer,
  decideUnbindDriver,
  fail,
  groupDevices,
  isLegacyViable,
  isManagedDma,
  ok,
  planCommonOnly,
  releaseHeldGroupAtLastFd,
  setDomain,
} from '../../projections/kernel/kernel.js';
import type { Transition, DeviceFdState, GroupState, ModelState, Operation, ProtocolDecider } from '../../projections/kernel/types.js';
import { createProtocolDecider } from '../../projections/kernel/decider.js';
import { isIctxObjectOperation } from '../../projections/kernel/operations.js';
import { openedFd } from '../../projections/kernel/records.js';
import { changeGroup, putFd, removeFd, setDeviceDriver, setGroupFd, setGroupOwnerCount, type ModelChanges } from '../../projections/kernel/mutate.js';
import { LEGACY_RULES, type RefusalRuleId, type RuleId } from '../../projections/kernel/rules.js';

/** VFIO before v5.19 (old drivers/vfio/vfio.c): group viability at GET_DEVICE_FD, the BOUND_DRIVER notifier */


const inUse = (g: GroupState): boolean => g.owner !== null;

/** driver bind: the notifier's BUG_ON when a non-viable driver lands in a group in use (S27, pre-v5.19) */
export const decideNotifierBind = (state: ModelState, device: string, driver: string, viable: (driver: string, bridge: boolean) => boolean, okRule: RuleId, crashRule: RuleId): Transition => {
  const d = state.devices.get(device);
  if (!d) return fail('common.driver.no-device');
  if (d.driver !== null) return fail('common.driver.already-bound');
  const g = d.group === null ? undefined : state.groups.get(d.group);
  if (g && inUse(g) && !viable(driver, d.bridge)) {
    return crash(crashRule, `BUG_ON: ${driver} bound to ${device} in group ${g.id}, which is in use by userspace`);
  }
  return ok(okRule, (changes) => {
    setDeviceDriver(state, changes, d, driver);
    if (g && !isManagedDma(state, driver) && g.owner === null) setGroupOwnerCount(state, changes, g, g.ownerCnt + 1);
  });
};

const legacyViableDriver = (driver: string, bridge: boolean): boolean => isLegacyViable({ driver, bridge } as Parameters<typeof isLegacyViable>[0]);

const release = (state: ModelState, g: GroupState, changes: ModelChanges): void => {
  changeGroup(state, changes, g, { container: null, owner: null });
  setDomain(state, namesOf(state, g), { kind: 'default' }, changes);
};

/**
 * v5.18 drivers/vfio/vfio.c: each GET_DEVICE_FD fd is a container user (`vfio_group_get_device_fd`:
 * atomic_inc(&group->container_users)) and its close drops it (`vfio_device_fops_release` →
 * `vfio_group_try_dissolve_container`). When the group fd closed before (`vfio_group_fops_release`: its own user
 * dropped, `opened` cleared, but `vfio_group_fops_open` stays -EBUSY while `group->container` is set), the last
 * device fd's close detaches the container (`__vfio_group_unset_container`) and the node is free again.
 * The state keeps that as the upstream model does: `groupFd` set with no fd naming it (the node busy).
 */
export const releaseHeldGroup = (state: ModelState, fd: DeviceFdState, changes: ModelChanges): void => releaseHeldGroupAtLastFd(state, fd, release, changes);

/** the group-fd / container ioctls as pre-v5.19 VFIO had them; the seed stages keep this uAPI */
export type GroupOperation = Extract<
  Operation,
  { kind: 'openGroup' | 'closeGroup' | 'groupStatus' | 'setContainer' | 'unsetContainer' | 'getDeviceFd' | 'openContainer' | 'setIommu' | 'closeContainer' }
>;
const GROUP_OPERATIONS: ReadonlySet<Operation['kind']> = new Set<GroupOperation['kind']>([
  'openGroup',
  'closeGroup',
  'groupStatus',
  'setContainer',
  'unsetContainer',
  'getDeviceFd',
  'openContainer',
  'setIommu',
  'closeContainer',
]);
export const isGroupOperation = (op: Operation): op is GroupOperation => GROUP_OPERATIONS.has(op.kind);

const LEGACY_OPEN_GROUP = { noVfioDevices: 'legacy.group.no-vfio-devices', alreadyOpen: 'legacy.group.already-open', opened: 'legacy.group.opened' } as const;

/** `cdevBound`: the rule refusing to open the node while a member is bound through its cdev (variants that have cdevs) */
export const decideLegacyGroupOp = (state: ModelState, op: GroupOperation, cdevBound?: RefusalRuleId): Transition => {
  switch (op.kind) {
    case 'openGroup':
      return decideOpenGroupNode(state, op, { ...LEGACY_OPEN_GROUP, ...(cdevBound ? { cdevBound } : {}) });
    case 'closeGroup': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('common.fd.ebadf');
      const held = groupPathFdCount(state, g) > 0;
      return ok('legacy.group.closed', (changes) => {
        setGroupFd(state, changes, op.groupFd, null);
        if (held) return;
        changeGroup(state, changes, g, { groupFd: null });
        release(state, g, changes);
      });
    }
    case 'groupStatus': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('common.fd.ebadf');
      return ok('legacy.group.status', null, { viable: groupDevices(state, g).every(isLegacyViable), containerSet: g.container !== null });
    }
    case 'setContainer': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('common.fd.ebadf');
      if (g.container) return fail('legacy.group.container-already-set');
      const c = state.containers.get(op.container);
      if (!c || !c.open) return state.ictxs.has(op.container) ? fail('legacy.group.not-a-container') : fail('common.fd.ebadf');
      const names = namesOf(state, g);
      if (c.iommuType !== null && names.some((n) => state.devices.get(n)?.requireDirect)) return fail('legacy.group.rmrr');
      return ok('legacy.group.set', (changes) => {
        changeGroup(state, changes, g, { container: { handle: op.container, kind: 'legacy' }, owner: { kind: 'container', container: op.container } });
        if (c.iommuType !== null) setDomain(state, names, { kind: 'container', container: op.container }, changes);
      });
    }
    case 'unsetContainer': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('common.fd.ebadf');
      if (!g.container) return fail('legacy.group.unset-none');
      if (groupPathFdCount(state, g) > 0) return fail('legacy.group.unset-busy');
      return ok('legacy.group.unset', (changes) => release(state, g, changes));
    }
    case 'getDeviceFd': {
      const g = groupFdOf(state, op.groupFd, op.group);
      if (!g) return fail('common.fd.ebadf');
      const c = g.container ? state.containers.get(g.container.handle) : undefined;
      if (!c || c.iommuType === null || !groupDevices(state, g).every(isLegacyViable)) return fail('legacy.get-device-fd.not-viable');
      const d = state.devices.get(op.device);
      if (!d || !g.devices.includes(op.device) || !isVfioDriverName(d.driver ?? '')) return fail('legacy.get-device-fd.no-device');
      return ok('legacy.get-device-fd.ok', (changes) => putFd(state, changes, openedFd(op.newFd, op.device, 'group')), { deviceFd: op.newFd });
    }
    case 'openContainer':
      return decideOpenContainer(state, op.container);
    case 'setIommu':
      return decideSetIommu(state, op, { alreadySet: 'legacy.container.iommu-already-set', noGroups: 'legacy.container.no-groups', requireDirect: 'legacy.group.rmrr', set: 'legacy.container.set-iommu' });
    case 'closeContainer':
      return decideCloseContainer(state, op.container);
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};

const decide = (op: Operation, state: ModelState): Transition => {
  if (isGroupOperation(op)) return decideLegacyGroupOp(state, op);
  // no iommufd ever opened: the handle names no open file
  if (isIctxObjectOperation(op)) return fail('common.fd.ebadf');
  switch (op.kind) {
    case 'bindDriver':
      return decideNotifierBind(state, op.device, op.driver, legacyViableDriver, 'legacy.probe.ok', 'legacy.notifier.bug-on');
    case 'unbindDriver':
      return decideUnbindDriver(state, op.device, op.driver);
    case 'openDevice':
      return fail('legacy.no-cdev');
    case 'accessDevice':
    case 'resetDevice':
    case 'createDmaBuf':
      return state.fds.has(op.deviceFd) ? ok('legacy.access') : fail('common.fd.ebadf');
    case 'bindIommufd':
    case 'attachPt':
    case 'detachPt':
      return state.fds.has(op.deviceFd) ? fail('legacy.no-iommufd-ioctl') : fail('common.fd.ebadf');
    case 'closeDevice': {
      const fd = state.fds.get(op.deviceFd);
      if (!fd) return fail('common.fd.ebadf');
      return ok('legacy.close', (changes) => {
        // the held group file counts the closing fd as its last user: released while it is still open
        releaseHeldGroup(state, fd, changes);
        removeFd(state, changes, op.deviceFd);
      });
    }
    case 'openIommufd':
      return fail('legacy.no-dev-iommu');
    case 'closeIommufd':
      return fail('common.fd.ebadf');
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};

export const legacyDecider: ProtocolDecider = createProtocolDecider({
  variant: 'legacy',
  description: 'VFIO before v5.19: type1 containers, viability at GET_DEVICE_FD (-EINVAL), BUG_ON on a kernel driver bound into a group in use',
  rules: LEGACY_RULES,
  transition: decide,
  plan: planCommonOnly,
});
