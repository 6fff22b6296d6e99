import { fail } from './kernel.js';
import type { ModelState, Operation, Transition } from './types.js';

/**
 * Per-release kernel features: the first mainline release that has each, and where the kernel decides it.
 * The upstream decider asks `refusedByRelease` first, so a history recorded on an older kernel (the
 * `kernelRelease` of its topology snapshot) replays with that kernel's answers: a release without iommufd
 * has no /dev/iommu, one without the VFIO cdev has no /dev/vfio/devices and no cdev ioctls. A snapshot
 * without a release (hosts that do not report it) is judged as the newest kernel: every feature present.
 */
export type Release = readonly [major: number, minor: number];

export interface ReleaseFeature {
  readonly since: Release;
  /** the kernel change and files that brought it (where to look in a kernel tree) */
  readonly reference: string;
}

export const RELEASE_FEATURES = {
  dmaOwnership: {
    since: [5, 19],
    reference: 'iommu_device_claim_dma_owner / iommu_device_use_default_domain (drivers/iommu/iommu.c, "iommu: Add DMA ownership management interfaces", v5.19)',
  },
  iommufd: { since: [6, 2], reference: 'drivers/iommu/iommufd/main.c: the /dev/iommu misc device (iommufd_fops_open), new in v6.2' },
  vfioIommufdCompat: { since: [6, 2], reference: 'drivers/iommu/iommufd/vfio_compat.c: an iommufd as a VFIO container (iommufd_vfio_compat_ioas_create), v6.2' },
  vfioDeviceCdev: {
    since: [6, 6],
    reference: 'drivers/vfio/device_cdev.c: /dev/vfio/devices/vfioN, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_{ATTACH,DETACH}_IOMMUFD_PT (v6.6)',
  },
  hwptAlloc: { since: [6, 6], reference: 'drivers/iommu/iommufd/hw_pagetable.c: iommufd_hwpt_alloc, IOMMU_HWPT_ALLOC (v6.6)' },
  hwptAllocFlags: {
    since: [6, 7],
    reference:
      'drivers/iommu/iommufd/hw_pagetable.c: iommufd_hwpt_alloc checks dev_id, then pt_id (IOMMUFD_OBJ_ANY; a failed lookup is -EINVAL), then flags in iommufd_hwpt_paging_alloc; v6.6 refused any flag first (`if (cmd->flags || cmd->__reserved) return -EOPNOTSUPP;`) and looked pt_id up with iommufd_get_ioas (-ENOENT). NEST_PARENT (1<<0) and DIRTY_TRACKING (1<<1), nested hwpts (IOMMU_HWPT_DATA_VTD_S1), IOMMU_HWPT_SET_DIRTY_TRACKING / GET_DIRTY_BITMAP (v6.7, commit e2a4b294)',
  },
  hwInfo: { since: [6, 6], reference: 'drivers/iommu/iommufd/device.c: iommufd_get_hw_info, IOMMU_GET_HW_INFO (v6.6); out_capabilities (IOMMU_HW_CAP_DIRTY_TRACKING) from v6.7' },
  hwptInvalidate: { since: [6, 8], reference: 'drivers/iommu/iommufd/hw_pagetable.c: iommufd_hwpt_invalidate, IOMMU_HWPT_INVALIDATE (v6.8: the 6.8 fixes pull "Add missing enforcement of invalidation type in the uapi", commit 4c36fbb4)' },
  hwptFaultIdPaging: {
    since: [6, 13],
    reference:
      'drivers/iommu/iommufd/hw_pagetable.c: iommufd_hwpt_paging_alloc valid_flags gains IOMMU_HWPT_FAULT_ID_VALID ("iommufd: Enable PRI when doing the iommufd_hwpt_alloc", posted 2024-09-04) [date-derived, release not confirmed]; before it a fault queue takes a nested hwpt only: 6.12.118 refuses FAULT_ID_VALID on an IOAS with -EOPNOTSUPP (kernel oracle)',
  },
  hwptFaultId: { since: [6, 11], reference: 'drivers/iommu/iommufd/fault.c (eventq.c from 6.14): IOMMU_FAULT_QUEUE_ALLOC and IOMMU_HWPT_FAULT_ID_VALID (1<<2) (v6.11, merge ef7c8f2b)' },
  viommu: { since: [6, 13], reference: 'IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_CHANGE_PROCESS (drivers/iommu/iommufd/ioas.c, merge 341d041d); drivers/iommu/iommufd/viommu.c: IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC (v6.13, vDEVICE commit 0ce5c247); drivers/vfio/vfio_main.c: VFIO_TYPE1_NESTING_IOMMU removed ("vfio: Remove VFIO_TYPE1_NESTING_IOMMU", merge 4e6bd13a)' },
  vdeviceDiesWithDevice: { since: [6, 17], reference: 'drivers/iommu/iommufd/device.c / viommu.c: "iommufd: Destroy vdevice on idevice destroy" (2025-07-18, v6.17): closing the VFIO cdev destroys the device\'s vDEVICE; its id stays taken until the ctx closes (uapi doc of struct iommu_vdevice_alloc)' },
  pasidAttach: {
    since: [6, 15],
    reference:
      'drivers/vfio/device_cdev.c: vfio_df_ioctl_attach_pt / detach_pt accept VFIO_DEVICE_ATTACH_PASID / DETACH_PASID (v6.15, "vfio: VFIO_DEVICE_[AT|DE]TACH_IOMMUFD_PT support pasid"); IOMMU_HWPT_ALLOC_PASID (1<<3); drivers/iommu/iommu.c: PASID validation skips members with max_pasids 0 (b3f6fcd8, 6.15-rc7)',
  },
  veventq: {
    since: [6, 15],
    reference: 'drivers/iommu/iommufd/eventq.c: iommufd_veventq_alloc, IOMMU_VEVENTQ_ALLOC (0x93), anon inode "[iommufd-viommu-event]" (v6.15, pull 48552153)',
  },
  probeDeferNoDefaultDomain: {
    since: [6, 15],
    reference:
      'drivers/iommu/iommu.c: iommu_device_use_default_domain returns -EPROBE_DEFER while the group has no default domain ("iommu: Handle race with default domain setup", Robin Murphy, lore e88b94c9b575 2025-02-28, Fixes 98ac73f99bc4; v6.15 [date-derived], also sent to the 6.6+ stable trees)',
  },
  hwQueue: { since: [6, 17], reference: 'drivers/iommu/iommufd/viommu.c: iommufd_hw_queue_alloc_ioctl, IOMMU_HW_QUEUE_ALLOC (0x94) (v6.17, iommufd.h log 2025-07-11)' },
  vfToken: {
    since: [6, 17],
    reference:
      'drivers/vfio/device_cdev.c: vfio_df_ioctl_bind_iommufd accepts VFIO_DEVICE_BIND_FLAG_TOKEN and calls vfio_df_check_token → vfio_pci_core_match_token_uuid (drivers/vfio/pci/vfio_pci_core.c: vfio_pci_validate_vf_token) ("vfio/pci: Do vf_token checks for VFIO_DEVICE_BIND_IOMMUFD", be2e70b96c3e, v6.17)',
  },
  resetFence: {
    since: [7, 0],
    reference:
      'drivers/iommu/iommu.c: pci_dev_reset_iommu_prepare/done set group->resetting_domain; __iommu_group_set_domain_internal, iommu_attach_device_pasid and iommu_replace_device_pasid return -EBUSY meanwhile (c279e83953d9, v7.0)',
  },
  vfioDmaBuf: {
    since: [6, 19],
    reference: 'drivers/vfio/pci/vfio_pci_core.c: vfio_pci_core_ioctl_feature gains VFIO_DEVICE_FEATURE_DMA_BUF (11) → vfio_pci_core_feature_dma_buf (vfio-v6.19-rc1 merge a3ebb59e); revoked when the device fd closes or the device resets (commit 5d74781e)',
  },
  ioasGetPa: {
    since: [7, 3],
    reference: 'drivers/iommu/iommufd/ioas.c: IOMMU_IOAS_GET_PA (cmd 0x95), "iommufd: Add an ioctl to query PA from IOVA for noiommu mode" (v7.3, pull 85e0d1de)',
  },
  noiommuCdev: {
    since: [7, 3],
    reference: 'drivers/vfio/vfio_main.c, device_cdev.c: "vfio: Enable cdev noiommu mode under iommufd" (Jacob Pan, 2026-07-14): /dev/vfio/devices/noiommu-vfioN binds to iommufd (v7.3, pull 85e0d1de); before, the uAPI was "blocked off"',
  },
} as const satisfies Record<string, ReleaseFeature>;
export type Feature = keyof typeof RELEASE_FEATURES;

/** the rules these answers name live, with their errnos, in rules.ts (RELEASE_RULES) */

/** "6.1.0-28-amd64", "6.12.118" → [6, 1], [6, 12]; null when the text names no release */
export const parseRelease = (text: string | null | undefined): Release | null => {
  const m = /^(\d+)\.(\d+)/.exec(text ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
};

// a fleet runs a few releases and the models ask on most calls: each text is parsed once (bounded, a pure memo)
const PARSED = new Map<string, Release | null>();
const parsedRelease = (text: string | null | undefined): Release | null => {
  if (text == null) return null;
  let r = PARSED.get(text);
  if (r === undefined) {
    if (PARSED.size >= 256) PARSED.clear();
    PARSED.set(text, (r = parseRelease(text)));
  }
  return r;
};

/** the release is `since` or later (an unknown release is the newest kernel) */
export const releaseAtLeast = (release: string | null | undefined, since: Release): boolean => {
  const r = parsedRelease(release);
  if (r === null) return true;
  return r[0] > since[0] || (r[0] === since[0] && r[1] >= since[1]);
};

/** the feature is in the release (an unknown release has every feature) */
export const releaseHas = (release: string | null | undefined, feature: Feature): boolean => {
  return releaseAtLeast(release, RELEASE_FEATURES[feature].since);
};

/**
 * The answer of a release that lacks what the operation needs, or null when the release has it (the
 * decider then decides as usual). An operation on an fd the model does not hold is left to the decider:
 * the kernel answers -EBADF before any dispatch.
 */
export const refusedByRelease = (op: Operation, state: ModelState): Transition | null => {
  const release = state.caps.kernelRelease;
  if (release == null) return null;
  switch (op.kind) {
    case 'openIommufd':
      return releaseHas(release, 'iommufd') ? null : fail('release.iommufd.no-node');
    case 'openDevice':
      return releaseHas(release, 'vfioDeviceCdev') ? null : fail('release.cdev.no-node');
    case 'bindIommufd':
    case 'attachPt':
    case 'detachPt':
      return releaseHas(release, 'vfioDeviceCdev') || !state.fds.has(op.deviceFd) ? null : fail('release.cdev.ioctl-enotty');
    case 'allocHwpt':
      return releaseHas(release, 'hwptAlloc') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.hwpt-alloc.enotty');
    case 'setDirtyTracking':
    case 'getDirtyBitmap':
      return releaseHas(release, 'hwptAllocFlags') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    case 'getHwInfo':
      return releaseHas(release, 'hwInfo') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    case 'invalidateHwpt':
      return releaseHas(release, 'hwptInvalidate') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    case 'allocFaultQueue':
      return releaseHas(release, 'hwptFaultId') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    case 'allocViommu':
    case 'allocVdevice':
    case 'mapFile':
    case 'changeProcess':
      return releaseHas(release, 'viommu') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    case 'allocVeventq':
      return releaseHas(release, 'veventq') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    case 'allocHwQueue':
      return releaseHas(release, 'hwQueue') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    case 'createDmaBuf': {
      // vfio_device_fops_unl_ioctl checks access first (an unbound cdev fd is -EINVAL on every release)
      const fd = state.fds.get(op.deviceFd);
      return releaseHas(release, 'vfioDmaBuf') || !fd || (fd.via === 'cdev' && fd.ictx === null) ? null : fail('release.dma-buf.enotty');
    }
    case 'getPa':
      return releaseHas(release, 'ioasGetPa') || !state.ictxs.get(op.ictx)?.open ? null : fail('release.iommufd-cmd.enotty');
    default:
      return null;
  }
};
