import { fail, liveIctx, ok } from '../kernel.js';
import { releaseHas } from '../releases.js';
import type { IctxState, IommufdObject, ModelState, Operation, Transition } from '../types.js';

/*
 * The hwpt calls of 6.6–6.8 past IOMMU_HWPT_ALLOC (drivers/iommu/iommufd/hw_pagetable.c, io_pagetable.c,
 * device.c as of 6.12.118): what a recorded GET_HW_INFO, HWPT_INVALIDATE and GET_DIRTY_BITMAP would have
 * answered, and the flag checks of a paging hwpt that depend on the device. Confirmed by the kernel oracle on
 * 6.12 (deploy/kernel-oracle/scenarios/s15-* on a real device, s16-* on the CONFIG_IOMMUFD_TEST mock devices).
 */

type Hwpt = Extract<IommufdObject, { kind: 'hwpt' }>;
type HwptAlloc = Extract<Operation, { kind: 'allocHwpt' }>;

/** enum iommufd_hwpt_alloc_flags */
const NEST_PARENT = 1 << 0;
const DIRTY_TRACKING = 1 << 1;
export const FAULT_ID_VALID = 1 << 2;

/**
 * iommufd_get_hw_info (6.6): `flags`/reserved refused first (-EOPNOTSUPP; the catalogue records neither), then
 * iommufd_get_device: dev_id missing or another object → -ENOENT. The answer (type, capabilities) is the
 * hardware's: the model does not predict it, the topology snapshot carries it (`hwInfo`).
 */
export const decideGetHwInfo = (state: ModelState, op: Extract<Operation, { kind: 'getHwInfo' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  if (ictx.objects.get(op.devId)?.kind !== 'device') return fail('upstream.hw-info.enoent');
  return ok('upstream.hw-info.ok');
};

/** the invalidation data type each nested hwpt's driver takes (intel_nested_cache_invalidate_user; SMMUv3 via its vIOMMU) */
const INVALIDATE_DATA_OF: Readonly<Record<string, string>> = { 'vtd-s1': 'vtd-s1', 'arm-smmuv3': 'viommu-arm-smmuv3' };

/**
 * iommufd_hwpt_invalidate (6.8): `entry_num` without `entry_len` (or data_uptr, which the catalogue does not
 * record) → -EINVAL; iommufd_get_hwpt_nested: not a nested hwpt → -ENOENT (a paging hwpt too: the lookup is by
 * type); the domain's cache_invalidate_user refuses another data type (-EINVAL) and writes back the entries done.
 * From 6.13 a vIOMMU id is accepted as well (iommufd_get_object IOMMUFD_OBJ_ANY, viommu->ops->cache_invalidate).
 */
export const decideInvalidateHwpt = (state: ModelState, op: Extract<Operation, { kind: 'invalidateHwpt' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  if (op.entryNum > 0 && op.entryLen === 0) return fail('upstream.invalidate.einval');
  const target = ictx.objects.get(op.hwptId);
  const viommu = target?.kind === 'viommu' && releaseHas(state.caps.kernelRelease, 'viommu');
  if (!viommu && (target?.kind !== 'hwpt' || target.parent === undefined)) return fail('upstream.invalidate.enoent');
  const takes = viommu ? `viommu-${target.viommuType}` : INVALIDATE_DATA_OF[(target as Hwpt).dataType ?? ''];
  if (takes !== op.dataType) return fail('upstream.invalidate.data-type');
  return ok('upstream.invalidate.ok', null, { entryNum: op.entryNum });
};

/** iopt->iova_alignment: PAGE_SIZE once a domain is in the IOAS (as IOAS_MAP decides it), else 1 */
const PAGE = 4096n;
const alignmentOf = (ictx: IctxState, ioas: number): bigint => ([...ictx.objects.values()].some((o) => o.kind === 'hwpt' && o.ioas === ioas) ? PAGE : 1n);

/**
 * iommufd_hwpt_get_dirty_bitmap (6.7): iommufd_get_hwpt_paging (-ENOENT), then iommufd_check_iova_range
 * (length or page_size 0, iova or end unaligned → -EINVAL), then iommu_read_and_clear_dirty: a domain without
 * dirty ops (not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING) → -EOPNOTSUPP. Unknown flags (-EOPNOTSUPP,
 * checked first) are not recorded by the catalogue (only NO_CLEAR).
 */
export const decideGetDirtyBitmap = (state: ModelState, op: Extract<Operation, { kind: 'getDirtyBitmap' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  const hwpt = ictx.objects.get(op.hwptId);
  if (hwpt?.kind !== 'hwpt' || hwpt.parent !== undefined) return fail('upstream.dirty-bitmap.enoent');
  const align = alignmentOf(ictx, hwpt.ioas);
  const end = op.iova + op.length;
  if (op.length === 0n || op.pageSize === 0n || op.iova % align !== 0n || end % align !== 0n || op.iova % op.pageSize !== 0n || end % op.pageSize !== 0n) {
    return fail('upstream.dirty-bitmap.einval');
  }
  if (((hwpt.flags ?? 0) & DIRTY_TRACKING) === 0) return fail('upstream.dirty-bitmap.eopnotsupp');
  return ok('upstream.dirty-bitmap.ok');
};

/**
 * The refusals of a paging IOMMU_HWPT_ALLOC past the known-flags check that depend on the device and the fault
 * queue (iommufd_hwpt_paging_alloc, then iommufd_hwpt_alloc), or null:
 * - DIRTY_TRACKING for a device whose IOMMU lacks IOMMU_CAP_DIRTY_TRACKING → -EOPNOTSUPP (6.7; the device's
 *   capability is known from the snapshot's hwInfo, else allowed);
 * - FAULT_ID_VALID with NEST_PARENT → -EOPNOTSUPP (once paging hwpts take a fault queue);
 * - then the fault queue: `fault_id` not a fault object → -ENOENT.
 */
export const pagingHwptRefusal = (state: ModelState, ictx: IctxState, op: HwptAlloc, device: string): Transition | null => {
  if ((op.flags & DIRTY_TRACKING) !== 0 && state.devices.get(device)?.dirtyTracking === false) return fail('upstream.hwpt-alloc.dirty-unsupported');
  if ((op.flags & FAULT_ID_VALID) !== 0 && (op.flags & NEST_PARENT) !== 0) return fail('upstream.hwpt-alloc.flags');
  return faultRefusal(ictx, op);
};

/** iommufd_hwpt_alloc with IOMMU_HWPT_FAULT_ID_VALID → iommufd_get_fault: not a fault queue → -ENOENT (after the hwpt is made) */
export const faultRefusal = (ictx: IctxState, op: HwptAlloc): Transition | null =>
  (op.flags & FAULT_ID_VALID) !== 0 && ictx.objects.get(op.faultId ?? -1)?.kind !== 'fault' ? fail('upstream.hwpt-alloc.fault-enoent') : null;

/** what a new hwpt object records of its alloc: the fault queue it holds (FAULT_ID_VALID), a nested one's data type */
export const hwptExtras = (op: HwptAlloc): Partial<Hwpt> => ({
  ...((op.flags & FAULT_ID_VALID) !== 0 && op.faultId !== undefined ? { fault: op.faultId } : {}),
  ...(op.dataType !== undefined && op.dataType !== 'none' ? { dataType: op.dataType } : {}),
});
