import type { ErrnoName } from '../../schemas/index.js';

/**
 * Every rule a protocol model can decide by, as data: one entry per rule id, each with the text a report
 * shows and, for a refusal, the errno the call fails with and where the kernel (or the 2021 seed sketch,
 * /work/shared/reference/seed-2021-iommu-fd-sketch.txt) decides it. A decider refuses a call by naming the
 * rule (`fail(rule)` in kernel.ts): the errno comes from the entry, so code and text cannot drift apart.
 * `choice`: the reference names no errno and the model chose one (the text says which and why); each
 * choice is exercised in rules.unit.spec.ts.
 */
export interface KernelRef {
  /** `path/to/file.c:function` (or the seed sketch and its step) */
  readonly at: string;
  /** the kernel release read, or `2021 RFC` for the seed sketch */
  readonly release: string;
}

export type RuleEntry =
  | { readonly text: string; readonly errno: ErrnoName; readonly kernelRef: KernelRef; readonly choice?: true }
  | { readonly text: string; readonly errno?: undefined; readonly kernelRef?: KernelRef; readonly choice?: true };

export type RuleTable = Readonly<Record<string, RuleEntry>>;

export const COMMON_RULES = {
  'common.fd.ebadf': { errno: 'EBADF', text: 'the fd is not open in this model (an earlier divergence closed or never opened it): -EBADF', kernelRef: { at: 'fs/file.c:fdget', release: '6.12' } },
  'common.driver.no-device': { errno: 'ENODEV', text: 'bind_store/unbind_store: no such device, or unbind of a driver the device is not bound to → -ENODEV (drivers/base/bus.c)', kernelRef: { at: 'drivers/base/bus.c:bind_store', release: '6.12' } },
  'common.driver.already-bound': { errno: 'EBUSY', text: '__driver_probe_device: the device already has a driver → -EBUSY (drivers/base/dd.c)', kernelRef: { at: 'drivers/base/dd.c:__driver_probe_device', release: '6.12' } },
  'common.driver.unbound': { text: '__device_release_driver: driver detached' },
  'common.driver.vfio-unregister-blocks': { text: 'vfio_unregister_group_dev: unbinding a vfio driver while a device fd is open sleeps until userspace closes it (S31); the model leaves the driver bound' },
  'common.container.opened': { text: 'open(/dev/vfio/vfio): a new container' },
  'common.container.closed': { text: 'close of the container fd: groups keep their container reference until unset' },
} as const satisfies RuleTable;
/** the iommufd calls the seed stages and Linux decide alike */
export const IOMMUFD_RULES = {
  'common.ictx.opened': { text: 'open(/dev/iommu): a new iommufd_ctx (iommufd/main.c:iommufd_fops_open)' },
  'common.ioas.alloc': { text: 'IOMMU_IOAS_ALLOC: id = lowest free id in the ctx xarray (xa_alloc, XA_FLAGS_ALLOC1)' },
} as const satisfies RuleTable;
/** the seed's IOASID lookups (Linux's own are in UPSTREAM_RULES_OWN) */
export const SEED_IOAS_RULES = {
  'common.object.enoent': { errno: 'ENOENT', text: 'iommufd_get_object: no object with that id in this ctx → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_get_object', release: '6.12' } },
  'common.object.wrong-type': { errno: 'EINVAL', text: 'iommufd_get_object: object of another type → -EINVAL', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_get_object', release: '6.12' } },
  'common.ioas.map': { text: 'IOMMU_IOAS_MAP/UNMAP on an existing IOAS succeeds (iova and length are not modelled)' },
} as const satisfies RuleTable;
export const LEGACY_RULES_OWN = {
  'legacy.probe.ok': { text: 'driver core binds; VFIO only learns of it through the BOUND_DRIVER notifier' },
  'legacy.notifier.bug-on': { text: 'vfio_iommu_group_notifier: IOMMU_GROUP_NOTIFY_BOUND_DRIVER for a non-viable driver in a group with container users → BUG_ON(vfio_group_nb_verify) — kernel crash' },
  'legacy.no-cdev': { errno: 'ENOENT', text: 'no /dev/vfio/devices/vfioN before the VFIO cdev (v6.6): open fails -ENOENT', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_init', release: '5.18' } },
  'legacy.no-dev-iommu': { errno: 'ENOENT', text: 'no /dev/iommu before iommufd (v6.2): open fails -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_init', release: '6.2' } },
  'legacy.no-iommufd-ioctl': { errno: 'ENOTTY', text: 'BIND/ATTACH/DETACH_IOMMUFD_PT do not exist: vfio-pci ioctl default → -ENOTTY', kernelRef: { at: 'drivers/vfio/pci/vfio_pci_core.c:vfio_pci_core_ioctl', release: '5.18' } },
  'legacy.access': { text: 'a group-path device fd has full access' },
  'legacy.close': { text: 'device fd close: vfio_device_fops_release → vfio_group_try_dissolve_container drops the fd\'s container user; at the last device fd of a held group (its group fd already closed) the container is detached (__vfio_group_unset_container) and the node opens again (v5.18)' },
  'legacy.group.no-vfio-devices': { errno: 'ENODEV', text: 'vfio_group_fops_open: no vfio device registered in the group → -ENODEV', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_group_fops_open', release: '5.18' } },
  'legacy.group.already-open': { errno: 'EBUSY', text: 'vfio_group_fops_open: group already opened, or its group fd closed while device fds still hold its container (group->container set) → -EBUSY', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_group_fops_open', release: '5.18' } },
  'legacy.group.opened': { text: 'group fd opened' },
  'legacy.group.closed': { text: 'group fd close (vfio_group_fops_release): the group leaves its container (type1 detaches its domain), unless device fds hold the container: then the last device fd\'s close detaches it (v5.18)' },
  'legacy.group.status': { text: 'VFIO_GROUP_GET_STATUS: VIABLE iff every device is vfio_dev_viable (driver-less, vfio, pci-stub, bridge); CONTAINER_SET when set' },
  'legacy.group.container-already-set': { errno: 'EINVAL', text: 'vfio_group_set_container: container_users → -EINVAL', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_group_set_container', release: '5.18' } },
  'legacy.group.not-a-container': { errno: 'EINVAL', text: 'vfio_group_set_container: "is this really our fd?" → -EINVAL', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_group_set_container', release: '5.18' } },
  'legacy.group.set': { text: 'vfio_group_set_container: no viability check (§1.6); type1 attaches its domain if the backend is set' },
  'legacy.group.rmrr': { errno: 'EPERM', text: 'intel-iommu (2021): unmanaged-domain attach of an RMRR-locked device → -EPERM [UNCONFIRMED, not in the reference]', kernelRef: { at: 'drivers/iommu/intel/iommu.c:intel_iommu_attach_device', release: '5.18' } },
  'legacy.group.unset-none': { errno: 'EINVAL', text: 'UNSET_CONTAINER with none set → -EINVAL', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_group_unset_container', release: '5.18' } },
  'legacy.group.unset-busy': { errno: 'EBUSY', text: 'UNSET_CONTAINER while device fds are open → -EBUSY', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_group_unset_container', release: '5.18' } },
  'legacy.group.unset': { text: 'UNSET_CONTAINER: group back to its default domain' },
  'legacy.get-device-fd.not-viable': { errno: 'EINVAL', text: 'vfio_group_get_device_fd: no container users, no iommu driver, or group not viable → -EINVAL (§1.6)', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_group_get_device_fd', release: '5.18' } },
  'legacy.get-device-fd.no-device': { errno: 'ENODEV', text: 'vfio_device_get_from_name: no such device → -ENODEV', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_device_get_from_name', release: '5.18' } },
  'legacy.get-device-fd.ok': { text: 'GET_DEVICE_FD: a device fd (several per device allowed)' },
  'legacy.container.iommu-already-set': { errno: 'EINVAL', text: 'VFIO_SET_IOMMU: backend already set → -EINVAL', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_ioctl_set_iommu', release: '5.18' } },
  'legacy.container.no-groups': { errno: 'EINVAL', text: 'VFIO_SET_IOMMU: no group in the container → -EINVAL', kernelRef: { at: 'drivers/vfio/vfio.c:vfio_ioctl_set_iommu', release: '5.18' } },
  'legacy.container.set-iommu': { text: 'VFIO_SET_IOMMU: type1 attaches its domain to every group' },
} as const satisfies RuleTable;
export const SEED_RULES_OWN = {
  'seed.probe.ok': { text: 'driver core binds; the BOUND_DRIVER notifier re-checks viability of groups in use' },
  'seed.notifier.bug-on': { choice: true, text: 'stage-2 5c: the BOUND_DRIVER notifier finds a non-viable driver in a group in use → BUG_ON. CHOICE: the seed keeps BUG_ON ("might be eliminated" is only a hope), so the host crashes' },
  'seed.cdev.no-node': { errno: 'ENOENT', text: 'no /dev/vfio/device node: the device is not bound to vfio → open fails -ENOENT', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 1', release: '2021 RFC' } },
  'stage1.cdev.singleton-only': { errno: 'ENOENT', choice: true, text: 'stage-1 step 1: device nodes exist only for singleton groups → open fails -ENOENT at path lookup (CHOICE: the node is absent, not refused)', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 1', release: '2021 RFC' } },
  'seed.cdev.open': { text: 'open(/dev/vfio/device): fd opened, no security context yet' },
  'seed.access-before-bind': { errno: 'EACCES', choice: true, text: 'stage-1 step 4: mmap/ioctl blocked until bind. CHOICE: -EACCES, the first errno the seed suggests ("EACCESS or EAGAIN?")', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 4', release: '2021 RFC' } },
  'seed.access-granted': { text: 'access after bind (or through the old group uAPI)' },
  'seed.bind.group-fd': { errno: 'EINVAL', choice: true, text: 'binding a group-path fd. CHOICE: -EINVAL (the seed binds device_fds from /dev/vfio/device only)', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 5', release: '2021 RFC' } },
  'seed.bind.group-node-open': { errno: 'EBUSY', choice: true, text: 'the old group node is open. CHOICE: -EBUSY; the seed wants the whole group in one security context, and Linux later chose -EBUSY (§1.4 #4)', kernelRef: { at: 'drivers/vfio/group.c:vfio_device_block_group', release: '6.12' } },
  'seed.bind.already-bound': { errno: 'EINVAL', choice: true, text: 'this fd is already bound. CHOICE: -EINVAL, as Linux (the seed is silent)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_bind_iommufd', release: '6.12' } },
  'seed.bind.device-open': { errno: 'EINVAL', choice: true, text: 'another fd of the device is bound. CHOICE: -EINVAL, as Linux', kernelRef: { at: 'drivers/vfio/vfio_main.c:vfio_df_open', release: '6.12' } },
  'stage1.bind.not-singleton': { errno: 'EINVAL', choice: true, text: 'stage-1 step 5: bind verifies the group is not 1:N. CHOICE: -EINVAL (argument names a device the stage does not support)', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 5', release: '2021 RFC' } },
  'seed.bind.no-group': { errno: 'ENODEV', choice: true, text: 'bind of a device without an iommu_group (the seed checks an mdev on its parent device, which the model does not have). CHOICE: -ENODEV, as iommufd_device_bind', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_device_bind', release: '6.12' } },
  'seed.bind.unsafe-interrupts': { errno: 'EPERM', choice: true, text: 'no interrupt remapping. CHOICE: -EPERM, as vfio_iommu_type1 did with allow_unsafe_interrupts=0', kernelRef: { at: 'drivers/vfio/vfio_iommu_type1.c:vfio_iommu_type1_attach_group', release: '5.18' } },
  'seed.bind.other-iommufd': { errno: 'EBUSY', choice: true, text: 'the group is in another iommu_fd (or a container) security context. CHOICE: -EBUSY, because block_dma is per iommu_fd and the group is busy in another one (Linux says -EPERM)', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-2 step 5b', release: '2021 RFC' } },
  'seed.bind.not-viable': { errno: 'EPERM', choice: true, text: 'stage-2 5a: first bind checks viability (driver-less, vfio, or an allowed driver). CHOICE: -EPERM, the errno Linux later used for the same refusal', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-2 step 5a', release: '2021 RFC' } },
  'seed.bind.rmrr': { errno: 'EPERM', text: 'attaching block_dma to an RMRR device: 2021 intel-iommu refused unmanaged-domain attach of RMRR-locked devices with -EPERM [UNCONFIRMED, not in the reference]', kernelRef: { at: 'drivers/iommu/intel/iommu.c:intel_iommu_attach_device', release: '5.18' } },
  'seed.bind.first': { text: 'stage-1 step 5 / stage-2 5b: the first bind attaches every group device to the iommu_fd block_dma domain' },
  'seed.bind.same-iommufd': { text: 'stage-2 step 6: binding other devices of the group (same iommu_fd) just succeeds' },
  'seed.attach.group-fd': { errno: 'ENOTTY', choice: true, text: 'ATTACH on an old-uAPI fd. CHOICE: -ENOTTY, the ioctl is not part of that uAPI', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-2 step 7', release: '2021 RFC' } },
  'seed.attach.before-bind': { errno: 'EACCES', choice: true, text: 'attach before bind. CHOICE: -EACCES, the same gate as mmap before bind', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 4', release: '2021 RFC' } },
  'seed.attach.no-pasid': { errno: 'EOPNOTSUPP', choice: true, text: 'the seed has no PASID attach. CHOICE: -EOPNOTSUPP (iommufd convention for an unsupported value)', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-2 step 7', release: '2021 RFC' } },
  'seed.attach.enoent': { errno: 'ENOENT', choice: true, text: 'unknown IOASID → -ENOENT (CHOICE: iommufd convention, the seed is silent)', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_get_object', release: '6.12' } },
  'seed.attach.not-ioasid': { errno: 'EINVAL', choice: true, text: 'pt_id names no IOASID (a device, or an ioasid domain the seed never exposes). CHOICE: -EINVAL (iommufd convention for a bad field)', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 6', release: '2021 RFC' } },
  'seed.attach.already-attached': { errno: 'EBUSY', choice: true, text: 'attach on an attached device: the seed has no replace; the user must detach to block_dma first (S7). CHOICE: -EBUSY', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-1 step 6', release: '2021 RFC' } },
  'stage2.attach.single-ioasid': { errno: 'EINVAL', choice: true, text: 'stage-2 7a: all bound devices of a group attach to a single IOASID. CHOICE: -EINVAL, as vfio type1 refused incompatible domains', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-2 step 7a', release: '2021 RFC' } },
  'stage3.attach.single-ioasid-per-subgroup': { errno: 'EINVAL', choice: true, text: 'stage-3: devices of one sub-group (reliably identifiable requester ids) still share one IOASID. CHOICE: -EINVAL as stage-2', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-3', release: '2021 RFC' } },
  'seed.attach.first': { text: 'stage-2 7b: the first attach moves the whole (stage-3: sub-)group to the IOASID domain' },
  'seed.attach.join': { text: 'a further device joins the IOASID its (sub-)group already uses' },
  'seed.detach.not-attached': { errno: 'EINVAL', choice: true, text: 'detach of a device not attached. CHOICE: -EINVAL (the seed has no detach without attach; Linux returns 0)', kernelRef: { at: 'seed-2021-iommu-fd-sketch.txt:stage-2 step 7c', release: '2021 RFC' } },
  'seed.detach.non-last': { text: 'a non-last detach leaves the (sub-)group on the IOASID domain' },
  'seed.detach.last': { text: 'stage-2 7c: the last detach moves the (sub-)group back to block_dma' },
  'seed.close.plain': { text: 'device fd close of an unbound fd: as v5.18 vfio_device_fops_release → vfio_group_try_dissolve_container, the last device fd of a held group (its group fd already closed) detaches the container and frees the node' },
  'seed.close.unbind': { text: 'stage-2 step 8: a device may be unbound while others stay bound; the group stays in the security context' },
  'seed.close.last-unbind': { text: 'stage-1 step 7 / stage-2 step 9: the last unbind detaches the group and re-attaches the default domain (MMIO zapped)' },
  'seed.ictx.close-teardown': { choice: true, text: 'close of the iommu_fd. CHOICE: tears down every binding of that iommu_fd (groups back to default, fds lose access) — the seed ties the security context to the iommu_fd (S9 contrasts this with Linux)' },
  'seed.no-nesting-ioctl': { errno: 'ENOTTY', choice: true, text: 'IOMMU_HWPT_SET_DIRTY_TRACKING / VIOMMU_ALLOC / VDEVICE_ALLOC / IOAS_MAP_FILE / IOAS_CHANGE_PROCESS: the seed has no HWPT, vIOMMU or vDEVICE objects and no file mappings. CHOICE: -ENOTTY (iommufd convention for an unknown ioctl)', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_fops_ioctl', release: '6.12' } },
  'seed.no-hwpt-alloc': { errno: 'ENOTTY', choice: true, text: 'IOMMU_HWPT_ALLOC: the seed has IOASIDs, no HWPT objects. CHOICE: -ENOTTY (iommufd convention for an unknown ioctl)', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_fops_ioctl', release: '6.12' } },
  'seed.destroy.enoent': { errno: 'ENOENT', text: 'destroy of a missing id → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.12' } },
  'seed.destroy.busy': { errno: 'EBUSY', choice: true, text: 'destroy of a bound device or of an IOASID still attached. CHOICE: -EBUSY, as Linux', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.12' } },
  'seed.destroy.ok': { text: 'IOASID destroyed' },
  'seed.group.cdev-bound': { errno: 'EBUSY', choice: true, text: 'old group node open while a member is bound to an iommu_fd. CHOICE: -EBUSY, the mutual exclusion Linux later added', kernelRef: { at: 'drivers/vfio/group.c:vfio_group_fops_open', release: '6.12' } },
} as const satisfies RuleTable;
export const UPSTREAM_RULES_OWN = {
  'upstream.probe.managed-dma': { text: 'pci_dma_configure: a driver_managed_dma driver (vfio-pci, pci-stub, pcieport, …) binds without touching owner_cnt' },
  'upstream.probe.no-group': { text: 'a device without an iommu_group binds freely' },
  'upstream.probe.use-default-domain': { errno: 'EBUSY', text: 'iommu_device_use_default_domain: owner_cnt and (user owner or non-default domain) → -EBUSY, probe aborted silently', kernelRef: { at: 'drivers/iommu/iommu.c:iommu_device_use_default_domain', release: '6.12' } },
  'upstream.probe.dma-api-user': { text: 'iommu_device_use_default_domain: owner_cnt++ (kernel DMA-API user)' },
  'upstream.probe.drivers-probe-einval': { errno: 'EINVAL', text: 'drivers/base/bus.c:drivers_probe_store: a probe through /sys/bus/pci/drivers_probe that fails (here -EBUSY from iommu_device_use_default_domain) is returned as -EINVAL (kernel oracle, 6.12)', kernelRef: { at: 'drivers/base/bus.c:drivers_probe_store', release: '6.12' } },
  'upstream.probe.drivers-probe-bound': { text: 'drivers/base/bus.c:bus_rescan_devices_helper: drivers_probe of a device that has a driver does nothing and succeeds' },
  'upstream.cdev.no-node': { errno: 'ENOENT', text: 'no /dev/vfio/devices/vfioN: the device is not registered by a vfio driver → open fails -ENOENT at path lookup', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_device_add', release: '6.12' } },
  'upstream.cdev.open': { text: 'vfio_device_fops_cdev_open: fd opened, no ownership taken' },
  'upstream.cdev.access-before-bind': { errno: 'EINVAL', text: 'vfio_device_fops_unl_ioctl/_mmap/_read/_write: df->access_granted false → -EINVAL (S1 step 3)', kernelRef: { at: 'drivers/vfio/vfio_main.c:vfio_device_fops_unl_ioctl', release: '6.12' } },
  'upstream.cdev.access-granted': { text: 'access after bind (or through a legacy group fd) is allowed' },
  'upstream.bind.args': { errno: 'EINVAL', text: 'vfio_df_ioctl_bind_iommufd: argsz < offsetofend(out_devid), flags != 0 or iommufd < 0 → -EINVAL, before any other check (kernel oracle, 6.12)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_bind_iommufd', release: '6.12' } },
  'upstream.bind.group-fd': { errno: 'EINVAL', text: 'vfio_df_ioctl_bind_iommufd: fd from the legacy group path → -EINVAL (§1.4 #3)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_bind_iommufd', release: '6.12' } },
  'upstream.bind.group-node-open': { errno: 'EBUSY', text: 'vfio_device_block_group: /dev/vfio/<grp> is open → -EBUSY (§1.4 #4)', kernelRef: { at: 'drivers/vfio/group.c:vfio_device_block_group', release: '6.12' } },
  'upstream.bind.already-bound': { errno: 'EINVAL', text: 'df->access_granted: this fd is already bound → -EINVAL (§1.4 #5, S3)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_bind_iommufd', release: '6.12' } },
  'upstream.bind.not-iommufd': { errno: 'EBADFD', text: 'iommufd_ctx_from_fd: the fd is not an iommufd → -EBADFD (§1.4 #6)', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_ctx_from_fd', release: '6.12' } },
  'upstream.bind.closed-fd': { errno: 'EBADF', text: 'iommufd_ctx_from_fd: fget of a number that is no open file → -EBADF (§1.4 #6)', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_ctx_from_fd', release: '6.12' } },
  'upstream.bind.device-open': { errno: 'EINVAL', text: 'vfio_df_open: the device is already opened by another fd → -EINVAL (§1.4 #7)', kernelRef: { at: 'drivers/vfio/vfio_main.c:vfio_df_open', release: '6.12' } },
  'upstream.bind.no-coherency': { errno: 'EINVAL', text: 'iommufd_device_bind: no IOMMU_CAP_CACHE_COHERENCY → -EINVAL (§1.4 #9)', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_device_bind', release: '6.12' } },
  'upstream.bind.no-group': { errno: 'ENODEV', text: 'iommufd_device_bind: no iommu_group → -ENODEV', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_device_bind', release: '6.12' } },
  'upstream.bind.unsafe-interrupts': { errno: 'EPERM', text: 'iommufd_device_bind: no isolated MSI and allow_unsafe_interrupts=0 → -EPERM (§1.4 #9)', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_device_bind', release: '6.12' } },
  'upstream.bind.ok': { text: 'iommufd_device_bind: out_devid = lowest free id in the ctx; in a group this ctx already owns, iommu_device_claim_dma_owner only counts owner_cnt++ (no domain change, no trace: S13)' },
  'upstream.claim.owned': { errno: 'EPERM', text: 'iommu_device_claim_dma_owner: owner_cnt and another owner (a kernel DMA-API driver or another ctx) → -EPERM (S13, S35)', kernelRef: { at: 'drivers/iommu/iommu.c:iommu_device_claim_dma_owner', release: '6.12' } },
  'upstream.claim.domain-busy': { errno: 'EBUSY', text: '__iommu_take_dma_ownership: domain not default or pasid_array in use → -EBUSY', kernelRef: { at: 'drivers/iommu/iommu.c:__iommu_take_dma_ownership', release: '6.12' } },
  'upstream.claim.require-direct': { errno: 'EINVAL', text: '__iommu_group_set_domain: blocking domain refused for a require_direct device → -EINVAL (S33)', kernelRef: { at: 'drivers/iommu/iommu.c:__iommu_group_set_domain', release: '6.12' } },
  'upstream.claim.take': { text: '__iommu_take_dma_ownership: the whole group moves to its blocking domain (S11: trace per group device)' },
  'upstream.attach.group-fd': { errno: 'ENOTTY', text: 'ATTACH on a legacy-group fd is not dispatched to the cdev switch → -ENOTTY', kernelRef: { at: 'drivers/vfio/vfio_main.c:vfio_device_fops_unl_ioctl', release: '6.12' } },
  'upstream.attach.before-bind': { errno: 'EINVAL', text: 'ATTACH before bind → -EINVAL (access gate)', kernelRef: { at: 'drivers/vfio/vfio_main.c:vfio_device_fops_unl_ioctl', release: '6.12' } },
  'upstream.attach.args': { errno: 'EINVAL', text: 'vfio_df_ioctl_attach_pt: argsz < offsetofend(pt_id) or flags without a PASID → -EINVAL (kernel oracle, 6.12: no flag is known)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_attach_pt', release: '6.12' } },
  'upstream.attach.pasid-unsupported': { errno: 'EOPNOTSUPP', text: 'vfio_df_ioctl_attach_pt: PASID flag and no pasid_attach_ioas → -EOPNOTSUPP (S5)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_attach_pt', release: '6.12' } },
  'upstream.attach.pt-enoent': { errno: 'ENOENT', text: 'iommufd_get_object: unknown pt_id → -ENOENT (S5, S7)', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_get_object', release: '6.12' } },
  'upstream.attach.pt-wrong-type': { errno: 'EINVAL', text: 'iommufd_device_change_pt: pt_id names neither an IOAS nor a HWPT → -EINVAL (S5)', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_device_change_pt', release: '6.12' } },
  'upstream.attach.group-on-other-hwpt': { errno: 'EINVAL', text: 'iommufd_hw_pagetable_attach: igroup->hwpt != hwpt → -EINVAL; the auto search fails the same way (S15, S19)', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_hw_pagetable_attach', release: '6.12' } },
  'upstream.attach.first': { text: 'first attach in the group: iommu_attach_group moves every group device to the hwpt (trace per device)' },
  'upstream.attach.join': { text: 'the group already uses this hwpt: the device joins device_list, no domain change, no trace (S19, S35)' },
  'upstream.attach.replace-same': { text: 'second ATTACH to the hwpt already attached: replace to the same hwpt is a no-op (S7)' },
  'upstream.attach.replace': { text: 'ATTACH on an attached device = iommufd_device_replace: the whole group moves, old auto hwpt freed (S7, S37)' },
  'upstream.attach.pasid-range': { errno: 'EINVAL', text: 'iommu_attach_device_pasid: pasid ≥ max_pasids of a group member that has PASID (members with max_pasids 0 are skipped since b3f6fcd8, 6.15-rc7) → -EINVAL (S39)', kernelRef: { at: 'drivers/iommu/iommu.c:iommu_attach_device_pasid', release: '6.15' } },
  'upstream.attach.pasid': { text: 'iommu_attach_device_pasid: the PASID is programmed on every group device (S39)' },
  'upstream.detach.group-fd': { errno: 'ENOTTY', text: 'DETACH on a legacy-group fd → -ENOTTY', kernelRef: { at: 'drivers/vfio/vfio_main.c:vfio_device_fops_unl_ioctl', release: '6.12' } },
  'upstream.detach.before-bind': { errno: 'EINVAL', text: 'DETACH before bind → -EINVAL (access gate)', kernelRef: { at: 'drivers/vfio/vfio_main.c:vfio_device_fops_unl_ioctl', release: '6.12' } },
  'upstream.detach.args': { errno: 'EINVAL', text: 'vfio_df_ioctl_detach_pt: argsz < offsetofend(flags) or flags != 0 → -EINVAL (kernel oracle, 6.12)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_detach_pt', release: '6.12' } },
  'upstream.detach.not-attached': { text: 'vfio_iommufd_physical_detach_ioas returns early: detach of an unattached device → 0 (§1.4)' },
  'upstream.detach.non-last': { text: 'non-last detach: only device_list shrinks; the group stays on the hwpt, no trace (S17)' },
  'upstream.detach.last': { text: 'last detach: iommu_detach_group → blocking domain (S17, S35)' },
  'upstream.detach.pasid': { text: 'PASID detach: the group-wide PASID attachment is removed' },
  'upstream.close.unbind': { text: 'device fd close: detach if attached, iommufd_device_unbind, release DMA ownership (last owner → default domain) (S1, S21)' },
  'upstream.close.plain': { text: 'device fd close of an unbound fd: nothing else changes' },
  'upstream.ictx.close-deferred': { text: 'close(/dev/iommu) with bound devices: they hold a ctx reference, nothing changes (S9)' },
  'upstream.ictx.close': { text: 'close(/dev/iommu): the ctx and its objects are released' },
  'upstream.hwpt-alloc.flags': { errno: 'EOPNOTSUPP', text: 'IOMMU_HWPT_ALLOC: unknown flag bits → -EOPNOTSUPP (S37)', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_paging_alloc', release: '6.12' } },
  'upstream.hwpt-alloc.dev-enoent': { errno: 'ENOENT', text: 'iommufd_hwpt_alloc → iommufd_get_device → iommufd_get_object: dev_id missing or not a device → -ENOENT (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_alloc', release: '6.12' } },
  'upstream.hwpt-alloc.pt-einval': { errno: 'EINVAL', text: 'iommufd_hwpt_alloc: pt_id missing (lookup failure is mapped to -EINVAL) or neither an IOAS nor a paging hwpt → -EINVAL (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_alloc', release: '6.12' } },
  'upstream.hwpt-alloc.nested-eopnotsupp': { errno: 'EOPNOTSUPP', text: 'iommufd_hwpt_nested_alloc: pt_id is a paging hwpt, and a flag other than FAULT_ID_VALID, no user data (data_type none), or a data_type no driver of this release allocates (VT-d S1 6.7, SMMUv3 6.13, AMD 7.0) → -EOPNOTSUPP', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_nested_alloc', release: '6.7' } },
  'upstream.hwpt-alloc.parent-einval': { errno: 'EINVAL', text: 'iommufd_hwpt_nested_alloc: the parent is an auto hwpt or was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT (or pt_id is itself a nested hwpt) → -EINVAL', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_nested_alloc', release: '6.7' } },
  'upstream.hwpt-alloc.nested': { text: 'IOMMU_HWPT_ALLOC on a NEST_PARENT hwpt with user data: a nested hwpt holding a reference on its parent (6.7)' },
  'upstream.destroy.hwpt-parent-busy': { errno: 'EBUSY', text: 'IOMMU_DESTROY of a nesting parent while a nested hwpt holds it (refcount users) → -EBUSY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.7' } },
  'upstream.attach.pasid-join': { text: 'PASID attach on a (group, pasid) already on this hwpt: a sibling joins, the same device replaces to the same hwpt → 0 (iommufd_hw_pagetable_attach, 6.15)' },
  'upstream.attach.pasid-other-hwpt': { errno: 'EINVAL', text: 'iommufd_hw_pagetable_attach: the (group, pasid) is attached to another hwpt (`old_hwpt && old_hwpt != hwpt`) → -EINVAL (6.15)', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_hw_pagetable_attach', release: '6.15' } },
  'upstream.destroy.hwpt-viommu-busy': { errno: 'EBUSY', text: 'IOMMU_DESTROY of a nesting parent a vIOMMU is built on (iommufd_viommu_alloc_ioctl: refcount_inc(&viommu->hwpt->common.obj.users)) → -EBUSY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.13' } },
  'upstream.destroy.viommu-busy': { errno: 'EBUSY', text: 'IOMMU_DESTROY of a vIOMMU while a vDEVICE holds it (iommufd_vdevice_alloc_ioctl: refcount_inc(&viommu->obj.users)) → -EBUSY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.13' } },
  'upstream.dirty.enoent': { errno: 'ENOENT', text: 'iommufd_hwpt_set_dirty_tracking → iommufd_get_hwpt_paging: hwpt_id missing or not a paging hwpt (a nested one, a vIOMMU) → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_set_dirty_tracking', release: '6.7' } },
  'upstream.dirty.eopnotsupp': { errno: 'EOPNOTSUPP', text: 'iopt_set_dirty_tracking: the domain has no dirty_ops (the hwpt was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING; auto hwpts never are) → -EOPNOTSUPP', kernelRef: { at: 'drivers/iommu/iommufd/io_pagetable.c:iopt_set_dirty_tracking', release: '6.7' } },
  'upstream.dirty.set': { text: 'IOMMU_HWPT_SET_DIRTY_TRACKING: dirty tracking enabled or disabled on a DIRTY_TRACKING hwpt (6.7)' },
  'upstream.viommu.eopnotsupp': { errno: 'EOPNOTSUPP', text: 'iommufd_viommu_alloc_ioctl: flags, type DEFAULT, or a type no driver of this release allocates (ARM_SMMUV3 6.13, TEGRA241_CMDQV 6.17) → -EOPNOTSUPP', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_viommu_alloc_ioctl', release: '6.13' } },
  'upstream.viommu.enoent': { errno: 'ENOENT', text: 'iommufd_viommu_alloc_ioctl: dev_id not a device, or hwpt_id not a paging hwpt (iommufd_get_device / iommufd_get_hwpt_paging) → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_viommu_alloc_ioctl', release: '6.13' } },
  'upstream.viommu.not-nest-parent': { errno: 'EINVAL', text: 'iommufd_viommu_alloc_ioctl: `if (!hwpt_paging->nest_parent) rc = -EINVAL`', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_viommu_alloc_ioctl', release: '6.13' } },
  'upstream.viommu.ok': { text: 'IOMMU_VIOMMU_ALLOC: a vIOMMU on its nesting parent, which it holds (6.13)' },
  'upstream.vdevice.enoent': { errno: 'ENOENT', text: 'iommufd_vdevice_alloc_ioctl: viommu_id not a vIOMMU, or dev_id not a (live) device → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_vdevice_alloc_ioctl', release: '6.13' } },
  'upstream.vdevice.eexist': { errno: 'EEXIST', text: 'iommufd_vdevice_alloc_ioctl: the virt_id is taken in this vIOMMU (xa_cmpxchg), or the device already has a vDEVICE → -EEXIST', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_vdevice_alloc_ioctl', release: '6.13' } },
  'upstream.vdevice.ok': { text: 'IOMMU_VDEVICE_ALLOC: the device\'s guest id in a vIOMMU; holds the vIOMMU (6.13); from 6.17 destroyed when its device is unbound' },
  'upstream.map-file.ok': { text: 'IOMMU_IOAS_MAP_FILE: a new area [iova, iova+length-1] whose pages come from a file (IOPT_ADDRESS_FILE; errnos as IOAS_MAP) (6.13)' },
  'upstream.change-process.non-file': { errno: 'EINVAL', text: 'iommufd_ioas_change_process: an IOAS of the ctx has an area not mapped from a file (not IOPT_ADDRESS_FILE) → -EINVAL, nothing changed', kernelRef: { at: 'drivers/iommu/iommufd/ioas.c:iommufd_ioas_change_process', release: '6.13' } },
  'upstream.get-pa.unmapped': {
    errno: 'ENOENT',
    text: 'IOMMU_IOAS_GET_PA: no area of the IOAS maps the IOVA → -ENOENT (errno inferred: the 7.3 ioas.c was not read; -ENOENT is what the io_pagetable area walks answer for an IOVA no area covers, e.g. iommufd_access_pin_pages)',
    kernelRef: { at: 'drivers/iommu/iommufd/ioas.c:iommufd_ioas_get_pa (inferred)', release: '7.3' },
  },
  'upstream.get-pa.ok': { text: 'IOMMU_IOAS_GET_PA: the physical address behind a mapped IOVA (noiommu mode, 7.3); a read, nothing changes' },
  'upstream.change-process.ok': { text: 'IOMMU_IOAS_CHANGE_PROCESS: pinned-page accounting moves to the caller; mappings unchanged (6.13)' },
  'upstream.hwpt-alloc.ok': { text: 'IOMMU_HWPT_ALLOC: a manual hwpt, never chosen by auto-domain search (S37)' },
  'upstream.ioas.enoent': { errno: 'ENOENT', text: 'iommufd_get_ioas → iommufd_get_object: id missing or of another type → -ENOENT (kernel oracle, 6.12: a hwpt id is -ENOENT, not -EINVAL)', kernelRef: { at: 'drivers/iommu/iommufd/ioas.c:iommufd_get_ioas', release: '6.12' } },
  'upstream.map.einval': { errno: 'EINVAL', text: 'iopt_alloc_area_pages / iopt_check_iova: length 0, or iova or length not a multiple of iopt->iova_alignment (the smallest page of the IOAS domains; 1 while the IOAS has none) → -EINVAL (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/io_pagetable.c:iopt_alloc_area_pages', release: '6.12' } },
  'upstream.map.eexist': { errno: 'EEXIST', text: 'iopt_check_iova: an area already maps part of the range → -EEXIST (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/io_pagetable.c:iopt_check_iova', release: '6.12' } },
  'upstream.map.ok': { text: 'IOMMU_IOAS_MAP with FIXED_IOVA: a new area [iova, iova+length-1]' },
  'upstream.unmap.einval': { errno: 'EINVAL', text: 'iopt_unmap_iova: length 0 → -EINVAL', kernelRef: { at: 'drivers/iommu/iommufd/io_pagetable.c:iopt_unmap_iova', release: '6.12' } },
  'upstream.unmap.enoent': { errno: 'ENOENT', text: 'iopt_unmap_iova_range: an area crossing the range edge stops the unmap with -ENOENT (areas before it stay unmapped); nothing unmapped → -ENOENT (iommufd_ioas_unmap) (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/io_pagetable.c:iopt_unmap_iova_range', release: '6.12' } },
  'upstream.unmap.ok': { text: 'IOMMU_IOAS_UNMAP: every area inside the range is unmapped; length out = bytes unmapped' },
  'upstream.destroy.enoent': { errno: 'ENOENT', text: 'iommufd_object_remove: missing id → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.12' } },
  'upstream.destroy.device-busy': { errno: 'EBUSY', text: 'IOMMU_DESTROY of a device object: the binding driver holds a reference until unbind → -EBUSY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.12' } },
  'upstream.destroy.hwpt-attached': { errno: 'EBUSY', text: 'IOMMU_DESTROY of an attached hwpt → -EBUSY (S37)', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.12' } },
  'upstream.destroy.ioas-busy': { errno: 'EBUSY', text: 'IOMMU_DESTROY of an IOAS with hwpts → -EBUSY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.12' } },
  'upstream.destroy.ok': { text: 'IOMMU_DESTROY: object removed' },
  'upstream.group.no-vfio-devices': { errno: 'ENODEV', text: 'vfio_group_fops_open: no vfio-registered device in the group (no node) → -ENODEV', kernelRef: { at: 'drivers/vfio/group.c:vfio_group_fops_open', release: '6.12' } },
  'upstream.group.already-open': { errno: 'EBUSY', text: 'vfio_group_fops_open: opened_file set → -EBUSY (S25)', kernelRef: { at: 'drivers/vfio/group.c:vfio_group_fops_open', release: '6.12' } },
  'upstream.group.cdev-bound': { errno: 'EBUSY', text: 'vfio_group_fops_open: a group device is bound through its cdev → -EBUSY (invariant 6)', kernelRef: { at: 'drivers/vfio/group.c:vfio_group_fops_open', release: '6.12' } },
  'upstream.group.opened': { text: 'vfio_group_fops_open: group fd opened' },
  'upstream.group.closed': { text: 'group fd close: vfio_group_fops_release detaches the container (a legacy claim released, an iommufd put); a legacy container\'s device fds hold the group file, so its release waits for the last of them (vfio_group_unuse_container\'s fput); an iommufd\'s device fds hold none (kernel oracle s21, s22)' },
  'upstream.group.status': { text: 'VFIO_GROUP_GET_STATUS: VIABLE|CONTAINER_SET once set, else VIABLE iff owner_cnt == 0 (S23)' },
  'upstream.group.container-already-set': { errno: 'EINVAL', text: 'vfio_group_ioctl_set_container: already has a container or iommufd → -EINVAL (S25)', kernelRef: { at: 'drivers/vfio/group.c:vfio_group_ioctl_set_container', release: '6.12' } },
  'upstream.group.claim-eperm': { errno: 'EPERM', text: 'iommu_group_claim_dma_owner: any owner_cnt → -EPERM (§1.6)', kernelRef: { at: 'drivers/iommu/iommu.c:iommu_group_claim_dma_owner', release: '6.12' } },
  'upstream.group.set-legacy': { text: 'vfio_container_attach_group: the group is claimed by the container (blocking, or the container domain once VFIO_SET_IOMMU ran)' },
  'upstream.group.set-iommufd': { text: 'iommufd_vfio_compat_ioas_create: no ownership claim yet (S23)' },
  'upstream.group.unset-none': { errno: 'EINVAL', text: 'vfio_group_ioctl_unset_container: none set → -EINVAL (S25)', kernelRef: { at: 'drivers/vfio/group.c:vfio_group_ioctl_unset_container', release: '6.12' } },
  'upstream.group.unset-busy': { errno: 'EBUSY', text: 'vfio_group_ioctl_unset_container: a legacy container with device fds open (container_users != 1) → -EBUSY; an iommufd is put whatever is open (kernel oracle s20)', kernelRef: { at: 'drivers/vfio/group.c:vfio_group_ioctl_unset_container', release: '6.12' } },
  'upstream.group.unset': { text: 'UNSET_CONTAINER: a legacy container\'s claim released (group back to its default domain); an iommufd\'s reference put, the ownership its device fds took kept until they close (kernel oracle s20)' },
  'upstream.group.no-such-device': { errno: 'ENODEV', text: 'vfio_device_get_from_name: no such vfio device in the group → -ENODEV', kernelRef: { at: 'drivers/vfio/group.c:vfio_device_get_from_name', release: '6.12' } },
  'upstream.group.no-container': { errno: 'EINVAL', text: 'vfio_df_group_open: no container or iommufd set → -EINVAL', kernelRef: { at: 'drivers/vfio/group.c:vfio_df_group_open', release: '6.12' } },
  'upstream.group.no-iommu-driver': { errno: 'EINVAL', text: 'vfio_group_use_container: the container has no IOMMU backend yet → -EINVAL', kernelRef: { at: 'drivers/vfio/container.c:vfio_group_use_container', release: '6.12' } },
  'upstream.group.device-fd': { text: 'VFIO_GROUP_GET_DEVICE_FD: a device fd through the group (may be opened several times)' },
  'upstream.group.device-fd-bind': { text: 'GET_DEVICE_FD with an iommufd: first open binds and claims (-EPERM/-EBUSY/-EINVAL, S23) and attaches the compat IOAS' },
  'upstream.container.iommu-already-set': { errno: 'EINVAL', text: 'VFIO_SET_IOMMU: backend already set → -EINVAL', kernelRef: { at: 'drivers/vfio/container.c:vfio_ioctl_set_iommu', release: '6.12' } },
  'upstream.container.no-groups': { errno: 'EINVAL', text: 'VFIO_SET_IOMMU: no group in the container → -EINVAL', kernelRef: { at: 'drivers/vfio/container.c:vfio_ioctl_set_iommu', release: '6.12' } },
  'upstream.container.unsafe-interrupts': { errno: 'EPERM', text: 'vfio_iommu_type1.c:vfio_iommu_type1_attach_group: a group without isolated MSI and vfio_iommu_type1.allow_unsafe_interrupts=0 → -EPERM at VFIO_SET_IOMMU (kernel oracle, 6.12, virtio-iommu)', kernelRef: { at: 'drivers/vfio/vfio_iommu_type1.c:vfio_iommu_type1_attach_group', release: '6.12' } },
  'upstream.container.require-direct': { errno: 'EINVAL', text: 'type1 attach of an unmanaged domain to a require_direct device → -EINVAL (S33)', kernelRef: { at: 'drivers/vfio/vfio_iommu_type1.c:vfio_iommu_type1_attach_group', release: '6.12' } },
  'upstream.container.set-iommu': { text: 'VFIO_SET_IOMMU: the backend attaches its domain to every group of the container' },
  // ---- issue 19: vEVENTQ (6.15), HW queue (6.17), VF token (6.17), reset fence (7.0), EPROBE_DEFER, noiommu (7.3): projections/kernel/ops/ ----
  'upstream.veventq.eopnotsupp': { errno: 'EOPNOTSUPP', text: 'iommufd_veventq_alloc: `if (cmd->flags || cmd->__reserved || cmd->type == IOMMU_VEVENTQ_TYPE_DEFAULT) return -EOPNOTSUPP;`', kernelRef: { at: 'drivers/iommu/iommufd/eventq.c:iommufd_veventq_alloc', release: '6.15' } },
  'upstream.veventq.depth-einval': { errno: 'EINVAL', text: 'iommufd_veventq_alloc: `if (!cmd->veventq_depth) return -EINVAL;`', kernelRef: { at: 'drivers/iommu/iommufd/eventq.c:iommufd_veventq_alloc', release: '6.15' } },
  'upstream.veventq.enoent': { errno: 'ENOENT', text: 'iommufd_veventq_alloc → iommufd_get_viommu: viommu_id missing or not a vIOMMU → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/eventq.c:iommufd_veventq_alloc', release: '6.15' } },
  'upstream.veventq.eexist': { errno: 'EEXIST', text: 'iommufd_veventq_alloc: `if (iommufd_viommu_find_veventq(viommu, cmd->type)) rc = -EEXIST;` (one queue per type per vIOMMU)', kernelRef: { at: 'drivers/iommu/iommufd/eventq.c:iommufd_veventq_alloc', release: '6.15' } },
  'upstream.veventq.ok': { text: 'IOMMU_VEVENTQ_ALLOC: a vEVENTQ on its vIOMMU (which it holds) and its fd (anon_inode:[iommufd-viommu-event]), which holds the queue and the ctx (6.15)' },
  'upstream.event-fd.closed': { text: 'close of a vEVENTQ fd (iommufd_eventq_fops_release): the queue object stays until IOMMU_DESTROY; the ctx reference is dropped, and a ctx already closed goes with its last holder' },
  'upstream.destroy.viommu-queue-busy': { errno: 'EBUSY', text: 'IOMMU_DESTROY of a vIOMMU a vEVENTQ or HW queue holds (`refcount_inc(&viommu->obj.users)`) → iommufd_object_remove -EBUSY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.15' } },
  'upstream.destroy.veventq-fd-busy': { errno: 'EBUSY', text: 'IOMMU_DESTROY of a vEVENTQ whose fd is open (iommufd_eventq_init: `refcount_inc(&eventq->obj.users)`) → -EBUSY', kernelRef: { at: 'drivers/iommu/iommufd/eventq.c:iommufd_eventq_init', release: '6.15' } },
  'upstream.hw-queue.eopnotsupp': { errno: 'EOPNOTSUPP', text: 'iommufd_hw_queue_alloc_ioctl: flags, type DEFAULT, or a vIOMMU whose driver has no HW queue of the type (get_hw_queue_size: Tegra241 CMDQV only) → -EOPNOTSUPP', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_hw_queue_alloc_ioctl', release: '6.17' } },
  'upstream.hw-queue.length-einval': { errno: 'EINVAL', text: 'iommufd_hw_queue_alloc_ioctl: `if (!cmd->length) return -EINVAL;`', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_hw_queue_alloc_ioctl', release: '6.17' } },
  'upstream.hw-queue.eoverflow': { errno: 'EOVERFLOW', text: 'iommufd_hw_queue_alloc_ioctl: `check_add_overflow(cmd->nesting_parent_iova, cmd->length - 1, &last)` → -EOVERFLOW (before the vIOMMU lookup)', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_hw_queue_alloc_ioctl', release: '6.17' } },
  'upstream.hw-queue.enoent': { errno: 'ENOENT', text: 'iommufd_hw_queue_alloc_ioctl → iommufd_get_viommu: viommu_id missing or not a vIOMMU → -ENOENT', kernelRef: { at: 'drivers/iommu/iommufd/viommu.c:iommufd_hw_queue_alloc_ioctl', release: '6.17' } },
  'upstream.hw-queue.ok': { text: 'IOMMU_HW_QUEUE_ALLOC: a HW queue of the vIOMMU, which it holds (6.17)' },
  'upstream.bind.vf-token-required': { errno: 'EACCES', text: 'vfio_pci_validate_vf_token: a VF whose PF is bound to vfio-pci, bound without VFIO_DEVICE_BIND_FLAG_TOKEN → -EACCES ("VF token required to access device")', kernelRef: { at: 'drivers/vfio/pci/vfio_pci_core.c:vfio_pci_validate_vf_token', release: '6.17' } },
  'upstream.bind.pf-vf-token-required': { errno: 'EACCES', text: 'vfio_pci_validate_vf_token: a PF whose VFs have vfio users (vf_token->users), bound without VFIO_DEVICE_BIND_FLAG_TOKEN → -EACCES ("VF token required to access device")', kernelRef: { at: 'drivers/vfio/pci/vfio_pci_core.c:vfio_pci_validate_vf_token', release: '6.17' } },
  'upstream.bind.vf-token-pf-not-vfio': { errno: 'EINVAL', text: 'vfio_pci_validate_vf_token: a token for a VF whose PF is not bound to vfio-pci → -EINVAL ("VF token incorrectly provided, PF not bound to vfio-pci")', kernelRef: { at: 'drivers/vfio/pci/vfio_pci_core.c:vfio_pci_validate_vf_token', release: '6.17' } },
  'upstream.bind.vf-token-not-sriov': { errno: 'EINVAL', text: 'vfio_pci_validate_vf_token: a token for a device that is neither a PF nor a VF → -EINVAL ("VF token incorrectly provided, not a PF or VF")', kernelRef: { at: 'drivers/vfio/pci/vfio_pci_core.c:vfio_pci_validate_vf_token', release: '6.17' } },
  'upstream.attach.noiommu': { text: 'ATTACH of a noiommu fd (7.3): a software-only hwpt on the IOAS (hwpt_noiommu.c) the device alone uses; no iommu_group, no domain moves' },
  'upstream.detach.noiommu': { text: 'DETACH of a noiommu fd (7.3): off its software-only hwpt, which goes when nothing else uses it' },
  'upstream.bind.noiommu': { text: 'BIND_IOMMUFD of a noiommu-vfioN fd (7.3, "iommufd: Allow binding to a noiommu device"): a device object, no iommu_group and no DMA ownership to claim' },
  'upstream.attach.reset-ebusy': { errno: 'EBUSY', text: 'a reset of the device or a group sibling is fencing the IOMMU (group->resetting_domain): __iommu_group_set_domain_internal / iommu_attach_device_pasid → -EBUSY for an attach, a replace or a PASID attach (uapi vfio.h, ATTACH_IOMMUFD_PT)', kernelRef: { at: 'drivers/iommu/iommu.c:__iommu_group_set_domain_internal', release: '7.0' } },
  'upstream.dma-buf.ok': { text: 'VFIO_DEVICE_FEATURE_DMA_BUF on a device fd with access: a dma-buf fd of the BAR ranges (6.19); revoked when the device fd closes or the device resets' },
  'upstream.reset.ok': { text: 'VFIO_DEVICE_RESET / PCI_HOT_RESET on a device fd with access: the reset itself changes no ownership (from 7.0 its IOMMU fence is seen through TraceDeviceResetFence)' },
  'upstream.probe.no-default-domain': { errno: 'EAGAIN', text: 'iommu_device_use_default_domain: the group has no default domain yet (its sysfs type reads "unknown") → -EPROBE_DEFER, which device_driver_attach returns to the bind writer as -EAGAIN (drivers/base/dd.c); the driver core retries later', kernelRef: { at: 'drivers/iommu/iommu.c:iommu_device_use_default_domain', release: '6.15' } },
} as const satisfies RuleTable;

/**
 * IOMMU_GET_HW_INFO, IOMMU_HWPT_INVALIDATE, IOMMU_HWPT_GET_DIRTY_BITMAP, fault queues and the hwpt flags that
 * depend on the device (6.6–6.11; projections/kernel/ops/): read in the 6.12.118 source and confirmed by the kernel
 * oracle on 6.12 (scenario s15 on a real device; s16 with the CONFIG_IOMMUFD_TEST mock devices)
 */
const IOMMUFD_OBJECT_RULES = {
  'upstream.hw-info.ok': { text: 'IOMMU_GET_HW_INFO: the device\'s IOMMU type, its driver data and out_capabilities (IOMMU_HW_CAP_DIRTY_TRACKING from 6.7) (6.6)' },
  'upstream.hw-info.enoent': { errno: 'ENOENT', text: 'iommufd_get_hw_info → iommufd_get_device: dev_id missing or not a device (an IOAS id) → -ENOENT (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/device.c:iommufd_get_hw_info', release: '6.12' } },
  'upstream.hwpt-alloc.dirty-unsupported': {
    errno: 'EOPNOTSUPP',
    text: 'iommufd_hwpt_paging_alloc: IOMMU_HWPT_ALLOC_DIRTY_TRACKING for a device whose IOMMU lacks IOMMU_CAP_DIRTY_TRACKING (GET_HW_INFO reports no dirty-tracking capability) → -EOPNOTSUPP (kernel oracle, 6.12: QEMU VT-d, a mock device with MOCK_FLAGS_DEVICE_NO_DIRTY)',
    kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_paging_alloc', release: '6.7' },
  },
  'upstream.hwpt-alloc.fault-enoent': { errno: 'ENOENT', text: 'iommufd_hwpt_alloc with IOMMU_HWPT_FAULT_ID_VALID → iommufd_get_fault: fault_id missing or not a fault queue → -ENOENT (kernel oracle, 6.12 mock)', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_alloc', release: '6.11' } },
  'upstream.invalidate.einval': {
    errno: 'EINVAL',
    text: 'iommufd_hwpt_invalidate: entry_num without data_uptr or entry_len → -EINVAL (6.8); 6.12.118 also bounds entry_len ≤ PAGE_SIZE and entry_num ≤ 1<<19 (a stable backport, not modelled)',
    kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_invalidate', release: '6.8' },
  },
  'upstream.invalidate.enoent': { errno: 'ENOENT', text: 'iommufd_hwpt_invalidate → iommufd_get_hwpt_nested: hwpt_id missing or not a nested hwpt (a paging one) → -ENOENT, not -EINVAL (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_invalidate', release: '6.8' } },
  'upstream.invalidate.data-type': {
    errno: 'EINVAL',
    text: 'the nested domain\'s cache_invalidate_user takes its own data type only (intel_nested_cache_invalidate_user: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1; the selftest mock its own) → -EINVAL (kernel oracle, 6.12 mock)',
    kernelRef: { at: 'drivers/iommu/intel/nested.c:intel_nested_cache_invalidate_user', release: '6.8' },
  },
  'upstream.invalidate.ok': { text: 'IOMMU_HWPT_INVALIDATE on a nested hwpt: entry_num written back = the entries handled (6.8)' },
  'upstream.dirty-bitmap.enoent': { errno: 'ENOENT', text: 'iommufd_hwpt_get_dirty_bitmap → iommufd_get_hwpt_paging: hwpt_id missing or not a paging hwpt → -ENOENT (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_get_dirty_bitmap', release: '6.7' } },
  'upstream.dirty-bitmap.einval': {
    errno: 'EINVAL',
    text: 'iommufd_check_iova_range: length 0, page_size 0, or iova / iova+length not aligned to the IOAS alignment or to page_size → -EINVAL (checked before the domain\'s dirty ops; kernel oracle, 6.12)',
    kernelRef: { at: 'drivers/iommu/iommufd/io_pagetable.c:iommufd_check_iova_range', release: '6.7' },
  },
  'upstream.dirty-bitmap.eopnotsupp': { errno: 'EOPNOTSUPP', text: 'iommu_read_and_clear_dirty: the domain has no dirty ops (the hwpt was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING) → -EOPNOTSUPP (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/io_pagetable.c:iommu_read_and_clear_dirty', release: '6.7' } },
  'upstream.dirty-bitmap.ok': { text: 'IOMMU_HWPT_GET_DIRTY_BITMAP: the dirty bits of the range, cleared unless NO_CLEAR (6.7)' },
  'upstream.fault-queue.eopnotsupp': { errno: 'EOPNOTSUPP', text: 'iommufd_fault_alloc: any flag → -EOPNOTSUPP (kernel oracle, 6.12)', kernelRef: { at: 'drivers/iommu/iommufd/fault.c:iommufd_fault_alloc', release: '6.11' } },
  'upstream.fault-queue.ok': { text: 'IOMMU_FAULT_QUEUE_ALLOC: a fault object and its fd (anon_inode:[iommufd-pgfault]), which holds the object and the ctx until closed (6.11)' },
  'upstream.destroy.fault-busy': {
    errno: 'EBUSY',
    text: 'IOMMU_DESTROY of a fault queue while its fd is open or a hwpt reports to it (refcount_inc(&fault->obj.users)) → -EBUSY (kernel oracle, 6.12)',
    kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_object_remove', release: '6.11' },
  },
  'upstream.fault-fd.closed': { text: 'close of a fault queue\'s fd: its references on the fault object and the ctx are dropped (iommufd_fault_fops_release) (6.11)' },
} as const satisfies RuleTable;

/** answers of an upstream release that lacks a feature (releases.ts decides when; the kernel oracle ran 6.1) */
export const RELEASE_RULES = {
  'release.iommufd.no-node': { errno: 'ENOENT', text: 'a release without iommufd (before v6.2) has no /dev/iommu: open() fails at path lookup → -ENOENT (kernel oracle, 6.1)', kernelRef: { at: 'fs/namei.c:path_openat', release: '6.1' } },
  'release.cdev.no-node': { errno: 'ENOENT', text: 'a release without the VFIO device cdev (before v6.6) has no /dev/vfio/devices/vfioN: open() → -ENOENT (kernel oracle, 6.1)', kernelRef: { at: 'fs/namei.c:path_openat', release: '6.1' } },
  'release.cdev.ioctl-enotty': {
    errno: 'ENOTTY',
    text: 'a release without the VFIO device cdev: BIND_IOMMUFD/ATTACH_PT/DETACH_PT on a device fd reach vfio_pci_core_ioctl, whose default is -ENOTTY (kernel oracle, 6.1)',
    kernelRef: { at: 'drivers/vfio/pci/vfio_pci_core.c:vfio_pci_core_ioctl', release: '6.1' },
  },
  'release.hwpt-alloc.flags-first': { errno: 'EOPNOTSUPP', text: 'v6.6: iommufd_hwpt_alloc refuses any flag before looking at dev_id (`if (cmd->flags || cmd->__reserved) return -EOPNOTSUPP;`); NEST_PARENT and DIRTY_TRACKING came in v6.7', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_alloc', release: '6.6' } },
  'release.hwpt-alloc.pt-enoent': { errno: 'ENOENT', text: 'v6.6: iommufd_hwpt_alloc looks pt_id up with iommufd_get_ioas: missing or not an IOAS → -ENOENT (from v6.7 IOMMUFD_OBJ_ANY, mapped to -EINVAL)', kernelRef: { at: 'drivers/iommu/iommufd/hw_pagetable.c:iommufd_hwpt_alloc', release: '6.6' } },
  'release.pasid.flag-einval': { errno: 'EINVAL', text: 'before v6.15 VFIO_DEVICE_ATTACH_PASID / DETACH_PASID is an unknown flag: vfio_df_ioctl_attach_pt / detach_pt `if (attach.argsz < minsz || attach.flags) return -EINVAL;` (kernel oracle, 6.12: no flag is known)', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_attach_pt', release: '6.12' } },
  'release.set-iommu.type1-nesting-enodev': { errno: 'ENODEV', text: 'from v6.13 no IOMMU backend claims VFIO_TYPE1_NESTING_IOMMU ("vfio: Remove VFIO_TYPE1_NESTING_IOMMU"): vfio_ioctl_set_iommu finds no driver → -ENODEV', kernelRef: { at: 'drivers/vfio/container.c:vfio_ioctl_set_iommu', release: '6.13' } },
  'release.iommufd-cmd.enotty': { errno: 'ENOTTY', text: 'an iommufd command newer than the release (GET_HW_INFO 6.6, SET_DIRTY_TRACKING / GET_DIRTY_BITMAP 6.7, HWPT_INVALIDATE 6.8, FAULT_QUEUE_ALLOC 6.11, VIOMMU_ALLOC / VDEVICE_ALLOC / IOAS_MAP_FILE / IOAS_CHANGE_PROCESS 6.13, VEVENTQ_ALLOC 6.15, HW_QUEUE_ALLOC 6.17, IOAS_GET_PA 7.3): iommufd_fops_ioctl finds no such command, iommufd_vfio_ioctl returns -ENOIOCTLCMD → -ENOTTY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_fops_ioctl', release: '6.2' } },
  'release.bind.token-flag-einval': { errno: 'EINVAL', text: 'before v6.17 VFIO_DEVICE_BIND_FLAG_TOKEN is an unknown flag: vfio_df_ioctl_bind_iommufd `if (bind.argsz < minsz || bind.flags || bind.iommufd < 0) return -EINVAL;`', kernelRef: { at: 'drivers/vfio/device_cdev.c:vfio_df_ioctl_bind_iommufd', release: '6.6' } },
  'release.dma-buf.enotty': {
    errno: 'ENOTTY',
    text: 'before v6.19 VFIO_DEVICE_FEATURE_DMA_BUF (11) is an unknown feature: vfio_ioctl_device_feature passes it to the driver\'s device_feature, and vfio_pci_core_ioctl_feature\'s `default: return -ENOTTY;`',
    kernelRef: { at: 'drivers/vfio/pci/vfio_pci_core.c:vfio_pci_core_ioctl_feature', release: '6.12' },
  },
  'release.cdev.noiommu-no-node': { errno: 'ENOENT', text: 'before v7.3 no /dev/vfio/devices/noiommu-vfioN exists (the noiommu cdev uAPI was "blocked off"): open() fails at path lookup → -ENOENT', kernelRef: { at: 'fs/namei.c:path_openat', release: '6.6' } },
  'release.hwpt-alloc.enotty': { errno: 'ENOTTY', text: 'a release without IOMMU_HWPT_ALLOC (v6.2–v6.5): iommufd_fops_ioctl finds no such command → -ENOTTY', kernelRef: { at: 'drivers/iommu/iommufd/main.c:iommufd_fops_ioctl', release: '6.2' } },
} as const satisfies RuleTable;

/** every rule of every variant (ids are unique across variants: the prefix names the variant) */
export const ALL_RULES = { ...COMMON_RULES, ...IOMMUFD_RULES, ...SEED_IOAS_RULES, ...LEGACY_RULES_OWN, ...SEED_RULES_OWN, ...UPSTREAM_RULES_OWN, ...IOMMUFD_OBJECT_RULES, ...RELEASE_RULES } as const;
export type RuleId = keyof typeof ALL_RULES;
/** the ids of refusal rules: the only ones a failed decision can name */
export type RefusalRuleId = { [K in RuleId]: (typeof ALL_RULES)[K] extends { readonly errno: ErrnoName } ? K : never }[RuleId];

/** each variant's table: the rules its decisions can name */
// legacy has no /dev/iommu, so no fd it is handed can be an iommufd (the seed stages keep that check)
const { 'legacy.group.not-a-container': _seedOnly, ...LEGACY_ONLY } = LEGACY_RULES_OWN;
export const LEGACY_RULES: RuleTable = { ...COMMON_RULES, ...LEGACY_ONLY };
export const UPSTREAM_RULES: RuleTable = { ...COMMON_RULES, ...IOMMUFD_RULES, ...UPSTREAM_RULES_OWN, ...IOMMUFD_OBJECT_RULES, ...RELEASE_RULES };
/** seed rules only a group of several devices can reach: stage-1 binds singleton groups only */
const MULTI_DEVICE_ONLY: ReadonlySet<string> = new Set(['seed.bind.not-viable', 'seed.bind.same-iommufd', 'seed.bind.other-iommufd', 'seed.attach.join', 'seed.detach.non-last', 'seed.close.unbind']);
/** a seed stage's table: the seed rules (stage-1 ones for stage 1 only, stage-2 ones from stage 2 on, ...) and the legacy group uAPI it keeps */
export const seedRules = (stage: 1 | 2 | 3): RuleTable => {
  const applies = (id: string): boolean =>
    id.startsWith('stage1.') ? stage === 1 : id.startsWith('stage2.') ? stage >= 2 : id.startsWith('stage3.') ? stage === 3 : stage > 1 || !MULTI_DEVICE_ONLY.has(id);
  const own = Object.entries(SEED_RULES_OWN).filter(([id]) => applies(id));
  const groupUapi = Object.entries(LEGACY_RULES_OWN).filter(([id]) => /^legacy\.(group|get-device-fd|container)\./.test(id));
  return { ...COMMON_RULES, ...IOMMUFD_RULES, ...SEED_IOAS_RULES, ...Object.fromEntries(groupUapi), ...Object.fromEntries(own) };
};
