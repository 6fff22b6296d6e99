import { fail, liveIctx, nextObjectId, okPlanned, planNewObject } from '../kernel.js';
import type { RefusalRuleId } from '../rules.js';
import type { ModelChanges } from '../mutate.js';
import type { IctxState, IommufdObject, ModelState, Operation, PlannedOutcome, Transition } from '../types.js';

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
  return okPlanned('upstream.fault-queue.ok', { faultId: nextObjectId(ictx), faultFd: op.faultFd }, (o, changes) => planAllocFaultQueue(state, op, o, changes));
};

/** FAULT_QUEUE_ALLOC as made (or recorded): the fault object at the outcome's id, its fd open */
export const planAllocFaultQueue = (state: ModelState, op: Extract<Operation, { kind: 'allocFaultQueue' }>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const fault: Fault = { kind: 'fault', fd: op.faultFd, fdOpen: true };
  planNewObject(state, op.ictx, outcome, 'faultId', fault, changes);
};

/** IOMMU_DESTROY of a fault queue: refused while its fd is open or a hwpt reports to it (iommufd_object_remove, users > 1) */
export const faultDestroyRefusal = (ictx: IctxState, id: number): RefusalRuleId | null => {
  const obj = ictx.objects.get(id);
  if (obj?.kind !== 'fault') return null;
  if (obj.fdOpen || [...ictx.objects.values()].some((o) => o.kind === 'hwpt' && o.fault === id)) return 'upstream.destroy.fault-busy';
  return null;
};
