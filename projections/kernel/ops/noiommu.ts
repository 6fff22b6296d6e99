import { createdHwpt, freeAutoHwpt, resolveIoas } from '../iommufdCore.js';
import { fail, liveIctx, nextObjectId, ok } from '../kernel.js';
import { releaseHas } from '../releases.js';
import { fdWith } from '../records.js';
import type { DeviceFdState, Effect, ModelState, Operation, Transition } from '../types.js';

/**
 * noiommu mode through iommufd (7.3, pull 85e0d1de): "vfio: Enable cdev noiommu mode under iommufd" creates
 * /dev/vfio/devices/noiommu-vfioN for a device vfio-pci drives without an IOMMU (enable_unsafe_noiommu_mode),
 * and "iommufd: Allow binding to a noiommu device" binds it to a ctx with no iommu_group and no DMA ownership
 * (there is none to take; the ctx's page table is software only, hwpt_noiommu.c). Before 7.3 the uAPI was
 * "blocked off" (Gunthorpe, 2025-06-03): no such node, so its open fails at path lookup (-ENOENT).
 */

/** the cdev node the recorder opened is a noiommu one */
export const isNoiommuCdev = (cdev: string | undefined): boolean => cdev?.startsWith('noiommu-') === true;

/** open(/dev/vfio/devices/noiommu-vfioN): a new fd from 7.3, no such node before */
export const decideOpenNoiommu = (state: ModelState, op: Extract<Operation, { kind: 'openDevice' }>): Transition => {
  if (!releaseHas(state.caps.kernelRelease, 'noiommuCdev')) return fail('release.cdev.noiommu-no-node');
  const fd: DeviceFdState = { handle: op.deviceFd, device: op.device, via: 'cdev', ictx: null, devId: null, hwpt: null, noiommu: true };
  return ok('upstream.cdev.open', [{ type: 'FdSet', handle: op.deviceFd, fd }]);
};

/** BIND_IOMMUFD of a noiommu fd (7.3): a device object in the ctx, no group claimed */
export const bindNoiommu = (state: ModelState, fd: DeviceFdState, ictxHandle: string): Transition => {
  const ictx = liveIctx(state, ictxHandle);
  if (!ictx) return fail('common.fd.ebadf');
  const devId = nextObjectId(ictx);
  return ok(
    'upstream.bind.noiommu',
    [
      { type: 'ObjectSet', ictx: ictxHandle, id: devId, object: { kind: 'device', device: fd.device, deviceFd: fd.handle } },
      { type: 'FdSet', handle: fd.handle, fd: fdWith(fd, { ictx: ictxHandle, devId, hwpt: null }) },
    ],
    { devId },
  );
};

/**
 * ATTACH of a bound noiommu fd (7.3, "iommufd: Support a HWPT without an iommu driver for noiommu"): the IOAS
 * gets a software-only hwpt (hwpt_noiommu.c) the device alone uses; no iommu_group, so no domain moves. A second
 * attach replaces it, and the old auto hwpt goes when nothing uses it.
 */
export const attachNoiommu = (state: ModelState, fd: DeviceFdState, ptId: number): Transition => {
  const ictx = state.ictxs.get(fd.ictx!);
  const obj = ictx?.objects.get(ptId);
  if (!ictx || !obj) return fail('upstream.attach.pt-enoent');
  if (obj.kind !== 'ioas' && obj.kind !== 'hwpt') return fail('upstream.attach.pt-wrong-type');
  const target = obj.kind === 'hwpt' ? { hwpt: ptId, created: false } : resolveIoas(ictx, ptId, fd.hwpt);
  if (target.hwpt === fd.hwpt) return ok('upstream.attach.replace-same', [], { ptId: target.hwpt });
  const effects: Effect[] = [
    ...(obj.kind === 'ioas' ? createdHwpt(ictx.handle, ptId, target) : []),
    { type: 'FdSet', handle: fd.handle, fd: fdWith(fd, { hwpt: target.hwpt }) },
    ...(fd.hwpt === null ? [] : freeAutoHwpt(state, ictx.handle, fd.hwpt, [fd.handle])),
  ];
  return ok('upstream.attach.noiommu', effects, { ptId: target.hwpt });
};

/** DETACH (or the unbind at close) of a noiommu fd: off its hwpt, an auto hwpt nothing else uses goes */
export const detachNoiommu = (state: ModelState, fd: DeviceFdState): Effect[] =>
  fd.hwpt === null || fd.ictx === null ? [] : [{ type: 'FdSet', handle: fd.handle, fd: fdWith(fd, { hwpt: null }) }, ...freeAutoHwpt(state, fd.ictx, fd.hwpt, [fd.handle])];
