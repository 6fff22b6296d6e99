import { isVfioDriverName } from '../../schemas/index.js';
import { fdsOfDevice, fdsOnHwpt, groupPathFds } from './fdIndex.js';
import {
  autoHwptsOf,
  createdHwpt,
  freeAutoHwpt,
  groupHwpt,
  hwptInUse,
  joinGroup,
  leaveGroup,
  namesOf,
  refuse,
  resolveIoas,
  type Planned,
} from './iommufdCore.js';
import {
  COMMON_RULES,
  decideAllocIoas,
  decideCloseContainer,
  decideOpenContainer,
  decideOpenIommufd,
  decideUnbindDriver,
  evolve,
  fail,
  groupDomain,
  groupOfDevice,
  initialState,
  isManagedDma,
  liveIctx,
  nextObjectId,
  objectOf,
  observe,
  ok,
  setDomain,
} from './kernel.js';
import type { Decision, DeviceFdState, Effect, GroupState, IoctlArgs, IommufdObject, ModelState, Operation, Owner, ProtocolDecider } from './types.js';
import { containerWith, deviceWith, fdWith, groupWith } from './records.js';
import { RELEASE_RULES, refusedByRelease } from './releases.js';

/** Linux as merged (v5.19 DMA ownership, v6.2 iommufd, v6.6 VFIO cdev): protocol.md §1.0, §1.4, §1.6 */
export const UPSTREAM_RULES = {
  ...COMMON_RULES,
  ...RELEASE_RULES,
  'upstream.probe.managed-dma': 'pci_dma_configure: a driver_managed_dma driver (vfio-pci, pci-stub, pcieport, …) binds without touching owner_cnt',
  'upstream.probe.no-group': 'a device without an iommu_group binds freely',
  'upstream.probe.use-default-domain': 'iommu_device_use_default_domain: owner_cnt and (user owner or non-default domain) → -EBUSY, probe aborted silently',
  'upstream.probe.dma-api-user': 'iommu_device_use_default_domain: owner_cnt++ (kernel DMA-API user)',
  'upstream.probe.drivers-probe-einval':
    'drivers/base/bus.c:drivers_probe_store: a probe through /sys/bus/pci/drivers_probe that fails (here -EBUSY from iommu_device_use_default_domain) is returned as -EINVAL (kernel oracle, 6.12)',
  'upstream.probe.drivers-probe-bound': 'drivers/base/bus.c:bus_rescan_devices_helper: drivers_probe of a device that has a driver does nothing and succeeds',
  'upstream.cdev.no-node': 'no /dev/vfio/devices/vfioN: the device is not registered by a vfio driver → open fails -ENOENT at path lookup',
  'upstream.cdev.open': 'vfio_device_fops_cdev_open: fd opened, no ownership taken',
  'upstream.cdev.access-before-bind': 'vfio_device_fops_unl_ioctl/_mmap/_read/_write: df->access_granted false → -EINVAL (S1 step 3)',
  'upstream.cdev.access-granted': 'access after bind (or through a legacy group fd) is allowed',
  'upstream.bind.args': 'vfio_df_ioctl_bind_iommufd: argsz < offsetofend(out_devid), flags != 0 or iommufd < 0 → -EINVAL, before any other check (kernel oracle, 6.12)',
  'upstream.bind.group-fd': 'vfio_df_ioctl_bind_iommufd: fd from the legacy group path → -EINVAL (§1.4 #3)',
  'upstream.bind.group-node-open': 'vfio_device_block_group: /dev/vfio/<grp> is open → -EBUSY (§1.4 #4)',
  'upstream.bind.already-bound': 'df->access_granted: this fd is already bound → -EINVAL (§1.4 #5, S3)',
  'upstream.bind.not-iommufd': 'iommufd_ctx_from_fd: the fd is not an iommufd → -EBADFD (§1.4 #6)',
  'upstream.bind.closed-fd': 'iommufd_ctx_from_fd: fget of a number that is no open file → -EBADF (§1.4 #6)',
  'upstream.bind.device-open': 'vfio_df_open: the device is already opened by another fd → -EINVAL (§1.4 #7)',
  'upstream.bind.no-coherency': 'iommufd_device_bind: no IOMMU_CAP_CACHE_COHERENCY → -EINVAL (§1.4 #9)',
  'upstream.bind.no-group': 'iommufd_device_bind: no iommu_group → -ENODEV',
  'upstream.bind.unsafe-interrupts': 'iommufd_device_bind: no isolated MSI and allow_unsafe_interrupts=0 → -EPERM (§1.4 #9)',
  'upstream.bind.ok': 'iommufd_device_bind: out_devid = lowest free id in the ctx',
  'upstream.claim.owned': 'iommu_device_claim_dma_owner: owner_cnt and another owner (a kernel DMA-API driver or another ctx) → -EPERM (S13, S35)',
  'upstream.claim.domain-busy': '__iommu_take_dma_ownership: domain not default or pasid_array in use → -EBUSY',
  'upstream.claim.require-direct': '__iommu_group_set_domain: blocking domain refused for a require_direct device → -EINVAL (S33)',
  'upstream.claim.same-owner': 'iommu_device_claim_dma_owner: same owner → owner_cnt++, no domain change, no trace (S13)',
  'upstream.claim.take': '__iommu_take_dma_ownership: the whole group moves to its blocking domain (S11: trace per group device)',
  'upstream.attach.group-fd': 'ATTACH on a legacy-group fd is not dispatched to the cdev switch → -ENOTTY',
  'upstream.attach.before-bind': 'ATTACH before bind → -EINVAL (access gate)',
  'upstream.attach.args': 'vfio_df_ioctl_attach_pt: argsz < offsetofend(pt_id) or flags without a PASID → -EINVAL (kernel oracle, 6.12: no flag is known)',
  'upstream.attach.pasid-unsupported': 'vfio_df_ioctl_attach_pt: PASID flag and no pasid_attach_ioas → -EOPNOTSUPP (S5)',
  'upstream.attach.pt-enoent': 'iommufd_get_object: unknown pt_id → -ENOENT (S5, S7)',
  'upstream.attach.pt-wrong-type': 'iommufd_device_change_pt: pt_id names neither an IOAS nor a HWPT → -EINVAL (S5)',
  'upstream.attach.group-on-other-hwpt': 'iommufd_hw_pagetable_attach: igroup->hwpt != hwpt → -EINVAL; the auto search fails the same way (S15, S19)',
  'upstream.attach.first': 'first attach in the group: iommu_attach_group moves every group device to the hwpt (trace per device)',
  'upstream.attach.join': 'the group already uses this hwpt: the device joins device_list, no domain change, no trace (S19, S35)',
  'upstream.attach.replace-same': 'second ATTACH to the hwpt already attached: replace to the same hwpt is a no-op (S7)',
  'upstream.attach.replace': 'ATTACH on an attached device = iommufd_device_replace: the whole group moves, old auto hwpt freed (S7, S37)',
  'upstream.attach.pasid-range': 'iommu_attach_device_pasid: pasid ≥ max_pasids of any group member → -EINVAL (S39)',
  'upstream.attach.pasid-busy': 'iommu_attach_device_pasid: pasid already used in the group → -EBUSY (S39)',
  'upstream.attach.pasid': 'iommu_attach_device_pasid: the PASID is programmed on every group device (S39)',
  'upstream.detach.group-fd': 'DETACH on a legacy-group fd → -ENOTTY',
  'upstream.detach.before-bind': 'DETACH before bind → -EINVAL (access gate)',
  'upstream.detach.args': 'vfio_df_ioctl_detach_pt: argsz < offsetofend(flags) or flags != 0 → -EINVAL (kernel oracle, 6.12)',
  'upstream.detach.not-attached': 'vfio_iommufd_physical_detach_ioas returns early: detach of an unattached device → 0 (§1.4)',
  'upstream.detach.non-last': 'non-last detach: only device_list shrinks; the group stays on the hwpt, no trace (S17)',
  'upstream.detach.last': 'last detach: iommu_detach_group → blocking domain (S17, S35)',
  'upstream.detach.pasid': 'PASID detach: the group-wide PASID attachment is removed',
  'upstream.close.unbind': 'device fd close: detach if attached, iommufd_device_unbind, release DMA ownership (last owner → default domain) (S1, S21)',
  'upstream.close.plain': 'device fd close of an unbound fd: nothing else changes',
  'upstream.ictx.close-deferred': 'close(/dev/iommu) with bound devices: they hold a ctx reference, nothing changes (S9)',
  'upstream.ictx.close': 'close(/dev/iommu): the ctx and its objects are released',
  'upstream.hwpt-alloc.flags': 'IOMMU_HWPT_ALLOC: unknown flag bits → -EOPNOTSUPP (S37)',
  'upstream.hwpt-alloc.dev-enoent': 'iommufd_hwpt_alloc → iommufd_get_device → iommufd_get_object: dev_id missing or not a device → -ENOENT (kernel oracle, 6.12)',
  'upstream.hwpt-alloc.pt-einval': 'iommufd_hwpt_alloc: pt_id missing (lookup failure is mapped to -EINVAL) or neither an IOAS nor a paging hwpt → -EINVAL (kernel oracle, 6.12)',
  'upstream.hwpt-alloc.ok': 'IOMMU_HWPT_ALLOC: a manual hwpt, never chosen by auto-domain search (S37)',
  'upstream.ioas.enoent': 'iommufd_get_ioas → iommufd_get_object: id missing or of another type → -ENOENT (kernel oracle, 6.12: a hwpt id is -ENOENT, not -EINVAL)',
  'upstream.map.einval': 'iopt_alloc_area_pages / iopt_check_iova: length 0, or iova or length not a multiple of iopt->iova_alignment (the smallest page of the IOAS domains; 1 while the IOAS has none) → -EINVAL (kernel oracle, 6.12)',
  'upstream.map.eexist': 'iopt_check_iova: an area already maps part of the range → -EEXIST (kernel oracle, 6.12)',
  'upstream.map.ok': 'IOMMU_IOAS_MAP with FIXED_IOVA: a new area [iova, iova+length-1]',
  'upstream.unmap.einval': 'iopt_unmap_iova: length 0 → -EINVAL',
  'upstream.unmap.enoent': 'iopt_unmap_iova_range: an area crossing the range edge stops the unmap with -ENOENT (areas before it stay unmapped); nothing unmapped → -ENOENT (iommufd_ioas_unmap) (kernel oracle, 6.12)',
  'upstream.unmap.ok': 'IOMMU_IOAS_UNMAP: every area inside the range is unmapped; length out = bytes unmapped',
  'upstream.destroy.enoent': 'iommufd_object_remove: missing id → -ENOENT',
  'upstream.destroy.device-busy': 'IOMMU_DESTROY of a device object: the binding driver holds a reference until unbind → -EBUSY',
  'upstream.destroy.hwpt-attached': 'IOMMU_DESTROY of an attached hwpt → -EBUSY (S37)',
  'upstream.destroy.ioas-busy': 'IOMMU_DESTROY of an IOAS with hwpts → -EBUSY',
  'upstream.destroy.ok': 'IOMMU_DESTROY: object removed',
  'upstream.group.no-vfio-devices': 'vfio_group_fops_open: no vfio-registered device in the group (no node) → -ENODEV',
  'upstream.group.already-open': 'vfio_group_fops_open: opened_file set → -EBUSY (S25)',
  'upstream.group.cdev-bound': 'vfio_group_fops_open: a group device is bound through its cdev → -EBUSY (invariant 6)',
  'upstream.group.opened': 'vfio_group_fops_open: group fd opened',
  'upstream.group.closed': 'group fd close: a legacy container claim is released (device fds keep the group alive)',
  'upstream.group.status': 'VFIO_GROUP_GET_STATUS: VIABLE|CONTAINER_SET once set, else VIABLE iff owner_cnt == 0 (S23)',
  'upstream.group.container-already-set': 'vfio_group_ioctl_set_container: already has a container or iommufd → -EINVAL (S25)',
  'upstream.group.claim-eperm': 'iommu_group_claim_dma_owner: any owner_cnt → -EPERM (§1.6)',
  'upstream.group.set-legacy': 'vfio_container_attach_group: the group is claimed by the container (blocking, or the container domain once VFIO_SET_IOMMU ran)',
  'upstream.group.set-iommufd': 'iommufd_vfio_compat_ioas_create: no ownership claim yet (S23)',
  'upstream.group.unset-none': 'vfio_group_ioctl_unset_container: none set → -EINVAL (S25)',
  'upstream.group.unset-busy': 'vfio_group_ioctl_unset_container: device fds still open → -EBUSY',
  'upstream.group.unset': 'UNSET_CONTAINER: ownership released, group back to its default domain',
  'upstream.group.no-such-device': 'vfio_device_get_from_name: no such vfio device in the group → -ENODEV',
  'upstream.group.no-container': 'vfio_df_group_open: no container or iommufd set → -EINVAL',
  'upstream.group.no-iommu-driver': 'vfio_group_use_container: the container has no IOMMU backend yet → -EINVAL',
  'upstream.group.device-fd': 'VFIO_GROUP_GET_DEVICE_FD: a device fd through the group (may be opened several times)',
  'upstream.group.device-fd-bind': 'GET_DEVICE_FD with an iommufd: first open binds and claims (-EPERM/-EBUSY/-EINVAL, S23) and attaches the compat IOAS',
  'upstream.container.iommu-already-set': 'VFIO_SET_IOMMU: backend already set → -EINVAL',
  'upstream.container.no-groups': 'VFIO_SET_IOMMU: no group in the container → -EINVAL',
  'upstream.container.unsafe-interrupts':
    'vfio_iommu_type1.c:vfio_iommu_type1_attach_group: a group without isolated MSI and vfio_iommu_type1.allow_unsafe_interrupts=0 → -EPERM at VFIO_SET_IOMMU (kernel oracle, 6.12, virtio-iommu)',
  'upstream.container.require-direct': 'type1 attach of an unmanaged domain to a require_direct device → -EINVAL (S33)',
  'upstream.container.set-iommu': 'VFIO_SET_IOMMU: the backend attaches its domain to every group of the container',
} as const;
export type UpstreamRule = keyof typeof UPSTREAM_RULES;

const R = <K extends UpstreamRule>(k: K): K => k;

const sameOwner = (a: Owner | null, b: Owner): boolean =>
  a !== null && a.kind === b.kind && (a.kind === 'ictx' ? a.ictx === (b as typeof a).ictx : a.container === (b as typeof a).container);

/** iommu_device_claim_dma_owner / iommu_group_claim_dma_owner (`exclusive`): the group after the claim */
export const claimDmaOwner = (
  state: ModelState,
  g: GroupState,
  owner: Owner,
  exclusive: boolean,
  ownerDomain: Parameters<typeof setDomain>[2] = { kind: 'blocking' },
): Planned<{ group: GroupState; effects: Effect[]; rule: string }> => {
  if (g.ownerCnt > 0 && (exclusive || !sameOwner(g.owner, owner))) return refuse('EPERM', exclusive ? R('upstream.group.claim-eperm') : R('upstream.claim.owned'));
  if (g.ownerCnt > 0) {
    const group = groupWith(g, { ownerCnt: g.ownerCnt + 1 });
    return { ok: true, value: { group, effects: [{ type: 'GroupSet', group }], rule: R('upstream.claim.same-owner') } };
  }
  if (groupDomain(state, g).kind !== 'default' || Object.keys(g.pasids).length > 0) return refuse('EBUSY', R('upstream.claim.domain-busy'));
  const names = namesOf(state, g);
  if (names.some((n) => state.devices.get(n)?.requireDirect)) return refuse('EINVAL', R('upstream.claim.require-direct'));
  const group = groupWith(g, { owner, ownerCnt: 1 });
  return { ok: true, value: { group, effects: [{ type: 'GroupSet', group }, ...setDomain(state, names, ownerDomain)], rule: R('upstream.claim.take') } };
};

/** iommu_device_release_dma_owner: the last owner puts the group back on its default domain */
const releaseDmaOwner = (state: ModelState, g: GroupState): Effect[] => {
  if (g.ownerCnt > 1) return [{ type: 'GroupSet', group: groupWith(g, { ownerCnt: g.ownerCnt - 1 }) }];
  return [{ type: 'GroupSet', group: groupWith(g, { ownerCnt: 0, owner: null, attached: [] }) }, ...setDomain(state, namesOf(state, g), { kind: 'default' })];
};

/** iommufd_device_bind + claim: shared by the cdev BIND and the iommufd-backed GET_DEVICE_FD */
const bindDevice = (state: ModelState, fd: DeviceFdState, g: GroupState | undefined, ictxHandle: string): Planned<{ effects: Effect[]; devId: number; group: GroupState; rule: string }> => {
  const ictx = liveIctx(state, ictxHandle);
  if (!ictx) return state.containers.has(ictxHandle) ? refuse('EBADFD', R('upstream.bind.not-iommufd')) : refuse('EBADF', 'common.fd.ebadf');
  if (!state.caps.cacheCoherent) return refuse('EINVAL', R('upstream.bind.no-coherency'));
  if (!g) return refuse('ENODEV', R('upstream.bind.no-group'));
  if (state.caps.interruptRemapping === false && !state.caps.allowUnsafeInterrupts) return refuse('EPERM', R('upstream.bind.unsafe-interrupts'));
  const claim = claimDmaOwner(state, g, { kind: 'ictx', ictx: ictxHandle }, false);
  if (!claim.ok) return claim;
  const devId = nextObjectId(ictx);
  const bound = fdWith(fd, { ictx: ictxHandle, devId, hwpt: null });
  return {
    ok: true,
    value: {
      effects: [...claim.value.effects, { type: 'ObjectSet', ictx: ictxHandle, id: devId, object: { kind: 'device', device: fd.device, deviceFd: fd.handle } }, { type: 'FdSet', handle: fd.handle, fd: bound }],
      devId,
      group: claim.value.group,
      rule: claim.value.rule === 'upstream.claim.take' ? claim.value.rule : R('upstream.bind.ok'),
    },
  };
};

/** the attach of a bound fd to an IOAS or HWPT (RID, not PASID): first attach, join, or replace */
const attachRid = (state: ModelState, fd: DeviceFdState, g: GroupState, ptId: number, taken: readonly number[] = []): Decision => {
  const ictxHandle = fd.ictx!;
  const ictx = state.ictxs.get(ictxHandle);
  const obj = ictx?.objects.get(ptId);
  if (!ictx || !obj) return fail('ENOENT', R('upstream.attach.pt-enoent'));
  if (obj.kind === 'device') return fail('EINVAL', R('upstream.attach.pt-wrong-type'));
  const current = fd.hwpt;
  const groupOn = groupHwpt(state, g);
  const prefer = current ?? groupOn?.hwpt ?? null;
  const target = obj.kind === 'hwpt' ? { hwpt: ptId, created: false } : resolveIoas(ictx, ptId, prefer, taken);
  const create = obj.kind === 'ioas' ? createdHwpt(ictxHandle, ptId, target) : [];
  if (current !== null) {
    if (target.hwpt === current) return ok(R('upstream.attach.replace-same'), [], { ptId: current });
    // replace moves the whole group: every attached fd of the group follows (refcount_add(num_devices))
    const moving = [...fdsOnHwpt(state, ictxHandle, current).values()].filter((f) => g.attached.includes(f.device));
    const effects: Effect[] = [
      ...create,
      ...moving.map((f): Effect => ({ type: 'FdSet', handle: f.handle, fd: fdWith(f, { hwpt: target.hwpt }) })),
      ...setDomain(state, namesOf(state, g), { kind: 'hwpt', ictx: ictxHandle, hwpt: target.hwpt }),
      ...freeAutoHwpt(state, ictxHandle, current, moving.map((f) => f.handle)),
    ];
    return ok(R('upstream.attach.replace'), effects, { ptId: target.hwpt });
  }
  if (groupOn !== null) {
    // iommufd_hw_pagetable_attach: igroup->hwpt != hwpt → -EINVAL; an IOAS succeeds only through the group's own auto hwpt
    const joins = obj.kind === 'hwpt' ? ptId === groupOn.hwpt : autoHwptsOf(ictx, ptId).includes(groupOn.hwpt);
    if (!joins) return fail('EINVAL', R('upstream.attach.group-on-other-hwpt'));
    return ok(R('upstream.attach.join'), joinGroup(state, g, fd, groupOn.hwpt, null), { ptId: groupOn.hwpt });
  }
  return ok(R('upstream.attach.first'), [...create, ...joinGroup(state, g, fd, target.hwpt, namesOf(state, g))], { ptId: target.hwpt });
};

const attachPasid = (state: ModelState, fd: DeviceFdState, g: GroupState, ptId: number, pasid: number): Decision => {
  const ictxHandle = fd.ictx!;
  const ictx = state.ictxs.get(ictxHandle);
  const obj = ictx?.objects.get(ptId);
  if (!ictx || !obj) return fail('ENOENT', R('upstream.attach.pt-enoent'));
  if (obj.kind === 'device') return fail('EINVAL', R('upstream.attach.pt-wrong-type'));
  if (namesOf(state, g).some((n) => pasid >= (state.devices.get(n)?.maxPasids ?? 0))) return fail('EINVAL', R('upstream.attach.pasid-range'));
  if (g.pasids[String(pasid)] !== undefined) return fail('EBUSY', R('upstream.attach.pasid-busy'));
  const target = obj.kind === 'hwpt' ? { hwpt: ptId, created: false } : resolveIoas(ictx, ptId, null);
  const create = obj.kind === 'ioas' ? createdHwpt(ictxHandle, ptId, target) : [];
  return ok(R('upstream.attach.pasid'), [...create, { type: 'GroupSet', group: groupWith(g, { pasids: { ...g.pasids, [String(pasid)]: target.hwpt } }) }], { ptId: target.hwpt });
};

/** a bound fd going away: detach if attached, unbind (device object), release ownership */
const unbindFd = (state: ModelState, fd: DeviceFdState, g: GroupState | undefined): Effect[] => {
  const effects: Effect[] = [];
  let group = g;
  if (group && fd.hwpt !== null) {
    const left = leaveGroup(state, group, fd, namesOf(state, group), { kind: 'blocking' });
    effects.push(...left.effects);
    group = left.group;
  }
  if (fd.ictx !== null && fd.devId !== null) {
    effects.push({ type: 'ObjectSet', ictx: fd.ictx, id: fd.devId, object: null });
    const ictx = state.ictxs.get(fd.ictx);
    // a closed ctx lives on only while bound devices hold it (S9)
    if (ictx && !ictx.open && ![...ictx.objects.values()].some((o) => o.kind === 'device' && o.deviceFd !== fd.handle)) {
      effects.push({ type: 'IctxSet', handle: fd.ictx, open: null });
    }
  }
  if (group) effects.push(...releaseDmaOwner(state, group));
  return effects;
};

const decideBindDriver = (state: ModelState, device: string, driver: string, via: 'bind' | 'drivers_probe'): Decision => {
  const d = state.devices.get(device);
  if (!d) return fail('ENODEV', 'common.driver.no-device');
  if (d.driver !== null) return via === 'drivers_probe' ? ok(R('upstream.probe.drivers-probe-bound')) : fail('EBUSY', 'common.driver.already-bound');
  const bound: Effect = { type: 'DeviceSet', device: deviceWith(d, { driver }) };
  if (isManagedDma(state, driver)) return ok(R('upstream.probe.managed-dma'), [bound]);
  const g = d.group === null ? undefined : state.groups.get(d.group);
  if (!g) return ok(R('upstream.probe.no-group'), [bound]);
  if (g.ownerCnt > 0 && (g.owner !== null || groupDomain(state, g).kind !== 'default' || Object.keys(g.pasids).length > 0)) {
    // drivers_probe_store: `if (bus_rescan_devices_helper(dev, NULL) == 0) err = count;` else -EINVAL
    return via === 'drivers_probe' ? fail('EINVAL', R('upstream.probe.drivers-probe-einval')) : fail('EBUSY', R('upstream.probe.use-default-domain'));
  }
  return ok(R('upstream.probe.dma-api-user'), [bound, { type: 'GroupSet', group: groupWith(g, { ownerCnt: g.ownerCnt + 1 }) }]);
};

const decideBindIommufd = (state: ModelState, op: Extract<Operation, { kind: 'bindIommufd' }>): Decision => {
  const fd = state.fds.get(op.deviceFd);
  if (!fd) return fail('EBADF', 'common.fd.ebadf');
  // vfio_df_ioctl_bind_iommufd: `if (bind.argsz < minsz || bind.flags || bind.iommufd < 0) return -EINVAL;`
  if (badArgs(op.args, BIND_MINSZ) || op.badFd === 'negative') return fail('EINVAL', R('upstream.bind.args'));
  if (fd.via === 'group') return fail('EINVAL', R('upstream.bind.group-fd'));
  const g = groupOfDevice(state, fd.device);
  if (g?.groupFd != null) return fail('EBUSY', R('upstream.bind.group-node-open'));
  if (fd.ictx !== null) return fail('EINVAL', R('upstream.bind.already-bound'));
  if (op.badFd === 'closed') return fail('EBADF', R('upstream.bind.closed-fd'));
  if (op.badFd === 'not-iommufd') return fail('EBADFD', R('upstream.bind.not-iommufd'));
  if (!liveIctx(state, op.ictx)) return state.containers.has(op.ictx) ? fail('EBADFD', R('upstream.bind.not-iommufd')) : fail('EBADF', 'common.fd.ebadf');
  for (const other of fdsOfDevice(state, fd.device)) if (other.handle !== fd.handle && other.ictx !== null) return fail('EINVAL', R('upstream.bind.device-open'));
  const bound = bindDevice(state, fd, g, op.ictx);
  if (!bound.ok) return bound.decision;
  return ok(bound.value.rule, bound.value.effects, { devId: bound.value.devId });
};

/** offsetofend(..., out_devid / pt_id / flags): the smallest argsz each cdev ioctl accepts */
const BIND_MINSZ = 16;
const ATTACH_MINSZ = 12;
const DETACH_MINSZ = 8;
const badArgs = (args: IoctlArgs | undefined, minsz: number): boolean =>
  args !== undefined && ((args.argsz !== undefined && args.argsz < minsz) || (args.flags !== undefined && args.flags !== 0));

const gateBound = (state: ModelState, handle: string, groupRule: UpstreamRule, gateRule: UpstreamRule): Planned<DeviceFdState> => {
  const fd = state.fds.get(handle);
  if (!fd) return refuse('EBADF', 'common.fd.ebadf');
  if (fd.via === 'group') return refuse('ENOTTY', groupRule);
  if (fd.ictx === null) return refuse('EINVAL', gateRule);
  return { ok: true, value: fd };
};

const decideAttach = (state: ModelState, op: Extract<Operation, { kind: 'attachPt' }>): Decision => {
  const gate = gateBound(state, op.deviceFd, 'upstream.attach.group-fd', 'upstream.attach.before-bind');
  if (!gate.ok) return gate.decision;
  const fd = gate.value;
  // vfio_df_ioctl_attach_pt: `if (attach.argsz < minsz || attach.flags) return -EINVAL;` (a PASID attach carries `pasid`)
  if (op.pasid === undefined && badArgs(op.args, ATTACH_MINSZ)) return fail('EINVAL', R('upstream.attach.args'));
  const g = groupOfDevice(state, fd.device);
  if (!g) return fail('ENODEV', R('upstream.bind.no-group'));
  if (op.pasid !== undefined) {
    if (!state.devices.get(fd.device)?.pasidAttach) return fail('EOPNOTSUPP', R('upstream.attach.pasid-unsupported'));
    return attachPasid(state, fd, g, op.ptId, op.pasid);
  }
  return attachRid(state, fd, g, op.ptId);
};

const decideDetach = (state: ModelState, op: Extract<Operation, { kind: 'detachPt' }>): Decision => {
  const gate = gateBound(state, op.deviceFd, 'upstream.detach.group-fd', 'upstream.detach.before-bind');
  if (!gate.ok) return gate.decision;
  const fd = gate.value;
  if (op.pasid === undefined && badArgs(op.args, DETACH_MINSZ)) return fail('EINVAL', R('upstream.detach.args'));
  const g = groupOfDevice(state, fd.device);
  if (op.pasid !== undefined) {
    if (!g || g.pasids[String(op.pasid)] === undefined) return ok(R('upstream.detach.not-attached'));
    const hwpt = g.pasids[String(op.pasid)]!;
    const pasids = { ...g.pasids };
    delete pasids[String(op.pasid)];
    const after = groupWith(g, { pasids });
    const stillUsed = Object.values(pasids).includes(hwpt) || [...state.groups.values()].some((o) => o.id !== g.id && o.owner?.kind === 'ictx' && o.owner.ictx === fd.ictx && Object.values(o.pasids).includes(hwpt));
    const freed = stillUsed ? [] : freeAutoHwptIgnoringPasid(fd.ictx!, hwpt, state);
    return ok(R('upstream.detach.pasid'), [{ type: 'GroupSet', group: after }, ...freed]);
  }
  if (!g || fd.hwpt === null) return ok(R('upstream.detach.not-attached'));
  const left = leaveGroup(state, g, fd, namesOf(state, g), { kind: 'blocking' });
  return ok(left.last ? R('upstream.detach.last') : R('upstream.detach.non-last'), left.effects);
};

const hwptUsedByFds = (state: ModelState, ictx: string, hwpt: number): boolean => fdsOnHwpt(state, ictx, hwpt).size > 0;
const freeAutoHwptIgnoringPasid = (ictx: string, hwpt: number, state: ModelState): Effect[] => {
  const o = objectOf(state, ictx, hwpt);
  return o && o.kind === 'hwpt' && o.auto && !hwptUsedByFds(state, ictx, hwpt) ? [{ type: 'ObjectSet', ictx, id: hwpt, object: null }] : [];
};

const decideCloseDevice = (state: ModelState, handle: string): Decision => {
  const fd = state.fds.get(handle);
  if (!fd) return fail('EBADF', 'common.fd.ebadf');
  const closed: Effect = { type: 'FdSet', handle, fd: null };
  if (fd.ictx === null) return ok(R('upstream.close.plain'), [closed]);
  return ok(R('upstream.close.unbind'), [...unbindFd(state, fd, groupOfDevice(state, fd.device)), closed]);
};

const decideCloseIommufd = (state: ModelState, handle: string): Decision => {
  const ictx = liveIctx(state, handle);
  if (!ictx) return fail('EBADF', 'common.fd.ebadf');
  const held = [...ictx.objects.values()].some((o) => o.kind === 'device');
  return held ? ok(R('upstream.ictx.close-deferred'), [{ type: 'IctxSet', handle, open: false }]) : ok(R('upstream.ictx.close'), [{ type: 'IctxSet', handle, open: null }]);
};

const KNOWN_HWPT_FLAGS = 0x7; // NEST_PARENT | DIRTY_TRACKING | PASID

const decideAllocHwpt = (state: ModelState, op: Extract<Operation, { kind: 'allocHwpt' }>): Decision => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('EBADF', 'common.fd.ebadf');
  // iommufd_get_device: a missing id and an object of another type are both -ENOENT (iommufd_get_object)
  const dev = ictx.objects.get(op.devId);
  if (!dev || dev.kind !== 'device') return fail('ENOENT', R('upstream.hwpt-alloc.dev-enoent'));
  // `pt_obj = iommufd_get_object(..., IOMMUFD_OBJ_ANY); if (IS_ERR(pt_obj)) { rc = -EINVAL; ...}`
  const pt = ictx.objects.get(op.ptId);
  if (!pt || pt.kind !== 'ioas') return fail('EINVAL', R('upstream.hwpt-alloc.pt-einval'));
  // the flags are checked last, in iommufd_hwpt_paging_alloc (`flags & ~valid_flags` → -EOPNOTSUPP)
  if ((op.flags & ~KNOWN_HWPT_FLAGS) !== 0) return fail('EOPNOTSUPP', R('upstream.hwpt-alloc.flags'));
  const id = nextObjectId(ictx);
  return ok(R('upstream.hwpt-alloc.ok'), [{ type: 'ObjectSet', ictx: op.ictx, id, object: { kind: 'hwpt', ioas: op.ptId, auto: false } }], { hwptId: id });
};

const decideDestroy = (state: ModelState, op: Extract<Operation, { kind: 'destroy' }>): Decision => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('EBADF', 'common.fd.ebadf');
  const obj = ictx.objects.get(op.objectId);
  if (!obj) return fail('ENOENT', R('upstream.destroy.enoent'));
  if (obj.kind === 'device') return fail('EBUSY', R('upstream.destroy.device-busy'));
  if (obj.kind === 'hwpt' && hwptInUse(state, op.ictx, op.objectId, [])) return fail('EBUSY', R('upstream.destroy.hwpt-attached'));
  if (obj.kind === 'ioas' && [...ictx.objects.values()].some((o) => o.kind === 'hwpt' && o.ioas === op.objectId)) return fail('EBUSY', R('upstream.destroy.ioas-busy'));
  return ok(R('upstream.destroy.ok'), [{ type: 'ObjectSet', ictx: op.ictx, id: op.objectId, object: null }]);
};

// ---- IOAS mappings (iommufd/io_pagetable.c) -----------------------------------------------------------

const PAGE = 4096n;
const hex64 = (n: bigint): string => `0x${n.toString(16).padStart(16, '0')}`;

/** iommufd_get_ioas: the IOAS, or the decision refusing the call */
const ioasFor = (state: ModelState, handle: string, id: number): Planned<Extract<IommufdObject, { kind: 'ioas' }>> => {
  const ictx = liveIctx(state, handle);
  if (!ictx) return refuse('EBADF', 'common.fd.ebadf');
  const obj = ictx.objects.get(id);
  if (!obj || obj.kind !== 'ioas') return refuse('ENOENT', R('upstream.ioas.enoent'));
  return { ok: true, value: obj };
};

/** iopt->iova_alignment: PAGE_SIZE once a domain (any hwpt of this IOAS) is in the IOAS, else 1 */
const ioasAlignment = (state: ModelState, handle: string, ioasId: number): bigint =>
  [...(state.ictxs.get(handle)?.objects.values() ?? [])].some((o) => o.kind === 'hwpt' && o.ioas === ioasId) ? PAGE : 1n;

const decideMap = (state: ModelState, op: Extract<Operation, { kind: 'mapIoas' }>): Decision => {
  const ioas = ioasFor(state, op.ictx, op.ioasId);
  if (!ioas.ok) return ioas.decision;
  const align = ioasAlignment(state, op.ictx, op.ioasId);
  if (op.length === 0n || op.iova % align !== 0n || op.length % align !== 0n) return fail('EINVAL', R('upstream.map.einval'));
  const last = op.iova + op.length - 1n;
  const areas = ioas.value.areas ?? [];
  if (areas.some(([first, end]) => first <= last && end >= op.iova)) return fail('EEXIST', R('upstream.map.eexist'));
  const next = [...areas, [op.iova, last] as const].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return ok(R('upstream.map.ok'), [{ type: 'ObjectSet', ictx: op.ictx, id: op.ioasId, object: { ...ioas.value, areas: next } }], { iova: hex64(op.iova) });
};

const decideUnmap = (state: ModelState, op: Extract<Operation, { kind: 'unmapIoas' }>): Decision => {
  const ioas = ioasFor(state, op.ictx, op.ioasId);
  if (!ioas.ok) return ioas.decision;
  if (op.length === 0n) return fail('EINVAL', R('upstream.unmap.einval'));
  const last = op.iova + op.length - 1n;
  const kept: (readonly [bigint, bigint])[] = [];
  let unmapped = 0n;
  let crossing = false;
  // iopt_unmap_iova_range walks the areas in IOVA order and stops at the first one crossing the range edge
  for (const area of ioas.value.areas ?? []) {
    const [first, end] = area;
    const inRange = first <= last && end >= op.iova;
    if (!inRange || crossing) kept.push(area);
    else if (first < op.iova || end > last) {
      crossing = true;
      kept.push(area);
    } else unmapped += end - first + 1n;
  }
  const effects: Effect[] = unmapped > 0n ? [{ type: 'ObjectSet', ictx: op.ictx, id: op.ioasId, object: { ...ioas.value, areas: kept } }] : [];
  if (crossing || unmapped === 0n) return { outcome: { ok: false, errno: 'ENOENT' }, rule: R('upstream.unmap.enoent'), effects };
  return ok(R('upstream.unmap.ok'), effects, { length: hex64(unmapped) });
};

// ---- legacy group API, as still present upstream (§1.6) ----------------------------------------------

const groupFdOf = (state: ModelState, handle: string, group: number): GroupState | undefined =>
  state.groupFds.get(handle) === group ? state.groups.get(group) : undefined;

const decideOpenGroup = (state: ModelState, op: Extract<Operation, { kind: 'openGroup' }>): Decision => {
  const g = state.groups.get(op.group);
  if (!g || !g.devices.some((n) => isVfioDriverName(state.devices.get(n)?.driver ?? ''))) return fail('ENODEV', R('upstream.group.no-vfio-devices'));
  if (g.groupFd !== null) return fail('EBUSY', R('upstream.group.already-open'));
  if (g.devices.some((d) => [...fdsOfDevice(state, d)].some((f) => f.via === 'cdev' && f.ictx !== null))) return fail('EBUSY', R('upstream.group.cdev-bound'));
  return ok(R('upstream.group.opened'), [
    { type: 'GroupSet', group: groupWith(g, { groupFd: op.groupFd }) },
    { type: 'GroupFdSet', handle: op.groupFd, group: op.group },
  ]);
};

const releaseContainer = (state: ModelState, g: GroupState): Effect[] => {
  const group = groupWith(g, { container: null });
  if (g.container?.kind === 'legacy' && g.owner?.kind === 'container') {
    return [{ type: 'GroupSet', group: groupWith(group, { owner: null, ownerCnt: 0 }) }, ...setDomain(state, namesOf(state, g), { kind: 'default' })];
  }
  return [{ type: 'GroupSet', group }];
};

const decideCloseGroup = (state: ModelState, op: Extract<Operation, { kind: 'closeGroup' }>): Decision => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('EBADF', 'common.fd.ebadf');
  const gone: Effect = { type: 'GroupFdSet', handle: op.groupFd, group: null };
  // device fds hold a reference on the group file: its release waits for them (not modelled further)
  if (groupPathFds(state, g).length > 0) return ok(R('upstream.group.closed'), [gone]);
  const released = releaseContainer(state, groupWith(g, { groupFd: null }));
  return ok(R('upstream.group.closed'), [gone, ...released]);
};

const decideGroupStatus = (state: ModelState, op: Extract<Operation, { kind: 'groupStatus' }>): Decision => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('EBADF', 'common.fd.ebadf');
  if (g.container) return ok(R('upstream.group.status'), [], { viable: true, containerSet: true });
  return ok(R('upstream.group.status'), [], { viable: g.ownerCnt === 0, containerSet: false });
};

const decideSetContainer = (state: ModelState, op: Extract<Operation, { kind: 'setContainer' }>): Decision => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('EBADF', 'common.fd.ebadf');
  if (g.container) return fail('EINVAL', R('upstream.group.container-already-set'));
  const container = { handle: op.container, kind: op.containerKind };
  if (op.containerKind === 'iommufd') {
    const ictx = liveIctx(state, op.container);
    if (!ictx) return state.containers.has(op.container) ? fail('EBADFD', R('upstream.bind.not-iommufd')) : fail('EBADF', 'common.fd.ebadf');
    const hasCompat = [...ictx.objects.values()].some((o) => o.kind === 'ioas' && o.compat);
    const compat: Effect[] = hasCompat ? [] : [{ type: 'ObjectSet', ictx: op.container, id: nextObjectId(ictx), object: { kind: 'ioas', compat: true } }];
    return ok(R('upstream.group.set-iommufd'), [...compat, { type: 'GroupSet', group: groupWith(g, { container }) }]);
  }
  const c = state.containers.get(op.container);
  if (!c || !c.open) return state.ictxs.has(op.container) ? fail('EBADFD', R('upstream.bind.not-iommufd')) : fail('EBADF', 'common.fd.ebadf');
  const domain = c.iommuType !== null ? { kind: 'container' as const, container: op.container } : { kind: 'blocking' as const };
  const claim = claimDmaOwner(state, g, { kind: 'container', container: op.container }, true, domain);
  if (!claim.ok) return claim.decision;
  return ok(R('upstream.group.set-legacy'), [...claim.value.effects, { type: 'GroupSet', group: groupWith(claim.value.group, { container }) }]);
};

const decideUnsetContainer = (state: ModelState, op: Extract<Operation, { kind: 'unsetContainer' }>): Decision => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('EBADF', 'common.fd.ebadf');
  if (!g.container) return fail('EINVAL', R('upstream.group.unset-none'));
  if (groupPathFds(state, g).length > 0) return fail('EBUSY', R('upstream.group.unset-busy'));
  return ok(R('upstream.group.unset'), releaseContainer(state, g));
};

const decideGetDeviceFd = (state: ModelState, op: Extract<Operation, { kind: 'getDeviceFd' }>): Decision => {
  const g = groupFdOf(state, op.groupFd, op.group);
  if (!g) return fail('EBADF', 'common.fd.ebadf');
  const d = state.devices.get(op.device);
  if (!d || !g.devices.includes(op.device) || !isVfioDriverName(d.driver ?? '')) return fail('ENODEV', R('upstream.group.no-such-device'));
  if (!g.container) return fail('EINVAL', R('upstream.group.no-container'));
  const fd: DeviceFdState = { handle: op.newFd, device: op.device, via: 'group', ictx: null, devId: null, hwpt: null };
  if (g.container.kind === 'legacy') {
    if (state.containers.get(g.container.handle)?.iommuType == null) return fail('EINVAL', R('upstream.group.no-iommu-driver'));
    return ok(R('upstream.group.device-fd'), [{ type: 'FdSet', handle: op.newFd, fd }], { deviceFd: op.newFd });
  }
  // iommufd as container: the first open of the device binds and claims, then attaches the compat IOAS
  if ([...fdsOfDevice(state, op.device)].some((f) => f.ictx !== null)) {
    return ok(R('upstream.group.device-fd'), [{ type: 'FdSet', handle: op.newFd, fd }], { deviceFd: op.newFd });
  }
  const bound = bindDevice(state, fd, g, g.container.handle);
  if (!bound.ok) return bound.decision;
  const ictx = state.ictxs.get(g.container.handle)!;
  const compatId = [...ictx.objects.entries()].find(([, o]) => o.kind === 'ioas' && o.compat)?.[0];
  if (compatId === undefined) return ok(R('upstream.group.device-fd-bind'), bound.value.effects, { deviceFd: op.newFd });
  const boundFd = fdWith(fd, { ictx: g.container.handle, devId: bound.value.devId });
  const attach = attachRid(state, boundFd, bound.value.group, compatId, [bound.value.devId]);
  if (!attach.outcome.ok) return ok(R('upstream.group.device-fd-bind'), bound.value.effects, { deviceFd: op.newFd });
  // the attach was planned on the pre-bind state: its domain change is from the default domain
  return ok(R('upstream.group.device-fd-bind'), [...bound.value.effects, ...attach.effects], { deviceFd: op.newFd });
};

const decideSetIommu = (state: ModelState, op: Extract<Operation, { kind: 'setIommu' }>): Decision => {
  const c = state.containers.get(op.container);
  if (!c || !c.open) return fail('EBADF', 'common.fd.ebadf');
  if (c.iommuType !== null) return fail('EINVAL', R('upstream.container.iommu-already-set'));
  const groups = [...state.groups.values()].filter((g) => g.container?.handle === op.container);
  if (groups.length === 0) return fail('EINVAL', R('upstream.container.no-groups'));
  if (state.caps.interruptRemapping === false && !state.caps.allowUnsafeInterrupts) return fail('EPERM', R('upstream.container.unsafe-interrupts'));
  const effects: Effect[] = [{ type: 'ContainerSet', handle: op.container, container: containerWith(c, { iommuType: op.iommuType }) }];
  for (const g of groups) {
    const names = namesOf(state, g);
    if (names.some((n) => state.devices.get(n)?.requireDirect)) return fail('EINVAL', R('upstream.container.require-direct'));
    effects.push(...setDomain(state, names, { kind: 'container', container: op.container }));
  }
  return ok(R('upstream.container.set-iommu'), effects);
};

const decide = (op: Operation, state: ModelState): Decision => {
  const absent = refusedByRelease(op, state);
  if (absent) return absent;
  switch (op.kind) {
    case 'bindDriver':
      return decideBindDriver(state, op.device, op.driver, op.via ?? 'bind');
    case 'unbindDriver':
      return decideUnbindDriver(state, op.device, op.driver);
    case 'openDevice': {
      const d = state.devices.get(op.device);
      if (!d || d.driver === null || !isVfioDriverName(d.driver)) return fail('ENOENT', R('upstream.cdev.no-node'));
      return ok(R('upstream.cdev.open'), [{ type: 'FdSet', handle: op.deviceFd, fd: { handle: op.deviceFd, device: op.device, via: 'cdev', ictx: null, devId: null, hwpt: null } }]);
    }
    case 'accessDevice': {
      const fd = state.fds.get(op.deviceFd);
      if (!fd) return fail('EBADF', 'common.fd.ebadf');
      if (fd.via === 'cdev' && fd.ictx === null) return fail('EINVAL', R('upstream.cdev.access-before-bind'));
      return ok(R('upstream.cdev.access-granted'));
    }
    case 'bindIommufd':
      return decideBindIommufd(state, op);
    case 'attachPt':
      return decideAttach(state, op);
    case 'detachPt':
      return decideDetach(state, op);
    case 'closeDevice':
      return decideCloseDevice(state, op.deviceFd);
    case 'openIommufd':
      return decideOpenIommufd(op.ictx);
    case 'closeIommufd':
      return decideCloseIommufd(state, op.ictx);
    case 'allocIoas':
      return decideAllocIoas(state, op.ictx);
    case 'allocHwpt':
      return decideAllocHwpt(state, op);
    case 'destroy':
      return decideDestroy(state, op);
    case 'mapIoas':
      return decideMap(state, op);
    case 'unmapIoas':
      return decideUnmap(state, op);
    case 'openGroup':
      return decideOpenGroup(state, op);
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
      return decideOpenContainer(op.container);
    case 'setIommu':
      return decideSetIommu(state, op);
    case 'closeContainer':
      return decideCloseContainer(state, op.container);
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};

export const upstreamDecider: ProtocolDecider = {
  variant: 'upstream',
  description: 'Linux as merged: DMA ownership counting (v5.19), iommufd, VFIO cdev (protocol.md §1.0–§1.6)',
  rules: UPSTREAM_RULES,
  initialState,
  decide,
  evolve,
  observe,
};
