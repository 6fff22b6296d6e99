import { isVfioDriverName, LEGACY_ALLOWED_DRIVERS } from '../../schemas/index.js';
import { fdsOfDevice } from './fdIndex.js';
import { createdHwpt, groupHwpt, joinGroup, leaveGroup, namesOf, resolveIoas, autoHwptsOf } from './iommufdCore.js';
import { decideLegacyGroupOp, decideNotifierBind, LEGACY_RULES } from './legacy.decider.js';
import {
  COMMON_RULES,
  decideAllocIoas,
  decideCloseContainer,
  decideMapIoas,
  decideOpenContainer,
  decideOpenIommufd,
  decideUnbindDriver,
  evolve,
  fail,
  groupDevices,
  groupOfDevice,
  initialState,
  isManagedDma,
  liveIctx,
  nextObjectId,
  observe,
  ok,
  setDomain,
} from './kernel.js';
import type { Decision, DeviceFdState, Effect, GroupState, ModelState, Operation, ProtocolDecider, VariantName } from './types.js';
import { fdWith, groupWith } from './records.js';

/**
 * The 2021 design's three stages as written (seed-2021-iommu-fd-sketch.txt). Where the seed names no
 * errno the rule text says CHOICE and why; each choice is tested in seed.unit.spec.ts.
 * Stage-1: device nodes and iommu_fd binding only for singleton groups. Stage-2: any group, viability at
 * first bind, one IOASID per group. Stage-3: stage-2 where the topology's sub-groups may use different
 * IOASIDs. The old group uAPI is kept for legacy applications (pre-v5.19 semantics).
 */
export type SeedStage = 1 | 2 | 3;

export const SEED_RULES = {
  ...COMMON_RULES,
  ...LEGACY_RULES,
  'seed.probe.ok': 'driver core binds; the BOUND_DRIVER notifier re-checks viability of groups in use',
  'seed.notifier.bug-on':
    'stage-2 5c: the BOUND_DRIVER notifier finds a non-viable driver in a group in use → BUG_ON. CHOICE: the seed keeps BUG_ON ("might be eliminated" is only a hope), so the host crashes',
  'seed.cdev.no-node': 'no /dev/vfio/device node: the device is not bound to vfio → open fails -ENOENT',
  'stage1.cdev.singleton-only': 'stage-1 step 1: device nodes exist only for singleton groups → open fails -ENOENT at path lookup (CHOICE: the node is absent, not refused)',
  'seed.cdev.open': 'open(/dev/vfio/device): fd opened, no security context yet',
  'seed.access-before-bind': 'stage-1 step 4: mmap/ioctl blocked until bind. CHOICE: -EACCES, the first errno the seed suggests ("EACCESS or EAGAIN?")',
  'seed.access-granted': 'access after bind (or through the old group uAPI)',
  'seed.bind.group-fd': 'binding a group-path fd. CHOICE: -EINVAL (the seed binds device_fds from /dev/vfio/device only)',
  'seed.bind.group-node-open':
    'the old group node is open. CHOICE: -EBUSY; the seed wants the whole group in one security context, and Linux later chose -EBUSY (§1.4 #4)',
  'seed.bind.already-bound': 'this fd is already bound. CHOICE: -EINVAL, as Linux (the seed is silent)',
  'seed.bind.device-open': 'another fd of the device is bound. CHOICE: -EINVAL, as Linux',
  'stage1.bind.not-singleton': 'stage-1 step 5: bind verifies the group is not 1:N. CHOICE: -EINVAL (argument names a device the stage does not support)',
  'seed.bind.unsafe-interrupts': 'no interrupt remapping. CHOICE: -EPERM, as vfio_iommu_type1 did with allow_unsafe_interrupts=0',
  'seed.bind.other-iommufd':
    'the group is in another iommu_fd (or a container) security context. CHOICE: -EBUSY, because block_dma is per iommu_fd and the group is busy in another one (Linux says -EPERM)',
  'seed.bind.not-viable':
    'stage-2 5a: first bind checks viability (driver-less, vfio, or an allowed driver). CHOICE: -EPERM, the errno Linux later used for the same refusal',
  'seed.bind.rmrr':
    'attaching block_dma to an RMRR device: 2021 intel-iommu refused unmanaged-domain attach of RMRR-locked devices with -EPERM [UNCONFIRMED, not in the reference]',
  'seed.bind.first': 'stage-1 step 5 / stage-2 5b: the first bind attaches every group device to the iommu_fd block_dma domain',
  'seed.bind.same-iommufd': 'stage-2 step 6: binding other devices of the group (same iommu_fd) just succeeds',
  'seed.attach.group-fd': 'ATTACH on an old-uAPI fd. CHOICE: -ENOTTY, the ioctl is not part of that uAPI',
  'seed.attach.before-bind': 'attach before bind. CHOICE: -EACCES, the same gate as mmap before bind',
  'seed.attach.no-pasid': 'the seed has no PASID attach. CHOICE: -EOPNOTSUPP (iommufd convention for an unsupported value)',
  'seed.attach.enoent': 'unknown IOASID → -ENOENT (CHOICE: iommufd convention, the seed is silent)',
  'seed.attach.not-ioasid':
    'pt_id names no IOASID (a device, or an ioasid domain the seed never exposes). CHOICE: -EINVAL (iommufd convention for a bad field)',
  'seed.attach.already-attached':
    'attach on an attached device: the seed has no replace; the user must detach to block_dma first (S7). CHOICE: -EBUSY',
  'stage2.attach.single-ioasid':
    'stage-2 7a: all bound devices of a group attach to a single IOASID. CHOICE: -EINVAL, as vfio type1 refused incompatible domains',
  'stage3.attach.single-ioasid-per-subgroup':
    'stage-3: devices of one sub-group (reliably identifiable requester ids) still share one IOASID. CHOICE: -EINVAL as stage-2',
  'seed.attach.first': 'stage-2 7b: the first attach moves the whole (stage-3: sub-)group to the IOASID domain',
  'seed.attach.join': 'a further device joins the IOASID its (sub-)group already uses',
  'seed.detach.not-attached': 'detach of a device not attached. CHOICE: -EINVAL (the seed has no detach without attach; Linux returns 0)',
  'seed.detach.non-last': 'a non-last detach leaves the (sub-)group on the IOASID domain',
  'seed.detach.last': 'stage-2 7c: the last detach moves the (sub-)group back to block_dma',
  'seed.close.plain': 'device fd close of an unbound fd',
  'seed.close.unbind': 'stage-2 step 8: a device may be unbound while others stay bound; the group stays in the security context',
  'seed.close.last-unbind': 'stage-1 step 7 / stage-2 step 9: the last unbind detaches the group and re-attaches the default domain (MMIO zapped)',
  'seed.ictx.close-teardown':
    'close of the iommu_fd. CHOICE: tears down every binding of that iommu_fd (groups back to default, fds lose access) — the seed ties the security context to the iommu_fd (S9 contrasts this with Linux)',
  'seed.no-hwpt-alloc': 'IOMMU_HWPT_ALLOC: the seed has IOASIDs, no HWPT objects. CHOICE: -ENOTTY (iommufd convention for an unknown ioctl)',
  'seed.destroy.enoent': 'destroy of a missing id → -ENOENT',
  'seed.destroy.busy': 'destroy of a bound device or of an IOASID still attached. CHOICE: -EBUSY, as Linux',
  'seed.destroy.ok': 'IOASID destroyed',
  'seed.group.cdev-bound': 'old group node open while a member is bound to an iommu_fd. CHOICE: -EBUSY, the mutual exclusion Linux later added',
} as const;
type SeedRule = keyof typeof SEED_RULES;
const R = <K extends SeedRule>(k: K): K => k;

/** stage-2 5a viability: driver-less, a vfio driver, or an otherwise allowed driver (driver_managed_dma list) */
const seedViable = (state: ModelState, driver: string | null, bridge: boolean): boolean =>
  driver === null || isVfioDriverName(driver) || isManagedDma(state, driver) || LEGACY_ALLOWED_DRIVERS.includes(driver) || bridge;

/** stage-3: the sub-group of the device when the topology gives one; otherwise the whole group */
const scopeOf = (state: ModelState, g: GroupState, device: string, stage: SeedStage): string[] => {
  if (stage === 3 && g.subGroups) {
    const sub = g.subGroups.find((s) => s.includes(device));
    if (sub) return [...sub];
  }
  return namesOf(state, g);
};

const unbindEffects = (state: ModelState, fd: DeviceFdState, g: GroupState | undefined, stage: SeedStage): { effects: Effect[]; rule: SeedRule } => {
  const effects: Effect[] = [];
  let group = g;
  if (group && fd.hwpt !== null) {
    const left = leaveGroup(state, group, fd, scopeOf(state, group, fd.device, stage), { kind: 'blocking', ictx: fd.ictx ?? '' });
    effects.push(...left.effects);
    group = left.group;
  }
  if (fd.ictx !== null && fd.devId !== null) effects.push({ type: 'ObjectSet', ictx: fd.ictx, id: fd.devId, object: null });
  if (!group) return { effects, rule: R('seed.close.unbind') };
  if (group.ownerCnt > 1) {
    effects.push({ type: 'GroupSet', group: groupWith(group, { ownerCnt: group.ownerCnt - 1 }) });
    return { effects, rule: R('seed.close.unbind') };
  }
  effects.push({ type: 'GroupSet', group: groupWith(group, { ownerCnt: 0, owner: null, attached: [] }) }, ...setDomain(state, namesOf(state, group), { kind: 'default' }));
  return { effects, rule: R('seed.close.last-unbind') };
};

export const createSeedDecider = (stage: SeedStage, description: string): ProtocolDecider => {
  const variant = `stage${stage}` as VariantName;

  const bindIommufd = (state: ModelState, op: Extract<Operation, { kind: 'bindIommufd' }>): Decision => {
    const fd = state.fds.get(op.deviceFd);
    if (!fd) return fail('EBADF', 'common.fd.ebadf');
    if (fd.via === 'group') return fail('EINVAL', R('seed.bind.group-fd'));
    const g = groupOfDevice(state, fd.device);
    if (g?.groupFd != null) return fail('EBUSY', R('seed.bind.group-node-open'));
    if (fd.ictx !== null) return fail('EINVAL', R('seed.bind.already-bound'));
    const ictx = liveIctx(state, op.ictx);
    if (!ictx) return fail('EBADF', 'common.fd.ebadf');
    for (const other of fdsOfDevice(state, fd.device)) if (other.handle !== fd.handle && other.ictx !== null) return fail('EINVAL', R('seed.bind.device-open'));
    if (!g) return fail('ENODEV', R('stage1.bind.not-singleton'));
    if (stage === 1 && g.devices.length !== 1) return fail('EINVAL', R('stage1.bind.not-singleton'));
    if (state.caps.interruptRemapping === false && !state.caps.allowUnsafeInterrupts) return fail('EPERM', R('seed.bind.unsafe-interrupts'));
    const devId = nextObjectId(ictx);
    const bound: Effect[] = [
      { type: 'ObjectSet', ictx: op.ictx, id: devId, object: { kind: 'device', device: fd.device, deviceFd: fd.handle } },
      { type: 'FdSet', handle: fd.handle, fd: fdWith(fd, { ictx: op.ictx, devId, hwpt: null }) },
    ];
    if (g.owner !== null) {
      if (g.owner.kind !== 'ictx' || g.owner.ictx !== op.ictx) return fail('EBUSY', R('seed.bind.other-iommufd'));
      return ok(R('seed.bind.same-iommufd'), [{ type: 'GroupSet', group: groupWith(g, { ownerCnt: g.ownerCnt + 1 }) }, ...bound], { devId });
    }
    const members = groupDevices(state, g);
    if (!members.every((d) => seedViable(state, d.driver, d.bridge))) return fail('EPERM', R('seed.bind.not-viable'));
    if (members.some((d) => d.requireDirect)) return fail('EPERM', R('seed.bind.rmrr'));
    return ok(
      R('seed.bind.first'),
      [
        { type: 'GroupSet', group: groupWith(g, { owner: { kind: 'ictx', ictx: op.ictx }, ownerCnt: 1 }) },
        ...setDomain(state, namesOf(state, g), { kind: 'blocking', ictx: op.ictx }),
        ...bound,
      ],
      { devId },
    );
  };

  const boundFd = (state: ModelState, handle: string): { ok: true; fd: DeviceFdState } | { ok: false; decision: Decision } => {
    const fd = state.fds.get(handle);
    if (!fd) return { ok: false, decision: fail('EBADF', 'common.fd.ebadf') };
    if (fd.via === 'group') return { ok: false, decision: fail('ENOTTY', R('seed.attach.group-fd')) };
    if (fd.ictx === null) return { ok: false, decision: fail('EACCES', R('seed.attach.before-bind')) };
    return { ok: true, fd };
  };

  const attach = (state: ModelState, op: Extract<Operation, { kind: 'attachPt' }>): Decision => {
    const gate = boundFd(state, op.deviceFd);
    if (!gate.ok) return gate.decision;
    const fd = gate.fd;
    if (op.pasid !== undefined) return fail('EOPNOTSUPP', R('seed.attach.no-pasid'));
    const ictx = state.ictxs.get(fd.ictx!);
    const obj = ictx?.objects.get(op.ptId);
    if (!ictx || !obj) return fail('ENOENT', R('seed.attach.enoent'));
    if (obj.kind !== 'ioas') return fail('EINVAL', R('seed.attach.not-ioasid'));
    if (fd.hwpt !== null) return fail('EBUSY', R('seed.attach.already-attached'));
    const g = groupOfDevice(state, fd.device)!;
    const scope = scopeOf(state, g, fd.device, stage);
    const on = groupHwpt(state, g, scope);
    if (on !== null) {
      if (!autoHwptsOf(ictx, op.ptId).includes(on.hwpt)) {
        return fail('EINVAL', stage === 3 && g.subGroups ? R('stage3.attach.single-ioasid-per-subgroup') : R('stage2.attach.single-ioasid'));
      }
      return ok(R('seed.attach.join'), joinGroup(state, g, fd, on.hwpt, null), { ptId: on.hwpt });
    }
    // the seed's "IOASID domain": one per IOASID, created on first use (an auto hwpt, so ids line up with Linux)
    const target = resolveIoas(ictx, op.ptId, null);
    return ok(R('seed.attach.first'), [...createdHwpt(fd.ictx!, op.ptId, target), ...joinGroup(state, g, fd, target.hwpt, scope)], { ptId: target.hwpt });
  };

  const detach = (state: ModelState, op: Extract<Operation, { kind: 'detachPt' }>): Decision => {
    const gate = boundFd(state, op.deviceFd);
    if (!gate.ok) return gate.decision;
    const fd = gate.fd;
    if (op.pasid !== undefined) return fail('EOPNOTSUPP', R('seed.attach.no-pasid'));
    const g = groupOfDevice(state, fd.device);
    if (!g || fd.hwpt === null) return fail('EINVAL', R('seed.detach.not-attached'));
    const left = leaveGroup(state, g, fd, scopeOf(state, g, fd.device, stage), { kind: 'blocking', ictx: fd.ictx! });
    return ok(left.last ? R('seed.detach.last') : R('seed.detach.non-last'), left.effects);
  };

  const closeIommufd = (state: ModelState, handle: string): Decision => {
    if (!liveIctx(state, handle)) return fail('EBADF', 'common.fd.ebadf');
    const effects: Effect[] = [];
    for (const g of state.groups.values()) {
      if (g.owner?.kind === 'ictx' && g.owner.ictx === handle) {
        effects.push({ type: 'GroupSet', group: groupWith(g, { owner: null, ownerCnt: 0, attached: [] }) }, ...setDomain(state, namesOf(state, g), { kind: 'default' }));
      }
    }
    for (const fd of state.fds.values()) if (fd.ictx === handle) effects.push({ type: 'FdSet', handle: fd.handle, fd: fdWith(fd, { ictx: null, devId: null, hwpt: null }) });
    effects.push({ type: 'IctxSet', handle, open: null });
    return ok(R('seed.ictx.close-teardown'), effects);
  };

  const destroy = (state: ModelState, op: Extract<Operation, { kind: 'destroy' }>): Decision => {
    const ictx = liveIctx(state, op.ictx);
    if (!ictx) return fail('EBADF', 'common.fd.ebadf');
    const obj = ictx.objects.get(op.objectId);
    if (!obj || obj.kind === 'hwpt') return fail('ENOENT', R('seed.destroy.enoent'));
    if (obj.kind === 'device' || autoHwptsOf(ictx, op.objectId).length > 0) return fail('EBUSY', R('seed.destroy.busy'));
    return ok(R('seed.destroy.ok'), [{ type: 'ObjectSet', ictx: op.ictx, id: op.objectId, object: null }]);
  };

  const openGroup = (state: ModelState, op: Extract<Operation, { kind: 'openGroup' }>): Decision => {
    const g = state.groups.get(op.group);
    if (g && g.devices.some((d) => [...fdsOfDevice(state, d)].some((f) => f.via === 'cdev' && f.ictx !== null))) return fail('EBUSY', R('seed.group.cdev-bound'));
    return decideLegacyGroupOp(state, op);
  };

  const decide = (op: Operation, state: ModelState): Decision => {
    switch (op.kind) {
      case 'bindDriver':
        return decideNotifierBind(state, op.device, op.driver, (driver, bridge) => seedViable(state, driver, bridge), R('seed.probe.ok'), R('seed.notifier.bug-on'));
      case 'unbindDriver':
        return decideUnbindDriver(state, op.device, op.driver);
      case 'openDevice': {
        const d = state.devices.get(op.device);
        if (!d || d.driver === null || !isVfioDriverName(d.driver)) return fail('ENOENT', R('seed.cdev.no-node'));
        const g = d.group === null ? undefined : state.groups.get(d.group);
        if (stage === 1 && g && g.devices.length !== 1) return fail('ENOENT', R('stage1.cdev.singleton-only'));
        return ok(R('seed.cdev.open'), [{ type: 'FdSet', handle: op.deviceFd, fd: { handle: op.deviceFd, device: op.device, via: 'cdev', ictx: null, devId: null, hwpt: null } }]);
      }
      case 'accessDevice': {
        const fd = state.fds.get(op.deviceFd);
        if (!fd) return fail('EBADF', 'common.fd.ebadf');
        if (fd.via === 'cdev' && fd.ictx === null) return fail('EACCES', R('seed.access-before-bind'));
        return ok(R('seed.access-granted'));
      }
      case 'bindIommufd':
        return bindIommufd(state, op);
      case 'attachPt':
        return attach(state, op);
      case 'detachPt':
        return detach(state, op);
      case 'closeDevice': {
        const fd = state.fds.get(op.deviceFd);
        if (!fd) return fail('EBADF', 'common.fd.ebadf');
        const closed: Effect = { type: 'FdSet', handle: op.deviceFd, fd: null };
        if (fd.ictx === null) return ok(R('seed.close.plain'), [closed]);
        const un = unbindEffects(state, fd, groupOfDevice(state, fd.device), stage);
        return ok(un.rule, [...un.effects, closed]);
      }
      case 'openIommufd':
        return decideOpenIommufd(op.ictx);
      case 'closeIommufd':
        return closeIommufd(state, op.ictx);
      case 'allocIoas':
        return decideAllocIoas(state, op.ictx);
      case 'allocHwpt':
        return liveIctx(state, op.ictx) ? fail('ENOTTY', R('seed.no-hwpt-alloc')) : fail('EBADF', 'common.fd.ebadf');
      case 'destroy':
        return destroy(state, op);
      case 'mapIoas':
      case 'unmapIoas':
        return decideMapIoas(state, op.ictx, op.ioasId);
      case 'openGroup':
        return openGroup(state, op);
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

  return { variant, description, rules: SEED_RULES, initialState, decide, evolve, observe };
};
