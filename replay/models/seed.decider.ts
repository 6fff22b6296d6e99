import { isVfioDriverName, LEGACY_ALLOWED_DRIVERS } from '../../schemas/index.js';
import { createdHwpt, groupHwpt, isLastAttached, joinGroup, leaveGroup, namesOf, resolveIoas, autoHwptsOf } from '../../projections/kernel/iommufdCore.js';
import { decideLegacyGroupOp, decideNotifierBind, isGroupOperation, releaseHeldGroup } from './legacy.decider.js';
import {
  bindableCdevFd,
  boundCdevFd,
  decideAccess,
  hasCdevNode,
  openCdev,
  otherFdBound,
  decideAllocIoas,
  decideMapIoas,
  decideOpenIommufd,
  decideUnbindDriver,
  fail,
  groupDevices,
  groupOfDevice,
  isManagedDma,
  liveIctx,
  nextObjectId,
  ok,
  okPlanned,
  planCommonOnly,
  planDestroy,
  setDomain,
} from '../../projections/kernel/kernel.js';
import type { Transition, DeviceFdState, GroupState, ModelState, Operation, ProtocolDecider, VariantName } from '../../projections/kernel/types.js';
import { createProtocolDecider } from '../../projections/kernel/decider.js';
import { changeFd, putObject, removeFd, removeIctx, removeObject, setGroupAttached, setGroupOwnerCount, setGroupOwners, type ModelChanges } from '../../projections/kernel/mutate.js';
import { seedRules, type RuleId } from '../../projections/kernel/rules.js';

/**
 * The 2021 design's three stages as written (seed-2021-iommu-fd-sketch.txt). Where the seed names no
 * errno the rule (rules.ts) says CHOICE and why; each choice is exercised in rules.unit.spec.ts.
 * Stage-1: device nodes and iommu_fd binding only for singleton groups. Stage-2: any group, viability at
 * first bind, one IOASID per group. Stage-3: stage-2 where the topology's sub-groups may use different
 * IOASIDs. The old group uAPI is kept for legacy applications (pre-v5.19 semantics).
 */
export type SeedStage = 1 | 2 | 3;


/** stage-2 5a viability: driver-less, a vfio driver, or an otherwise allowed driver (driver_managed_dma list) */
const seedViable = (state: ModelState, driver: string | null, bridge: boolean): boolean =>
  driver === null || isVfioDriverName(driver) || isManagedDma(state, driver) || LEGACY_ALLOWED_DRIVERS.includes(driver) || bridge;

/** stage-3: the sub-group of the device when the topology gives one; otherwise the whole group */
const scopeOf = (state: ModelState, g: GroupState, device: string, stage: SeedStage): readonly string[] => {
  if (stage === 3 && g.subGroups) {
    const sub = g.subGroups.find((s) => s.includes(device));
    if (sub) return [...sub];
  }
  return namesOf(state, g);
};

/** the rule of a bound fd's close: the last unbind of its group, or not */
const unbindRule = (g: GroupState | undefined): RuleId => (g && g.ownerCnt <= 1 ? 'seed.close.last-unbind' : 'seed.close.unbind');

/** a bound fd's close: detached if attached, its device object gone, the group released at its last unbind */
const unbind = (state: ModelState, fd: DeviceFdState, g: GroupState | undefined, stage: SeedStage, changes: ModelChanges): void => {
  const { ictx, devId } = fd;
  if (g && fd.hwpt !== null) leaveGroup(state, g, fd, scopeOf(state, g, fd.device, stage), { kind: 'blocking', ictx: ictx ?? '' }, changes);
  if (ictx !== null && devId !== null) removeObject(state, changes, ictx, devId);
  if (!g) return;
  if (g.ownerCnt > 1) {
    setGroupOwnerCount(state, changes, g, g.ownerCnt - 1);
    return;
  }
  setGroupOwners(state, changes, g, null, g.extraOwners, 0);
  setGroupAttached(state, changes, g, []);
  setDomain(state, namesOf(state, g), { kind: 'default' }, changes);
};

export const createSeedDecider = (stage: SeedStage, description: string): ProtocolDecider => {
  const variant = `stage${stage}` as VariantName;

  const bindIommufd = (state: ModelState, op: Extract<Operation, { kind: 'bindIommufd' }>): Transition => {
    const fd = state.fds.get(op.deviceFd);
    if (!fd) return fail('common.fd.ebadf');
    const gate = bindableCdevFd(state, fd, { groupFd: 'seed.bind.group-fd', groupNodeOpen: 'seed.bind.group-node-open', alreadyBound: 'seed.bind.already-bound' });
    if (!gate.ok) return gate.decision;
    const ictx = liveIctx(state, op.ictx);
    if (!ictx) return fail('common.fd.ebadf');
    if (otherFdBound(state, fd)) return fail('seed.bind.device-open');
    const g = gate.value;
    if (!g) return fail('seed.bind.no-group');
    if (stage === 1 && g.devices.length !== 1) return fail('stage1.bind.not-singleton');
    if (state.caps.interruptRemapping === false && !state.caps.allowUnsafeInterrupts) return fail('seed.bind.unsafe-interrupts');
    const devId = nextObjectId(ictx);
    const bind = (changes: ModelChanges): void => {
      putObject(state, changes, op.ictx, devId, { kind: 'device', device: fd.device, deviceFd: fd.handle });
      changeFd(state, changes, fd, { ictx: op.ictx, devId, hwpt: null, accessGranted: true });
    };
    if (g.owner !== null) {
      if (g.owner.kind !== 'ictx' || g.owner.ictx !== op.ictx) return fail('seed.bind.other-iommufd');
      return ok(
        'seed.bind.same-iommufd',
        (changes) => {
          setGroupOwnerCount(state, changes, g, g.ownerCnt + 1);
          bind(changes);
        },
        { devId },
      );
    }
    const members = groupDevices(state, g);
    if (!members.every((d) => seedViable(state, d.driver, d.bridge))) return fail('seed.bind.not-viable');
    if (members.some((d) => d.requireDirect)) return fail('seed.bind.rmrr');
    return ok(
      'seed.bind.first',
      (changes) => {
        setGroupOwners(state, changes, g, { kind: 'ictx', ictx: op.ictx }, g.extraOwners, 1);
        setDomain(state, namesOf(state, g), { kind: 'blocking', ictx: op.ictx }, changes);
        bind(changes);
      },
      { devId },
    );
  };

  const boundFd = (state: ModelState, handle: string) => boundCdevFd(state, handle, 'seed.attach.group-fd', 'seed.attach.before-bind');

  const attach = (state: ModelState, op: Extract<Operation, { kind: 'attachPt' }>): Transition => {
    const gate = boundFd(state, op.deviceFd);
    if (!gate.ok) return gate.decision;
    const fd = gate.value;
    if (op.pasid !== undefined) return fail('seed.attach.no-pasid');
    const ictx = state.ictxs.get(fd.ictx!);
    const obj = ictx?.objects.get(op.ptId);
    if (!ictx || !obj) return fail('seed.attach.enoent');
    if (obj.kind !== 'ioas') return fail('seed.attach.not-ioasid');
    if (fd.hwpt !== null) return fail('seed.attach.already-attached');
    const g = groupOfDevice(state, fd.device)!;
    const scope = scopeOf(state, g, fd.device, stage);
    const on = groupHwpt(state, g, scope);
    if (on !== null) {
      if (!autoHwptsOf(ictx, op.ptId).includes(on.hwpt)) {
        return fail(stage === 3 && g.subGroups ? 'stage3.attach.single-ioasid-per-subgroup' : 'stage2.attach.single-ioasid');
      }
      return ok('seed.attach.join', (changes) => joinGroup(state, g, fd, on.hwpt, null, changes), { ptId: on.hwpt });
    }
    // the seed's "IOASID domain": one per IOASID, created on first use (an auto hwpt, so ids line up with Linux)
    const target = resolveIoas(ictx, op.ptId, null);
    return ok(
      'seed.attach.first',
      (changes) => {
        createdHwpt(state, fd.ictx!, op.ptId, target, changes);
        joinGroup(state, g, fd, target.hwpt, scope, changes);
      },
      { ptId: target.hwpt },
    );
  };

  const detach = (state: ModelState, op: Extract<Operation, { kind: 'detachPt' }>): Transition => {
    const gate = boundFd(state, op.deviceFd);
    if (!gate.ok) return gate.decision;
    const fd = gate.value;
    if (op.pasid !== undefined) return fail('seed.attach.no-pasid');
    const g = groupOfDevice(state, fd.device);
    if (!g || fd.hwpt === null) return fail('seed.detach.not-attached');
    const scope = scopeOf(state, g, fd.device, stage);
    const emptyDomain = { kind: 'blocking', ictx: fd.ictx! } as const;
    return ok(isLastAttached(state, g, fd.device, scope) ? 'seed.detach.last' : 'seed.detach.non-last', (changes) => leaveGroup(state, g, fd, scope, emptyDomain, changes));
  };

  const closeIommufd = (state: ModelState, handle: string): Transition => {
    if (!liveIctx(state, handle)) return fail('common.fd.ebadf');
    return ok('seed.ictx.close-teardown', (changes) => {
      for (const g of state.groups.values()) {
        if (g.owner?.kind === 'ictx' && g.owner.ictx === handle) {
          const names = namesOf(state, g);
          setGroupOwners(state, changes, g, null, g.extraOwners, 0);
          setGroupAttached(state, changes, g, []);
          setDomain(state, names, { kind: 'default' }, changes);
        }
      }
      // the teardown unbinds the ctx's device fds: their access goes with the binding
      for (const fd of state.fds.values()) if (fd.ictx === handle) changeFd(state, changes, fd, { ictx: null, devId: null, hwpt: null, accessGranted: false });
      removeIctx(state, changes, handle);
    });
  };

  const destroy = (state: ModelState, op: Extract<Operation, { kind: 'destroy' }>): Transition => {
    const ictx = liveIctx(state, op.ictx);
    if (!ictx) return fail('common.fd.ebadf');
    const obj = ictx.objects.get(op.objectId);
    if (!obj || obj.kind === 'hwpt') return fail('seed.destroy.enoent');
    if (obj.kind === 'device' || autoHwptsOf(ictx, op.objectId).length > 0) return fail('seed.destroy.busy');
    return okPlanned('seed.destroy.ok', undefined, (o, changes) => planDestroy(state, op, o, changes));
  };

  const decide = (op: Operation, state: ModelState): Transition => {
    // the old group uAPI, kept for legacy applications (with the mutual exclusion Linux later added)
    if (isGroupOperation(op)) return decideLegacyGroupOp(state, op, 'seed.group.cdev-bound');
    switch (op.kind) {
      case 'bindDriver':
        return decideNotifierBind(state, op.device, op.driver, (driver, bridge) => seedViable(state, driver, bridge), 'seed.probe.ok', 'seed.notifier.bug-on');
      case 'unbindDriver':
        return decideUnbindDriver(state, op.device, op.driver);
      case 'openDevice': {
        if (!hasCdevNode(state, op.device)) return fail('seed.cdev.no-node');
        const g = groupOfDevice(state, op.device);
        if (stage === 1 && g && g.devices.length !== 1) return fail('stage1.cdev.singleton-only');
        return openCdev(state, op, 'seed.cdev.open');
      }
      case 'accessDevice':
      case 'resetDevice':
      case 'createDmaBuf':
        return decideAccess(state, op.deviceFd, 'seed.access-before-bind', 'seed.access-granted');
      case 'bindIommufd':
        return bindIommufd(state, op);
      case 'attachPt':
        return attach(state, op);
      case 'detachPt':
        return detach(state, op);
      case 'closeDevice': {
        const fd = state.fds.get(op.deviceFd);
        if (!fd) return fail('common.fd.ebadf');
        if (fd.ictx === null) {
          return ok('seed.close.plain', (changes) => {
            // the held group file counts the closing fd as its last user: released while it is still open
            releaseHeldGroup(state, fd, changes);
            removeFd(state, changes, op.deviceFd);
          });
        }
        const g = groupOfDevice(state, fd.device);
        return ok(unbindRule(g), (changes) => {
          unbind(state, fd, g, stage, changes);
          removeFd(state, changes, op.deviceFd);
        });
      }
      case 'openIommufd':
        return decideOpenIommufd(state, op.ictx);
      case 'closeIommufd':
        return closeIommufd(state, op.ictx);
      case 'allocIoas':
        return decideAllocIoas(state, op.ictx);
      case 'allocHwpt':
        return liveIctx(state, op.ictx) ? fail('seed.no-hwpt-alloc') : fail('common.fd.ebadf');
      case 'setDirtyTracking':
      case 'getHwInfo':
      case 'invalidateHwpt':
      case 'getDirtyBitmap':
      case 'allocFaultQueue':
      case 'allocViommu':
      case 'allocVdevice':
      case 'mapFile':
      case 'changeProcess':
      case 'getPa':
      case 'allocVeventq':
      case 'allocHwQueue':
        return liveIctx(state, op.ictx) ? fail('seed.no-nesting-ioctl') : fail('common.fd.ebadf');
      case 'closeEventFd':
        // the seed has no event queues: no such fd
        return fail('common.fd.ebadf');
      case 'destroy':
        return destroy(state, op);
      case 'mapIoas':
      case 'unmapIoas':
        return decideMapIoas(state, op.ictx, op.ioasId);
      default: {
        const unreachable: never = op;
        return unreachable;
      }
    }
  };

  return createProtocolDecider({ variant, description, rules: seedRules(stage), transition: decide, plan: planCommonOnly });
};

/** seed stage-1: device-centric only for singleton groups; block_dma per iommu_fd; mmap refused until bind */
export const stage1Decider = createSeedDecider(1, 'seed stage-1: /dev/vfio/device nodes and iommu_fd binding only for singleton groups, block_dma per iommu_fd, access refused until bind');
/** seed stage-2: 1:N groups, viability at first bind, BOUND_DRIVER notifier, one IOASID per group */
export const stage2Decider = createSeedDecider(2, 'seed stage-2: 1:N groups, viability checked at first bind, BOUND_DRIVER notifier (BUG_ON), a single IOASID per group');
/** seed stage-3: stage-2 where the topology's sub-groups (TopologySnapshotTaken groups[].subGroups) may use different IOASIDs */
export const stage3Decider = createSeedDecider(3, 'seed stage-3: stage-2 plus sub-groups (from the topology) attached to different IOASIDs');
