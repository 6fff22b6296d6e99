import { isVfioDriverName } from '../../schemas/index.js';
import { fdsOfDevice, fdsOnHwpt, pasidUsersOf } from './fdIndex.js';
import {
  autoHwptsOf,
  freeAutoHwpt,
  groupHwpt,
  hwptInUse,
  isLastAttached,
  joinGroup,
  leaveGroup,
  namesOf,
  resolveIoas,
} from './iommufdCore.js';
import {
  DEFAULT_DOMAIN,
  bindableCdevFd,
  boundCdevFd,
  decideAccess,
  decideOpenGroupNode,
  decideSetIommu,
  groupFdOf,
  groupFileUsers,
  hasCdevNode,
  otherFdBound,
  planOpenCdev,
  NO_OWNERS,
  releaseHeldGroupAtLastFd,
  refuse,
  type Planned,
  decideAllocIoas,
  decideCloseContainer,
  decideOpenContainer,
  decideOpenIommufd,
  decideUnbindDriver,
  fail,
  groupDomain,
  groupOfDevice,
  isManagedDma,
  liveIctx,
  nextObjectId,
  objectOf,
  idIn,
  ok,
  okPlanned,
  planCommon,
  planDestroy,
  planNewObject,
  setDomain,
} from './kernel.js';
import type { Transition, DeviceFdState, OperationFields, Domain, GroupState, IctxState, IoctlArgs, IommufdObject, ModelState, Operation, Owner, PlannedOutcome, ProtocolDecider } from './types.js';
import { createProtocolDecider } from './decider.js';
import { openedFd } from './records.js';
import {
  changeFd,
  changeGroup,
  putDevice,
  putFd,
  putObject,
  removeFd,
  removeIctx,
  removeObject,
  setDeviceDomain,
  setDeviceDriver,
  setGroupAttached,
  setGroupFd,
  setGroupOwnerCount,
  setGroupOwners,
  setGroupPasids,
  setIctxOpen,
  type ModelChanges,
} from './mutate.js';
import { UPSTREAM_RULES, type RefusalRuleId, type RuleId } from './rules.js';
import { refusedByRelease, releaseAtLeast, releaseHas } from './releases.js';
import { decideAllocVeventq, decideCloseEventFd, ictxHeld, planAllocVeventq, planCloseEventFd, queueHoldsObject } from './ops/veventq.js';
import { decideAllocHwQueue, planAllocHwQueue } from './ops/hwQueue.js';
import { checkVfToken, tokenFlagUnknown } from './ops/vfToken.js';
import { attachFenced } from './ops/reset.js';
import { deferredProbe } from './ops/probeDefer.js';
import { checkAttachNoiommu, decideOpenNoiommu, detachNoiommu, isNoiommuCdev, planAttachNoiommu, planOpenNoiommu } from './ops/noiommu.js';
import { decideGetDirtyBitmap, decideGetHwInfo, decideInvalidateHwpt, FAULT_ID_VALID, faultRefusal, hwptExtras, pagingHwptRefusal } from './ops/hwptOps.js';
import { decideAllocFaultQueue, faultDestroyRefusal, planAllocFaultQueue } from './ops/faultQueue.js';
import { decideChangeProcess, decideGetPa, decideMap, decideUnmap, planIoasMapping } from './ops/ioasMap.js';

/** Linux as merged (v5.19 DMA ownership, v6.2 iommufd, v6.6 VFIO cdev): protocol.md §1.0, §1.4, §1.6 */

const BLOCKING: Domain = Object.freeze({ kind: 'blocking' });

const sameOwner = (a: Owner | null, b: Owner): boolean =>
  a !== null && a.kind === b.kind && (a.kind === 'ictx' ? a.ictx === (b as typeof a).ictx : a.container === (b as typeof a).container);

/** the rule by which iommu_device_claim_dma_owner / iommu_group_claim_dma_owner (`exclusive`) refuses the claim, null when it succeeds */
const claimRefusal = (state: ModelState, g: GroupState, owner: Owner, exclusive: boolean): RefusalRuleId | null => {
  if (g.ownerCnt > 0 && (exclusive || !sameOwner(g.owner, owner))) return exclusive ? 'upstream.group.claim-eperm' : 'upstream.claim.owned';
  if (g.ownerCnt > 0) return null;
  if (groupDomain(state, g).kind !== 'default' || Object.keys(g.pasids).length > 0) return 'upstream.claim.domain-busy';
  if (g.devices.some((n) => state.devices.get(n)?.requireDirect)) return 'upstream.claim.require-direct';
  return null;
};

/**
 * The claim made: one more reference of the owner, or the first owner taking the group to `ownerDomain`.
 * A record the kernel would refuse is followed: a different owner beside the first is an extra owner.
 */
const planClaim = (state: ModelState, g: GroupState, owner: Owner, ownerDomain: Domain, changes: ModelChanges): void => {
  if (g.owner !== null) {
    const extraOwners = sameOwner(g.owner, owner) || g.extraOwners.some((o) => sameOwner(o, owner)) ? g.extraOwners : [...g.extraOwners, owner];
    setGroupOwners(state, changes, g, g.owner, extraOwners, g.ownerCnt + 1);
    return;
  }
  setGroupOwners(state, changes, g, owner, g.extraOwners, 1);
  setDomain(state, g.devices, ownerDomain, changes);
};

/**
 * iommu_device_release_dma_owner: the last owner puts the group back on its default domain. Of two owners (a
 * followed record), the one whose last device left (`ownerGone`) leaves the group to the other.
 */
const releaseDmaOwner = (state: ModelState, g: GroupState, owner: Owner, ownerGone: boolean, changes: ModelChanges): void => {
  if (g.ownerCnt > 1) {
    if (!ownerGone || g.extraOwners.length === 0) {
      setGroupOwnerCount(state, changes, g, g.ownerCnt - 1);
      return;
    }
    const [heir, ...rest] = g.extraOwners;
    if (sameOwner(g.owner, owner)) setGroupOwners(state, changes, g, heir!, rest, g.ownerCnt - 1);
    else setGroupOwners(state, changes, g, g.owner, g.extraOwners.filter((o) => !sameOwner(o, owner)), g.ownerCnt - 1);
    return;
  }
  setGroupOwners(state, changes, g, null, NO_OWNERS, 0);
  setGroupAttached(state, changes, g, []);
  setDomain(state, g.devices, DEFAULT_DOMAIN, changes);
};

/** iommufd_device_bind's refusal, in the kernel's order (the ctx, coherency, the group, MSI isolation, the claim); null when it binds */
const bindRefusal = (state: ModelState, g: GroupState | undefined, ictxHandle: string): RefusalRuleId | null => {
  if (!liveIctx(state, ictxHandle)) return state.containers.has(ictxHandle) ? 'upstream.bind.not-iommufd' : 'common.fd.ebadf';
  if (!state.caps.cacheCoherent) return 'upstream.bind.no-coherency';
  if (!g) return 'upstream.bind.no-group';
  if (state.caps.interruptRemapping === false && !state.caps.allowUnsafeInterrupts) return 'upstream.bind.unsafe-interrupts';
  return claimRefusal(state, g, { kind: 'ictx', ictx: ictxHandle }, false);
};

/**
 * iommufd_device_bind + claim as made (shared by the cdev BIND and the iommufd-backed GET_DEVICE_FD): the
 * claim, the device object `devId`, the bound fd (put first when the state does not hold it: an fd opened
 * before recording began, or GET_DEVICE_FD's new one). A recorded bind is followed where the kernel would have
 * refused it (a ctx or fd opened before recording began, a group another owner holds).
 */
const planBind = (state: ModelState, fd: DeviceFdState, g: GroupState | undefined, ictxHandle: string, devId: number, changes: ModelChanges): void => {
  if (!state.ictxs.has(ictxHandle)) setIctxOpen(state, changes, ictxHandle, true);
  if (g) planClaim(state, g, { kind: 'ictx', ictx: ictxHandle }, BLOCKING, changes);
  putObject(state, changes, ictxHandle, devId, { kind: 'device', device: fd.device, deviceFd: fd.handle });
  if (state.fds.get(fd.handle) !== fd) putFd(state, changes, fd);
  changeFd(state, changes, fd, { ictx: ictxHandle, devId, hwpt: null, accessGranted: true });
};

/** which way a RID attach of a bound fd goes (first attach, join, replace) and the hwpt it lands on, or the rule refusing it */
const checkAttachRid = (
  state: ModelState,
  fd: DeviceFdState,
  g: GroupState,
  ptId: number,
  taken: readonly number[] = [],
): Planned<{ rule: RuleId; hwpt: number; groupOn: ReturnType<typeof groupHwpt> }> => {
  const ictx = state.ictxs.get(fd.ictx!);
  const obj = ictx?.objects.get(ptId);
  if (!ictx || !obj) return refuse('upstream.attach.pt-enoent');
  if (obj.kind === 'device') return refuse('upstream.attach.pt-wrong-type');
  const current = fd.hwpt;
  const groupOn = groupHwpt(state, g);
  const hwpt = obj.kind === 'hwpt' ? ptId : resolveIoas(ictx, ptId, current ?? groupOn?.hwpt ?? null, taken).hwpt;
  if (current !== null) return { ok: true, value: { rule: hwpt === current ? 'upstream.attach.replace-same' : 'upstream.attach.replace', hwpt, groupOn } };
  if (groupOn === null) return { ok: true, value: { rule: 'upstream.attach.first', hwpt, groupOn } };
  // iommufd_hw_pagetable_attach: igroup->hwpt != hwpt → -EINVAL; an IOAS succeeds only through the group's own auto hwpt
  const joins = obj.kind === 'hwpt' ? ptId === groupOn.hwpt : autoHwptsOf(ictx, ptId).includes(groupOn.hwpt);
  return joins ? { ok: true, value: { rule: 'upstream.attach.join', hwpt: groupOn.hwpt, groupOn } } : refuse('upstream.attach.group-on-other-hwpt');
};

/** the auto hwpt an attach to IOAS `ptId` creates when `hwpt` (the one it landed on) is new */
const autoHwptCreated = (state: ModelState, ictxHandle: string, ptId: number, hwpt: number, changes: ModelChanges): void => {
  const objects = state.ictxs.get(ictxHandle)?.objects;
  if (objects?.get(ptId)?.kind === 'ioas' && !objects.has(hwpt)) putObject(state, changes, ictxHandle, hwpt, { kind: 'hwpt', ioas: ptId, auto: true });
};

/**
 * A RID attach of a bound fd that landed on `hwpt`: the first attach moves the group, a replace moves it
 * with every attached fd, a join adds the device. A record of an attach to another hwpt than the group's
 * (the kernel refuses it) is followed: the device moves alone, a split domain the violation rules see.
 */
const planAttachRid = (
  state: ModelState,
  fd: DeviceFdState,
  g: GroupState | undefined,
  ptId: number,
  hwpt: number,
  changes: ModelChanges,
  // the group's hwpt when the caller has it (the check looked it up)
  known?: ReturnType<typeof groupHwpt>,
): void => {
  const ictxHandle = fd.ictx!;
  const current = fd.hwpt;
  if (g && hwpt === current) return;
  autoHwptCreated(state, ictxHandle, ptId, hwpt, changes);
  if (!g) {
    changeFd(state, changes, fd, { hwpt });
    return;
  }
  if (current !== null) {
    // replace moves the whole group: every attached fd of the group follows (refcount_add(num_devices)); a copy
    // of the hwpt's list, which the moves change
    const moving = fdsOnHwpt(state, ictxHandle, current).filter((f) => f.handle === fd.handle || g.attached.includes(f.device));
    for (const f of moving) changeFd(state, changes, f, { hwpt });
    setDomain(state, g.devices, { kind: 'hwpt', ictx: ictxHandle, hwpt }, changes);
    freeAutoHwpt(state, ictxHandle, current, changes);
    return;
  }
  const groupOn = known !== undefined ? known : groupHwpt(state, g);
  joinGroup(state, g, fd, hwpt, groupOn === null ? g.devices : hwpt === groupOn.hwpt ? null : [fd.device], changes);
};

/**
 * PASID attach (v6.15): iommufd_hw_pagetable_attach keeps one hwpt per (group, pasid) in igroup->pasid_attach:
 * the first attach programs it, a sibling on the same hwpt joins (0), another hwpt is -EINVAL
 * (`old_hwpt && old_hwpt != hwpt`); the same device again goes through vfio_iommufd_physical_pasid_attach_ioas
 * → iommufd_device_replace, a no-op on the same hwpt. iommu_attach_device_pasid checks `pasid` against
 * max_pasids of the members that have PASID only (b3f6fcd8, 6.15-rc7: members with max_pasids 0 are skipped).
 */
const checkAttachPasid = (state: ModelState, fd: DeviceFdState, g: GroupState, ptId: number, pasid: number): Planned<{ rule: RuleId; hwpt: number }> => {
  const ictx = state.ictxs.get(fd.ictx!);
  const obj = ictx?.objects.get(ptId);
  if (!ictx || !obj) return refuse('upstream.attach.pt-enoent');
  if (obj.kind === 'device') return refuse('upstream.attach.pt-wrong-type');
  const held = g.pasids[String(pasid)];
  const hwpt = obj.kind === 'hwpt' ? ptId : resolveIoas(ictx, ptId, held ?? null).hwpt;
  if (held !== undefined) return hwpt === held ? { ok: true, value: { rule: 'upstream.attach.pasid-join', hwpt } } : refuse('upstream.attach.pasid-other-hwpt');
  const members = namesOf(state, g).map((n) => state.devices.get(n)?.maxPasids ?? 0);
  if (members.some((max) => max > 0 && pasid >= max)) return refuse('upstream.attach.pasid-range');
  return { ok: true, value: { rule: 'upstream.attach.pasid', hwpt } };
};

/** a PASID attach that landed on `hwpt`: the group's entry for the PASID (a recorded one on another hwpt replaces it) */
const planAttachPasid = (state: ModelState, fd: DeviceFdState, g: GroupState, ptId: number, pasid: number, hwpt: number, changes: ModelChanges): void => {
  if (g.pasids[String(pasid)] === hwpt) return;
  autoHwptCreated(state, fd.ictx!, ptId, hwpt, changes);
  setGroupPasids(state, changes, g, { ...g.pasids, [String(pasid)]: hwpt });
};

/** ATTACH as made (or recorded): the bound fd's attach to the hwpt the outcome names; nothing to follow on an fd never bound */
const planAttach = (state: ModelState, op: OperationFields<'attachPt', 'deviceFd' | 'ptId' | 'pasid'>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  if (!outcome.ok) return;
  const fd = state.fds.get(op.deviceFd);
  if (!fd || fd.ictx === null) return;
  const hwpt = idIn(outcome, 'ptId') ?? op.ptId;
  const g = groupOfDevice(state, fd.device);
  if (op.pasid === undefined) {
    if (fd.noiommu) planAttachNoiommu(state, fd, op.ptId, hwpt, changes);
    else planAttachRid(state, fd, g, op.ptId, hwpt, changes);
  } else if (g) planAttachPasid(state, fd, g, op.ptId, op.pasid, hwpt, changes);
};

/** another fd than `handle` of the group's devices is bound to `ictx` */
const otherFdOfCtx = (state: ModelState, g: GroupState, handle: string, ictx: string): boolean => {
  for (const n of g.devices) for (const f of fdsOfDevice(state, n)) if (f.handle !== handle && f.ictx === ictx) return true;
  return false;
};

/** a bound fd going away: detach if attached, unbind (device object), release ownership */
const unbindFd = (state: ModelState, fd: DeviceFdState, g: GroupState | undefined, changes: ModelChanges): void => {
  const { ictx: ictxHandle, devId } = fd;
  if (g && fd.hwpt !== null) leaveGroup(state, g, fd, namesOf(state, g), BLOCKING, changes);
  else if (fd.noiommu) detachNoiommu(state, fd, changes);
  if (ictxHandle !== null && devId !== null) {
    vdevicesDyingWith(state, ictxHandle, devId, changes);
    removeObject(state, changes, ictxHandle, devId);
    const ictx = state.ictxs.get(ictxHandle);
    // a closed ctx lives on only while bound devices or event-queue fds hold it (S9)
    if (ictx && !ictx.open && !ictxHeld(ictx, { deviceFd: fd.handle })) removeIctx(state, changes, ictxHandle);
  }
  if (g && ictxHandle !== null) {
    // only a group with two owners (a followed record) asks whether this was the owner's last device
    const gone = g.extraOwners.length > 0 && !otherFdOfCtx(state, g, fd.handle, ictxHandle);
    releaseDmaOwner(state, g, { kind: 'ictx', ictx: ictxHandle }, gone, changes);
  }
};

/** a driver bound (or recorded bound): a DMA-API driver counts toward owner_cnt of a group nobody owns */
const planBindDriver = (state: ModelState, op: OperationFields<'bindDriver', 'device' | 'driver'>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const d = state.devices.get(op.device);
  if (!outcome.ok) return;
  // a device no snapshot showed yet (recording began after it): the bind shows it exists, in no group known
  if (!d) {
    putDevice(state, changes, { name: op.device, group: null, driver: op.driver, bridge: false, requireDirect: false, maxPasids: 0, pasidAttach: false, domain: DEFAULT_DOMAIN });
    return;
  }
  if (d.driver === op.driver) return;
  // a bind recorded over another driver (really_probe refuses a bound device: its unbind went unrecorded) is
  // that unbind and the bind: the old driver's DMA-API use (dma_cleanup) goes, the new one's counts (read before the write)
  const users = (isManagedDma(state, op.driver) ? 0 : 1) - (d.driver !== null && !isManagedDma(state, d.driver) ? 1 : 0);
  setDeviceDriver(state, changes, d, op.driver);
  const g = d.group === null ? undefined : state.groups.get(d.group);
  // a kernel driver recorded bound into an owned group (the kernel refuses it) is followed: it counts no user
  if (!g || g.owner !== null || users === 0) return;
  setGroupOwnerCount(state, changes, g, Math.max(0, g.ownerCnt + users));
};

const decideBindDriver = (state: ModelState, op: Extract<Operation, { kind: 'bindDriver' }>): Transition => {
  const d = state.devices.get(op.device);
  if (!d) return fail('common.driver.no-device');
  if (d.driver !== null) return op.via === 'drivers_probe' ? ok('upstream.probe.drivers-probe-bound') : fail('common.driver.already-bound');
  const planned = (rule: RuleId): Transition => okPlanned(rule, undefined, (o, changes) => planBindDriver(state, op, o, changes));
  if (isManagedDma(state, op.driver)) return planned('upstream.probe.managed-dma');
  const g = d.group === null ? undefined : state.groups.get(d.group);
  if (!g) return planned('upstream.probe.no-group');
  const deferred = deferredProbe(state, g);
  if (deferred) return deferred;
  if (g.ownerCnt > 0 && (g.owner !== null || groupDomain(state, g).kind !== 'default' || Object.keys(g.pasids).length > 0)) {
    // drivers_probe_store: `if (bus_rescan_devices_helper(dev, NULL) == 0) err = count;` else -EINVAL
    return op.via === 'drivers_probe' ? fail('upstream.probe.drivers-probe-einval') : fail('upstream.probe.use-default-domain');
  }
  return planned('upstream.probe.dma-api-user');
};

/** BIND as made (or recorded, on an fd opened before recording began, into a group another owner holds) */
const planBindIommufd = (state: ModelState, op: OperationFields<'bindIommufd', 'device' | 'deviceFd' | 'ictx'>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  if (!outcome.ok) return;
  const fd: DeviceFdState = state.fds.get(op.deviceFd) ?? openedFd(op.deviceFd, op.device, 'cdev');
  const ictx = state.ictxs.get(op.ictx);
  const devId = idIn(outcome, 'devId') ?? (ictx ? nextObjectId(ictx) : 1);
  // a noiommu fd (7.3) claims no group
  planBind(state, fd, fd.noiommu ? undefined : groupOfDevice(state, fd.device), op.ictx, devId, changes);
};

const decideBindIommufd = (state: ModelState, op: Extract<Operation, { kind: 'bindIommufd' }>): Transition => {
  const fd = state.fds.get(op.deviceFd);
  if (!fd) return fail('common.fd.ebadf');
  // vfio_df_ioctl_bind_iommufd: `if (bind.argsz < minsz || bind.flags || bind.iommufd < 0) return -EINVAL;`
  if (badArgs(op.args, BIND_MINSZ) || op.badFd === 'negative') return fail('upstream.bind.args');
  if (tokenFlagUnknown(state, op.vfToken)) return fail('release.bind.token-flag-einval');
  const gate = bindableCdevFd(state, fd, { groupFd: 'upstream.bind.group-fd', groupNodeOpen: 'upstream.bind.group-node-open', alreadyBound: 'upstream.bind.already-bound' });
  if (!gate.ok) return gate.decision;
  const token = checkVfToken(state, fd.device, op.vfToken);
  if (token) return token;
  if (op.badFd === 'closed') return fail('upstream.bind.closed-fd');
  if (op.badFd === 'not-iommufd') return fail('upstream.bind.not-iommufd');
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return state.containers.has(op.ictx) ? fail('upstream.bind.not-iommufd') : fail('common.fd.ebadf');
  if (otherFdBound(state, fd)) return fail('upstream.bind.device-open');
  if (fd.noiommu) {
    // a noiommu fd (7.3) binds without a group to claim
    const devId = nextObjectId(ictx);
    return okPlanned('upstream.bind.noiommu', { devId }, (_o, changes) => planBind(state, fd, undefined, op.ictx, devId, changes));
  }
  const refused = bindRefusal(state, gate.value, op.ictx);
  if (refused !== null) return fail(refused);
  const rule = gate.value!.ownerCnt === 0 ? 'upstream.claim.take' : 'upstream.bind.ok';
  const devId = nextObjectId(ictx);
  // planBindIommufd's plan, on the fd and group already looked up
  return okPlanned(rule, { devId }, (_o, changes) => planBind(state, fd, gate.value, op.ictx, devId, changes));
};

/** offsetofend(..., out_devid / pt_id / flags): the smallest argsz each cdev ioctl accepts */
const BIND_MINSZ = 16;
const ATTACH_MINSZ = 12;
const DETACH_MINSZ = 8;
const badArgs = (args: IoctlArgs | undefined, minsz: number): boolean =>
  args !== undefined && ((args.argsz !== undefined && args.argsz < minsz) || (args.flags !== undefined && args.flags !== 0));

const decideAttach = (state: ModelState, op: Extract<Operation, { kind: 'attachPt' }>): Transition => {
  const gate = boundCdevFd(state, op.deviceFd, 'upstream.attach.group-fd', 'upstream.attach.before-bind');
  if (!gate.ok) return gate.decision;
  const fd = gate.value;
  // vfio_df_ioctl_attach_pt: `if (attach.argsz < minsz || attach.flags) return -EINVAL;` (a PASID attach carries `pasid`)
  if (op.pasid === undefined && badArgs(op.args, ATTACH_MINSZ)) return fail('upstream.attach.args');
  // before v6.15 VFIO_DEVICE_ATTACH_PASID is an unknown flag: `if (attach.argsz < minsz || attach.flags) return -EINVAL;`
  if (op.pasid !== undefined && !releaseHas(state.caps.kernelRelease, 'pasidAttach')) return fail('release.pasid.flag-einval');
  if (fd.noiommu && op.pasid === undefined) {
    const checked = checkAttachNoiommu(state, fd, op.ptId);
    if (!checked.ok) return checked.decision;
    const { rule, hwpt } = checked.value;
    return okPlanned(rule, { ptId: hwpt }, (_o, changes) => planAttachNoiommu(state, fd, op.ptId, hwpt, changes));
  }
  const g = groupOfDevice(state, fd.device);
  if (!g) return fail('upstream.bind.no-group');
  if (op.pasid !== undefined && !state.devices.get(fd.device)?.pasidAttach) return fail('upstream.attach.pasid-unsupported');
  // planAttach's plan, on the fd and group already looked up; a domain change waits out a reset fence (-EBUSY)
  const pasid = op.pasid;
  if (pasid === undefined) {
    const checked = checkAttachRid(state, fd, g, op.ptId);
    if (!checked.ok) return checked.decision;
    const { rule, hwpt, groupOn } = checked.value;
    if (attachFenced(state, g, rule)) return fail('upstream.attach.reset-ebusy');
    return okPlanned(rule, { ptId: hwpt }, (_o, changes) => planAttachRid(state, fd, g, op.ptId, hwpt, changes, groupOn));
  }
  const checked = checkAttachPasid(state, fd, g, op.ptId, pasid);
  if (!checked.ok) return checked.decision;
  const { rule, hwpt } = checked.value;
  if (attachFenced(state, g, rule)) return fail('upstream.attach.reset-ebusy');
  return okPlanned(rule, { ptId: hwpt }, (_o, changes) => planAttachPasid(state, fd, g, op.ptId, pasid, hwpt, changes));
};

/** DETACH as made (or recorded): the PASID's entry or the fd's attachment goes, an auto hwpt nobody uses is freed */
const planDetach = (state: ModelState, op: OperationFields<'detachPt', 'deviceFd' | 'pasid'>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const fd = state.fds.get(op.deviceFd);
  if (!outcome.ok || !fd || fd.ictx === null) return;
  if (fd.noiommu && op.pasid === undefined) return detachNoiommu(state, fd, changes);
  const g = groupOfDevice(state, fd.device);
  if (!g) return;
  if (op.pasid === undefined) {
    if (fd.hwpt !== null) leaveGroup(state, g, fd, namesOf(state, g), BLOCKING, changes);
    return;
  }
  const hwpt = g.pasids[String(op.pasid)];
  if (hwpt === undefined) return;
  const pasids = { ...g.pasids };
  delete pasids[String(op.pasid)];
  // PASID users of the hwpt in the groups the ctx owns, this one's entry leaving (the group is owned by the fd's ctx): read before the entry goes
  const stillUsed = pasidUsersOf(state, fd.ictx, hwpt) - (g.owner?.kind === 'ictx' && g.owner.ictx === fd.ictx ? 1 : 0) > 0 || Object.values(pasids).includes(hwpt);
  setGroupPasids(state, changes, g, pasids);
  if (!stillUsed) freeAutoHwptIgnoringPasid(state, fd.ictx, hwpt, changes);
};

const decideDetach = (state: ModelState, op: Extract<Operation, { kind: 'detachPt' }>): Transition => {
  const gate = boundCdevFd(state, op.deviceFd, 'upstream.detach.group-fd', 'upstream.detach.before-bind');
  if (!gate.ok) return gate.decision;
  const fd = gate.value;
  if (op.pasid === undefined && badArgs(op.args, DETACH_MINSZ)) return fail('upstream.detach.args');
  if (op.pasid !== undefined && !releaseHas(state.caps.kernelRelease, 'pasidAttach')) return fail('release.pasid.flag-einval');
  const g = groupOfDevice(state, fd.device);
  if (fd.noiommu && op.pasid === undefined && fd.hwpt !== null) return okPlanned('upstream.detach.noiommu', undefined, (o, changes) => planDetach(state, op, o, changes));
  const attached = op.pasid === undefined ? fd.hwpt !== null : g?.pasids[String(op.pasid)] !== undefined;
  if (!g || !attached) return ok('upstream.detach.not-attached');
  if (op.pasid !== undefined) return okPlanned('upstream.detach.pasid', undefined, (o, changes) => planDetach(state, op, o, changes));
  // planDetach's plan for the fd's attachment (leaveGroup), on the fd and group already looked up
  const peers = namesOf(state, g);
  return ok(isLastAttached(state, g, fd.device, peers) ? 'upstream.detach.last' : 'upstream.detach.non-last', (changes) => leaveGroup(state, g, fd, peers, BLOCKING, changes));
};

const hwptUsedByFds = (state: ModelState, ictx: string, hwpt: number): boolean => fdsOnHwpt(state, ictx, hwpt).length > 0;
const freeAutoHwptIgnoringPasid = (state: ModelState, ictx: string, hwpt: number, changes: ModelChanges): void => {
  const o = objectOf(state, ictx, hwpt);
  if (o && o.kind === 'hwpt' && o.auto && !hwptUsedByFds(state, ictx, hwpt)) removeObject(state, changes, ictx, hwpt);
};

/** a device fd closed (or recorded closed): a bound one is detached and unbound first, its ownership released */
const planCloseDevice = (state: ModelState, handle: string, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const fd = state.fds.get(handle);
  if (!outcome.ok || !fd) return;
  if (fd.ictx === null) {
    // a held group file counts the closing fd as its last user: released while the fd is still open
    releaseHeldGroupFile(state, fd, changes);
    removeFd(state, changes, handle);
    return;
  }
  if (fd.via === 'group' && fd.devId !== null) {
    // group-path fds of one device share one open (vfio_df_open/vfio_df_close count device->open_count): the
    // binding made at the first open lasts until the last of them closes; another open one holds it on
    for (const heir of fdsOfDevice(state, fd.device)) {
      if (heir.handle === handle || heir.via !== 'group' || heir.ictx !== null) continue;
      changeFd(state, changes, heir, { ictx: fd.ictx, devId: fd.devId, hwpt: fd.hwpt });
      putObject(state, changes, fd.ictx, fd.devId, { kind: 'device', device: fd.device, deviceFd: heir.handle });
      removeFd(state, changes, handle);
      return;
    }
  }
  unbindFd(state, fd, groupOfDevice(state, fd.device), changes);
  removeFd(state, changes, handle);
};

const decideCloseDevice = (state: ModelState, handle: string): Transition => {
  const fd = state.fds.get(handle);
  if (!fd) return fail('common.fd.ebadf');
  return okPlanned(fd.ictx === null ? 'upstream.close.plain' : 'upstream.close.unbind', undefined, (o, changes) => planCloseDevice(state, handle, o, changes));
};

/** the ctx closed: it lives on, closed, while bound devices or event-queue fds hold it (S9) */
const planCloseIommufd = (state: ModelState, handle: string, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const ictx = liveIctx(state, handle);
  if (!outcome.ok || !ictx) return;
  if (ictxHeld(ictx)) setIctxOpen(state, changes, handle, false);
  else removeIctx(state, changes, handle);
};

const decideCloseIommufd = (state: ModelState, handle: string): Transition => {
  const ictx = liveIctx(state, handle);
  if (!ictx) return fail('common.fd.ebadf');
  return okPlanned(ictxHeld(ictx) ? 'upstream.ictx.close-deferred' : 'upstream.ictx.close', undefined, (o, changes) => planCloseIommufd(state, handle, o, changes));
};

/** IOMMU_HWPT_ALLOC flag bits (include/uapi/linux/iommufd.h, enum iommufd_hwpt_alloc_flags) */
const HWPT_NEST_PARENT = 1 << 0;
const HWPT_DIRTY_TRACKING = 1 << 1;
const HWPT_FAULT_ID_VALID = FAULT_ID_VALID;
const HWPT_PASID = 1 << 3;

/** the flags iommufd_hwpt_paging_alloc knows (`flags & ~valid_flags` → -EOPNOTSUPP), per release */
export const knownHwptFlags = (release: string | null | undefined): number =>
  (releaseHas(release, 'hwptAllocFlags') ? HWPT_NEST_PARENT | HWPT_DIRTY_TRACKING : 0) |
  // a paging hwpt takes a fault queue only later: 6.11 and 6.12 refuse FAULT_ID_VALID on an IOAS (kernel oracle, 6.12.118)
  (releaseHas(release, 'hwptFaultIdPaging') ? HWPT_FAULT_ID_VALID : 0) |
  (releaseHas(release, 'pasidAttach') ? HWPT_PASID : 0);

/** the release a nested hwpt's `data_type` needs a driver with domain_alloc_nested in (VT-d 6.7, SMMUv3 6.13, AMD 7.0) */
const NESTED_DATA_SINCE: Readonly<Record<string, readonly [number, number]>> = { 'vtd-s1': [6, 7], 'arm-smmuv3': [6, 13], 'amd-guest': [7, 0] };

/** v6.6: `if (cmd->flags || cmd->__reserved) return -EOPNOTSUPP;` first, and pt_id through iommufd_get_ioas (-ENOENT) */
const decideAllocHwpt66 = (state: ModelState, ictx: IctxState, op: Extract<Operation, { kind: 'allocHwpt' }>): Transition => {
  if (op.flags !== 0) return fail('release.hwpt-alloc.flags-first');
  const dev = ictx.objects.get(op.devId);
  if (!dev || dev.kind !== 'device') return fail('upstream.hwpt-alloc.dev-enoent');
  if (ictx.objects.get(op.ptId)?.kind !== 'ioas') return fail('release.hwpt-alloc.pt-enoent');
  return okPlanned('upstream.hwpt-alloc.ok', { hwptId: nextObjectId(ictx) }, (o, changes) => planAllocHwpt(state, op, o, changes));
};

/** iommufd_hwpt_nested_alloc: a user stage-1 table under a NEST_PARENT paging hwpt (v6.7) */
const decideAllocNested = (state: ModelState, op: Extract<Operation, { kind: 'allocHwpt' }>, ictx: IctxState, parent: Extract<IommufdObject, { kind: 'hwpt' }>): Transition => {
  const release = state.caps.kernelRelease;
  const since = op.dataType === undefined ? undefined : NESTED_DATA_SINCE[op.dataType];
  // `if ((flags & ~IOMMU_HWPT_FAULT_ID_VALID) || !user_data->len || !ops->domain_alloc_nested) return ERR_PTR(-EOPNOTSUPP);`
  const flagsKnown = (op.flags & ~(releaseHas(release, 'hwptFaultId') ? HWPT_FAULT_ID_VALID : 0)) === 0;
  if (!flagsKnown || since === undefined || !releaseAtLeast(release, since)) return fail('upstream.hwpt-alloc.nested-eopnotsupp');
  // `if (parent->auto_domain || !parent->nest_parent || ...) return ERR_PTR(-EINVAL);` (a nested hwpt as pt_id: not a paging hwpt → -EINVAL)
  if (parent.auto || parent.parent !== undefined || ((parent.flags ?? 0) & HWPT_NEST_PARENT) === 0) return fail('upstream.hwpt-alloc.parent-einval');
  const noFault = faultRefusal(ictx, op);
  if (noFault) return noFault;
  return okPlanned('upstream.hwpt-alloc.nested', { hwptId: nextObjectId(ictx) }, (o, changes) => planAllocHwpt(state, op, o, changes));
};

const decideAllocHwpt = (state: ModelState, op: Extract<Operation, { kind: 'allocHwpt' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  if (!releaseHas(state.caps.kernelRelease, 'hwptAllocFlags')) return decideAllocHwpt66(state, ictx, op);
  // iommufd_get_device: a missing id and an object of another type are both -ENOENT (iommufd_get_object)
  const dev = ictx.objects.get(op.devId);
  if (!dev || dev.kind !== 'device') return fail('upstream.hwpt-alloc.dev-enoent');
  // `pt_obj = iommufd_get_object(..., IOMMUFD_OBJ_ANY); if (IS_ERR(pt_obj)) { rc = -EINVAL; ...}`
  const pt = ictx.objects.get(op.ptId);
  if (pt?.kind === 'hwpt') return decideAllocNested(state, op, ictx, pt);
  if (!pt || pt.kind !== 'ioas') return fail('upstream.hwpt-alloc.pt-einval');
  // the flags are checked last, in iommufd_hwpt_paging_alloc (`flags & ~valid_flags` → -EOPNOTSUPP)
  if ((op.flags & ~knownHwptFlags(state.caps.kernelRelease)) !== 0) return fail('upstream.hwpt-alloc.flags');
  const refused = pagingHwptRefusal(state, ictx, op, dev.device);
  if (refused) return refused;
  return okPlanned('upstream.hwpt-alloc.ok', { hwptId: nextObjectId(ictx) }, (o, changes) => planAllocHwpt(state, op, o, changes));
};

/** HWPT_ALLOC as made (or recorded): a nested hwpt under the hwpt `ptId`, else a paging hwpt on the IOAS, at the outcome's id */
const planAllocHwpt = (state: ModelState, op: Extract<Operation, { kind: 'allocHwpt' }>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const id = idIn(outcome, 'hwptId');
  const ictx = state.ictxs.get(op.ictx);
  if (!outcome.ok || id === undefined || !ictx) return;
  const pt = ictx.objects.get(op.ptId);
  const object: IommufdObject =
    pt?.kind === 'hwpt'
      ? { kind: 'hwpt', ioas: pt.ioas, auto: false, flags: op.flags, parent: op.ptId, ...hwptExtras(op) }
      : op.flags === 0
        ? { kind: 'hwpt', ioas: op.ptId, auto: false }
        : { kind: 'hwpt', ioas: op.ptId, auto: false, flags: op.flags, ...hwptExtras(op) };
  putObject(state, changes, op.ictx, id, object);
};

const decideDestroy = (state: ModelState, op: Extract<Operation, { kind: 'destroy' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  const obj = ictx.objects.get(op.objectId);
  if (!obj || (obj.kind === 'vdevice' && obj.destroyed)) return fail('upstream.destroy.enoent');
  if (obj.kind === 'device') return fail('upstream.destroy.device-busy');
  const faultBusy = faultDestroyRefusal(ictx, op.objectId);
  if (faultBusy) return fail(faultBusy);
  if (obj.kind === 'hwpt' && [...ictx.objects.values()].some((o) => o.kind === 'viommu' && o.hwpt === op.objectId)) return fail('upstream.destroy.hwpt-viommu-busy');
  if (obj.kind === 'viommu' && liveVdevices(ictx).some((v) => v.viommu === op.objectId)) return fail('upstream.destroy.viommu-busy');
  const queueHeld = queueHoldsObject(ictx, op.objectId);
  if (queueHeld) return fail(queueHeld);
  if (obj.kind === 'hwpt' && hwptInUse(state, op.ictx, op.objectId, [])) return fail('upstream.destroy.hwpt-attached');
  // a nested hwpt holds a reference on its parent (refcount_inc(&parent->common.obj.users)): iommufd_object_remove → -EBUSY
  if (obj.kind === 'hwpt' && [...ictx.objects.values()].some((o) => o.kind === 'hwpt' && o.parent === op.objectId)) return fail('upstream.destroy.hwpt-parent-busy');
  if (obj.kind === 'ioas' && [...ictx.objects.values()].some((o) => o.kind === 'hwpt' && o.ioas === op.objectId)) return fail('upstream.destroy.ioas-busy');
  return okPlanned('upstream.destroy.ok', undefined, (o, changes) => planDestroy(state, op, o, changes));
};

// ---- dirty tracking (6.7), vIOMMU and vDEVICE (6.13; iommufd/hw_pagetable.c, viommu.c) -------------------

/** iommufd_get_hwpt_paging: a paging hwpt (not a nested one) */
const pagingHwpt = (ictx: IctxState, id: number): Extract<IommufdObject, { kind: 'hwpt' }> | null => {
  const o = ictx.objects.get(id);
  return o?.kind === 'hwpt' && o.parent === undefined ? o : null;
};
const liveVdevices = (ictx: IctxState): Extract<IommufdObject, { kind: 'vdevice' }>[] => {
  const out: Extract<IommufdObject, { kind: 'vdevice' }>[] = [];
  for (const o of ictx.objects.values()) if (o.kind === 'vdevice' && !o.destroyed) out.push(o);
  return out;
};

const decideSetDirtyTracking = (state: ModelState, op: Extract<Operation, { kind: 'setDirtyTracking' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  const hwpt = pagingHwpt(ictx, op.hwptId);
  if (!hwpt) return fail('upstream.dirty.enoent');
  if (((hwpt.flags ?? 0) & HWPT_DIRTY_TRACKING) === 0) return fail('upstream.dirty.eopnotsupp');
  return okPlanned('upstream.dirty.set', undefined, (o, changes) => planSetDirtyTracking(state, op, o, changes));
};

/** SET_DIRTY_TRACKING as made (or recorded, on a hwpt the kernel says cannot track: followed) */
const planSetDirtyTracking = (state: ModelState, op: Extract<Operation, { kind: 'setDirtyTracking' }>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const hwpt = outcome.ok ? state.ictxs.get(op.ictx)?.objects.get(op.hwptId) : undefined;
  if (hwpt?.kind === 'hwpt') putObject(state, changes, op.ictx, op.hwptId, { ...hwpt, dirtyTracking: op.enable });
};

/** the release whose driver allocates each vIOMMU type (SMMUv3 6.13, Tegra241 CMDQV 6.17) */
const VIOMMU_TYPE_SINCE: Readonly<Record<string, readonly [number, number]>> = { 'arm-smmuv3': [6, 13], 'tegra241-cmdqv': [6, 17] };

const decideAllocViommu = (state: ModelState, op: Extract<Operation, { kind: 'allocViommu' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  // `if (cmd->flags || cmd->type == IOMMU_VIOMMU_TYPE_DEFAULT) return -EOPNOTSUPP;`
  const since = VIOMMU_TYPE_SINCE[op.viommuType];
  if (op.flags !== 0 || since === undefined) return fail('upstream.viommu.eopnotsupp');
  if (ictx.objects.get(op.devId)?.kind !== 'device') return fail('upstream.viommu.enoent');
  // `if (!ops->viommu_alloc) { rc = -EOPNOTSUPP; ...}` (the driver of this type, in this release)
  if (!releaseAtLeast(state.caps.kernelRelease, since)) return fail('upstream.viommu.eopnotsupp');
  const hwpt = pagingHwpt(ictx, op.hwptId);
  if (!hwpt) return fail('upstream.viommu.enoent');
  if (((hwpt.flags ?? 0) & HWPT_NEST_PARENT) === 0) return fail('upstream.viommu.not-nest-parent');
  return okPlanned('upstream.viommu.ok', { viommuId: nextObjectId(ictx) }, (o, changes) => planAllocViommu(state, op, o, changes));
};

/** VIOMMU_ALLOC as made (or recorded): the vIOMMU on its hwpt at the outcome's id */
const planAllocViommu = (state: ModelState, op: Extract<Operation, { kind: 'allocViommu' }>, outcome: PlannedOutcome, changes: ModelChanges): void =>
  planNewObject(state, op.ictx, outcome, 'viommuId', { kind: 'viommu', hwpt: op.hwptId, viommuType: op.viommuType }, changes);

const decideAllocVdevice = (state: ModelState, op: Extract<Operation, { kind: 'allocVdevice' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  if (ictx.objects.get(op.viommuId)?.kind !== 'viommu' || ictx.objects.get(op.devId)?.kind !== 'device') return fail('upstream.vdevice.enoent');
  const live = liveVdevices(ictx);
  if (live.some((v) => (v.viommu === op.viommuId && BigInt(v.virtId) === BigInt(op.virtId)) || v.devId === op.devId)) return fail('upstream.vdevice.eexist');
  return okPlanned('upstream.vdevice.ok', { vdeviceId: nextObjectId(ictx) }, (o, changes) => planAllocVdevice(state, op, o, changes));
};

/** VDEVICE_ALLOC as made (or recorded, e.g. a second vDEVICE of a device: followed) at the outcome's id */
const planAllocVdevice = (state: ModelState, op: Extract<Operation, { kind: 'allocVdevice' }>, outcome: PlannedOutcome, changes: ModelChanges): void =>
  planNewObject(state, op.ictx, outcome, 'vdeviceId', { kind: 'vdevice', viommu: op.viommuId, devId: op.devId, virtId: op.virtId }, changes);

/** from 6.17 unbinding a device destroys its vDEVICE (iommufd_device_unbind → the vdevice's destroy); its id stays taken */
const vdevicesDyingWith = (state: ModelState, ictxHandle: string, devId: number, changes: ModelChanges): void => {
  const ictx = state.ictxs.get(ictxHandle);
  if (!ictx || !releaseHas(state.caps.kernelRelease, 'vdeviceDiesWithDevice')) return;
  // the dying ones first: a write to a Map being iterated is one the iteration may see again (by key: no entry pair
  // per object, and no list at all for the common unbind of a device with no vDEVICE)
  let dying: [number, Extract<IommufdObject, { kind: 'vdevice' }>][] | null = null;
  for (const id of ictx.objects.keys()) {
    const o = ictx.objects.get(id)!;
    if (o.kind === 'vdevice' && !o.destroyed && o.devId === devId) (dying ??= []).push([id, o]);
  }
  if (dying === null) return;
  for (const [id, o] of dying) putObject(state, changes, ictxHandle, id, { ...o, destroyed: true });
};

// ---- legacy group API, as still present upstream (§1.6) ----------------------------------------------


/**
 * vfio_group_detach_container: type1 detaches its domain (iommu_detach_group: the owned group goes to its
 * blocking domain), then iommu_group_release_dma_owner puts it back on the default domain; a group still
 * on the blocking domain (no VFIO_SET_IOMMU yet) makes the second switch only. Each switch is one
 * attach_device_to_domain per device.
 */
const releaseContainer = (state: ModelState, g: GroupState, changes: ModelChanges): void => {
  if (g.container?.kind !== 'legacy' || g.owner?.kind !== 'container') {
    changeGroup(state, changes, g, { container: null });
    return;
  }
  const names = namesOf(state, g);
  const onContainer = groupDomain(state, g).kind === 'container';
  changeGroup(state, changes, g, { container: null, owner: null, extraOwners: NO_OWNERS, ownerCnt: 0 });
  if (onContainer) setDomain(state, names, BLOCKING, changes);
  // the second switch from the blocking domain the first one leaves (or the group's own, when SET_IOMMU never came)
  for (const n of names) {
    const d = state.devices.get(n);
    if (d && d.domain.kind !== 'default') setDeviceDomain(state, changes, d, DEFAULT_DOMAIN);
  }
};

/** vfio_group_fops_release: the node free again, its container (a legacy claim, or an iommufd's reference) released */
const releaseGroupFile = (state: ModelState, g: GroupState, changes: ModelChanges): void => {
  changeGroup(state, changes, g, { groupFd: null });
  releaseContainer(state, g, changes);
};

/** the group node closed (or recorded closed): a legacy container's device fds hold the file, else it is released now */
const planCloseGroup = (state: ModelState, op: OperationFields<'closeGroup', 'group' | 'groupFd'>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!outcome.ok || !g) return;
  // held: `groupFd` stays set (the node is busy) with no fd naming it; the last device fd's close releases it
  const held = groupFileUsers(state, g) > 0;
  setGroupFd(state, changes, op.groupFd, null);
  if (!held) releaseGroupFile(state, g, changes);
};

/** a held group file whose last user is `fd` closing: the release the node's close left to it */
const releaseHeldGroupFile = (state: ModelState, fd: DeviceFdState, changes: ModelChanges): void => releaseHeldGroupAtLastFd(state, fd, releaseContainer, changes);

const decideCloseGroup = (state: ModelState, op: Extract<Operation, { kind: 'closeGroup' }>): Transition =>
  groupFdOf(state, op.groupFd, op.group) ? okPlanned('upstream.group.closed', undefined, (o, changes) => planCloseGroup(state, op, o, changes)) : fail('common.fd.ebadf');

const decideGroupStatus = (state: ModelState, op: Extract<Operation, { kind: 'groupStatus' }>): Transition => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('common.fd.ebadf');
  if (g.container) return ok('upstream.group.status', null, { viable: true, containerSet: true });
  return ok('upstream.group.status', null, { viable: g.ownerCnt === 0, containerSet: false });
};

/**
 * SET_CONTAINER as made (or recorded): an iommufd gets its compat IOAS; a legacy container claims the group
 * (a recorded claim of a group another owner holds is followed: a second owner) on its domain once set
 */
const planSetContainer = (state: ModelState, op: OperationFields<'setContainer', 'group' | 'groupFd' | 'container' | 'containerKind'>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!outcome.ok || !g) return;
  const container = { handle: op.container, kind: op.containerKind };
  if (op.containerKind === 'iommufd') {
    const ictx = state.ictxs.get(op.container);
    const hasCompat = !ictx || [...ictx.objects.values()].some((o) => o.kind === 'ioas' && o.compat);
    if (!hasCompat) putObject(state, changes, op.container, nextObjectId(ictx), { kind: 'ioas', compat: true });
    changeGroup(state, changes, g, { container });
    return;
  }
  const domain: Domain = state.containers.get(op.container)?.iommuType != null ? { kind: 'container', container: op.container } : BLOCKING;
  planClaim(state, g, { kind: 'container', container: op.container }, domain, changes);
  changeGroup(state, changes, g, { container });
};

const decideSetContainer = (state: ModelState, op: Extract<Operation, { kind: 'setContainer' }>): Transition => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('common.fd.ebadf');
  if (g.container) return fail('upstream.group.container-already-set');
  const planned = (rule: RuleId): Transition => okPlanned(rule, undefined, (o, changes) => planSetContainer(state, op, o, changes));
  if (op.containerKind === 'iommufd') {
    if (!liveIctx(state, op.container)) return state.containers.has(op.container) ? fail('upstream.bind.not-iommufd') : fail('common.fd.ebadf');
    return planned('upstream.group.set-iommufd');
  }
  const c = state.containers.get(op.container);
  if (!c || !c.open) return state.ictxs.has(op.container) ? fail('upstream.bind.not-iommufd') : fail('common.fd.ebadf');
  const refused = claimRefusal(state, g, { kind: 'container', container: op.container }, true);
  return refused !== null ? fail(refused) : planned('upstream.group.set-legacy');
};

/** UNSET_CONTAINER as made (or recorded): the container is released */
const planUnsetContainer = (state: ModelState, op: OperationFields<'unsetContainer', 'group' | 'groupFd'>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (outcome.ok && g?.container) releaseContainer(state, g, changes);
};

const decideUnsetContainer = (state: ModelState, op: Extract<Operation, { kind: 'unsetContainer' }>): Transition => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('common.fd.ebadf');
  if (!g.container) return fail('upstream.group.unset-none');
  // container_users != 1: a legacy container's device fds; an iommufd's reference is put whatever is open
  if (groupFileUsers(state, g) > 0) return fail('upstream.group.unset-busy');
  return okPlanned('upstream.group.unset', undefined, (o, changes) => planUnsetContainer(state, op, o, changes));
};

/** the device's first open through an iommufd used as the container binds (and claims) it */
const bindsOnOpen = (state: ModelState, g: GroupState, device: string): boolean =>
  g.container?.kind === 'iommufd' && !fdsOfDevice(state, device).some((f) => f.ictx !== null);

/**
 * GET_DEVICE_FD as made (or recorded): a group-path fd; through an iommufd as container the first open
 * binds the device (a recorded bind the kernel would refuse is followed) and attaches the compat IOAS
 */
const planGetDeviceFd = (state: ModelState, op: Extract<Operation, { kind: 'getDeviceFd' }>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!outcome.ok || !g?.container) return;
  const fd = openedFd(op.newFd, op.device, 'group');
  if (!bindsOnOpen(state, g, op.device)) return putFd(state, changes, fd);
  const handle = g.container.handle;
  const ictx = state.ictxs.get(handle);
  const devId = ictx ? nextObjectId(ictx) : 1;
  const compatId = ictx ? [...ictx.objects.entries()].find(([, o]) => o.kind === 'ioas' && o.compat)?.[0] : undefined;
  planBind(state, fd, g, handle, devId, changes);
  if (compatId === undefined) return;
  // the attach is checked and planned on the bound fd: its domain change is from the blocking domain the claim left
  const attach = checkAttachRid(state, fd, g, compatId, [devId]);
  if (attach.ok) planAttachRid(state, fd, g, compatId, attach.value.hwpt, changes, attach.value.groupOn);
};

const decideGetDeviceFd = (state: ModelState, op: Extract<Operation, { kind: 'getDeviceFd' }>): Transition => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('common.fd.ebadf');
  const d = state.devices.get(op.device);
  if (!d || !g.devices.includes(op.device) || !isVfioDriverName(d.driver ?? '')) return fail('upstream.group.no-such-device');
  if (!g.container) return fail('upstream.group.no-container');
  const planned = (rule: RuleId): Transition => okPlanned(rule, { deviceFd: op.newFd }, (o, changes) => planGetDeviceFd(state, op, o, changes));
  if (g.container.kind === 'legacy') return state.containers.get(g.container.handle)?.iommuType == null ? fail('upstream.group.no-iommu-driver') : planned('upstream.group.device-fd');
  if (!bindsOnOpen(state, g, op.device)) return planned('upstream.group.device-fd');
  const refused = bindRefusal(state, g, g.container.handle);
  return refused !== null ? fail(refused) : planned('upstream.group.device-fd-bind');
};

/**
 * v6.13 removed VFIO_TYPE1_NESTING_IOMMU: vfio_ioctl_set_iommu checks "no group or a backend already set"
 * (-EINVAL) first, then no driver claims type 6 (VFIO_CHECK_EXTENSION) and it returns -ENODEV
 */
const typeOneNestingGone = (state: ModelState, container: string): boolean => {
  const c = state.containers.get(container);
  if (!c || !c.open || c.iommuType !== null || releaseHas(state.caps.kernelRelease, 'viommu') === false) return false;
  return [...state.groups.values()].some((g) => g.container?.handle === container);
};

/** the upstream transition: one function per call */
const decide = (op: Operation, state: ModelState): Transition => {
  // a release that lacks the feature answers first (releases.ts: the kernel oracle on 6.1)
  const absent = refusedByRelease(op, state);
  if (absent) return absent;
  switch (op.kind) {
    case 'bindDriver':
      return decideBindDriver(state, op);
    case 'unbindDriver':
      return decideUnbindDriver(state, op.device, op.driver);
    case 'openDevice':
      if (isNoiommuCdev(op.cdev)) return decideOpenNoiommu(state, op);
      return hasCdevNode(state, op.device) ? okPlanned('upstream.cdev.open', undefined, (_o, changes) => planOpenCdev(state, op, changes)) : fail('upstream.cdev.no-node');
    case 'accessDevice':
      return decideAccess(state, op.deviceFd, 'upstream.cdev.access-before-bind', 'upstream.cdev.access-granted');
    case 'bindIommufd':
      return decideBindIommufd(state, op);
    case 'attachPt':
      return decideAttach(state, op);
    case 'detachPt':
      return decideDetach(state, op);
    case 'closeDevice':
      return decideCloseDevice(state, op.deviceFd);
    case 'openIommufd':
      return decideOpenIommufd(state, op.ictx);
    case 'closeIommufd':
      return decideCloseIommufd(state, op.ictx);
    case 'allocIoas':
      return decideAllocIoas(state, op.ictx);
    case 'allocHwpt':
      return decideAllocHwpt(state, op);
    case 'destroy':
      return decideDestroy(state, op);
    case 'setDirtyTracking':
      return decideSetDirtyTracking(state, op);
    case 'getHwInfo':
      return decideGetHwInfo(state, op);
    case 'invalidateHwpt':
      return decideInvalidateHwpt(state, op);
    case 'getDirtyBitmap':
      return decideGetDirtyBitmap(state, op);
    case 'allocFaultQueue':
      return decideAllocFaultQueue(state, op);
    case 'allocViommu':
      return decideAllocViommu(state, op);
    case 'allocVdevice':
      return decideAllocVdevice(state, op);
    case 'mapIoas':
    case 'mapFile':
      return decideMap(state, op);
    case 'changeProcess':
      return decideChangeProcess(state, op);
    case 'getPa':
      return decideGetPa(state, op);
    case 'allocVeventq':
      return decideAllocVeventq(state, op);
    case 'closeEventFd':
      return decideCloseEventFd(state, op);
    case 'allocHwQueue':
      return decideAllocHwQueue(state, op);
    case 'resetDevice':
      return decideAccess(state, op.deviceFd, 'upstream.cdev.access-before-bind', 'upstream.reset.ok');
    case 'createDmaBuf': {
      const access = decideAccess(state, op.deviceFd, 'upstream.cdev.access-before-bind', 'upstream.dma-buf.ok');
      return access.outcome.ok ? ok('upstream.dma-buf.ok', null, { dmaBufFd: op.dmaBufFd }) : access;
    }
    case 'unmapIoas':
      return decideUnmap(state, op);
    case 'openGroup':
      return decideOpenGroupNode(state, op, {
        noVfioDevices: 'upstream.group.no-vfio-devices',
        alreadyOpen: 'upstream.group.already-open',
        cdevBound: 'upstream.group.cdev-bound',
        opened: 'upstream.group.opened',
      });
    case 'closeGroup':
      return decideCloseGroup(state, op);
    case 'groupStatus':
      return decideGroupStatus(state, op);
    case 'setContainer':
      return decideSetContainer(state, op);
    case 'unsetContainer':
      return decideUnsetContainer(state, op);
    case 'getDeviceFd':
      return decideGetDeviceFd(state, op);
    case 'openContainer':
      return decideOpenContainer(state, op.container);
    case 'setIommu':
      if (op.iommuType === 'type1-nesting' && typeOneNestingGone(state, op.container)) return fail('release.set-iommu.type1-nesting-enodev');
      return decideSetIommu(state, op, {
        alreadySet: 'upstream.container.iommu-already-set',
        noGroups: 'upstream.container.no-groups',
        unsafeInterrupts: 'upstream.container.unsafe-interrupts',
        requireDirect: 'upstream.container.require-direct',
        set: 'upstream.container.set-iommu',
      });
    case 'closeContainer':
      return decideCloseContainer(state, op.container);
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};

/**
 * The state change of an operation with a given outcome, without re-checking it (issue 16): what `decide`'s
 * success applies, what `evolve` applies for a recorded event, following the record where the kernel would
 * have refused (a second owner, an attach to another hwpt). A failure changes nothing (but an IOAS_UNMAP's
 * -ENOENT part-way). Every operation is planned (the switch is exhaustive): `evolve` never re-decides.
 */
const planOperation = (op: Operation, outcome: PlannedOutcome, state: ModelState, changes: ModelChanges): void => {
  switch (op.kind) {
    case 'bindDriver':
      return planBindDriver(state, op, outcome, changes);
    case 'openDevice':
      if (!outcome.ok) return;
      return isNoiommuCdev(op.cdev) ? planOpenNoiommu(state, op, changes) : planOpenCdev(state, op, changes);
    case 'bindIommufd':
      return planBindIommufd(state, op, outcome, changes);
    case 'attachPt':
      return planAttach(state, op, outcome, changes);
    case 'detachPt':
      return planDetach(state, op, outcome, changes);
    case 'closeDevice':
      return planCloseDevice(state, op.deviceFd, outcome, changes);
    case 'closeIommufd':
      return planCloseIommufd(state, op.ictx, outcome, changes);
    case 'allocHwpt':
      return planAllocHwpt(state, op, outcome, changes);
    case 'closeGroup':
      return planCloseGroup(state, op, outcome, changes);
    case 'setContainer':
      return planSetContainer(state, op, outcome, changes);
    case 'unsetContainer':
      return planUnsetContainer(state, op, outcome, changes);
    case 'getDeviceFd':
      return planGetDeviceFd(state, op, outcome, changes);
    case 'mapIoas':
    case 'mapFile':
    case 'unmapIoas':
      return planIoasMapping(op, outcome, state, changes);
    case 'setDirtyTracking':
      return planSetDirtyTracking(state, op, outcome, changes);
    case 'allocViommu':
      return planAllocViommu(state, op, outcome, changes);
    case 'allocVdevice':
      return planAllocVdevice(state, op, outcome, changes);
    case 'allocFaultQueue':
      return planAllocFaultQueue(state, op, outcome, changes);
    case 'allocVeventq':
      return planAllocVeventq(state, op, outcome, changes);
    case 'allocHwQueue':
      return planAllocHwQueue(state, op, outcome, changes);
    case 'closeEventFd':
      return planCloseEventFd(state, op, outcome, changes);
    default:
      // the rest are the calls every variant plans alike (the type says it: a call planned nowhere fails to compile)
      return planCommon(op, outcome, state, changes);
  }
};

/** `planOperation` as a variant's `plan` (every operation is planned) */
const plan = (op: Operation, outcome: PlannedOutcome, state: ModelState, changes: ModelChanges): boolean => {
  planOperation(op, outcome, state, changes);
  return true;
};

export const upstreamDecider: ProtocolDecider = createProtocolDecider({
  variant: 'upstream',
  description: 'Linux as merged: DMA ownership counting (v5.19), iommufd, VFIO cdev (protocol.md §1.0–§1.6)',
  rules: UPSTREAM_RULES,
  transition: decide,
  plan,
});
