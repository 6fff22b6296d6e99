import { fail, liveIctx, nextObjectId, ok } from '../kernel.js';
import type { RefusalRuleId } from '../rules.js';
import { ictxHeld } from './veventq.js';
import type { Effect, IctxState, IommufdObject, ModelState, Operation, Transition } from '../types.js';

/*
 * I/O page-fault queues (6.11, drivers/iommu/iommufd/fault.c as of 6.12.118): IOMMU_FAULT_QUEUE_ALLOC makes a
 * fault object and an fd (anon_inode:[iommufd-pgfault]); the fd holds the object (refcount_inc(&fault->obj.users))
 * and the ctx (iommufd_ctx_get) until it is closed (iommufd_fault_fops_release); a hwpt allocated with
 * IOMMU_HWPT_FAULT_ID_VALID holds it too. Confirmed by the kernel oracle on 6.12 (s15, s16).
 */

type Fault = Extract<IommufdObject, { kind: 'fault' }>;

/** iommufd_fault_alloc: `if (cmd->flags) return -EOPNOTSUPP;`, else a fault object with its fd open */
export const decideAllocFaultQueue = (state: ModelState, op: Extract<Operation, { kind: 'allocFaultQueue' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  if (op.flags !== 0) return fail('upstream.fault-queue.eopnotsupp');
  const id = nextObjectId(ictx);
  const fault: Fault = { kind: 'fault', fd: op.faultFd, fdOpen: true };
  return ok('upstream.fault-queue.ok', [{ type: 'ObjectSet', ictx: op.ictx, id, object: fault }], { faultId: id, faultFd: op.faultFd });
};

/** IOMMU_DESTROY of a fault queue: refused while its fd is open or a hwpt reports to it (iommufd_object_remove, users > 1) */
export const faultDestroyRefusal = (ictx: IctxState, id: number): RefusalRuleId | null => {
  const obj = ictx.objects.get(id);
  if (obj?.kind !== 'fault') return null;
  if (obj.fdOpen || [...ictx.objects.values()].some((o) => o.kind === 'hwpt' && o.fault === id)) return 'upstream.destroy.fault-busy';
  return null;
};

/**
 * close of a fault queue's fd: the object stays (until IOMMU_DESTROY or the ctx goes), its fd reference and the
 * ctx reference are dropped; a ctx whose /dev/iommu was closed before goes with its last holder
 */
export const decideCloseFaultFd = (state: ModelState, op: Extract<Operation, { kind: 'closeEventFd' }>): Transition => {
  const ictx = state.ictxs.get(op.ictx);
  const entry = ictx === undefined ? undefined : [...ictx.objects.entries()].find(([, o]) => o.kind === 'fault' && o.fdOpen && o.fd === op.fd);
  if (!ictx || !entry) return fail('common.fd.ebadf');
  const [id, fault] = entry as [number, Fault];
  const effects: Effect[] = [{ type: 'ObjectSet', ictx: op.ictx, id, object: { ...fault, fdOpen: false } }];
  if (!ictx.open && !ictxHeld(ictx, { eventFd: op.fd })) effects.push({ type: 'IctxSet', handle: op.ictx, open: null });
  return ok('upstream.fault-fd.closed', effects);
};
