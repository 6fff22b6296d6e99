import { fail, liveIctx, nextObjectId, okPlanned, planNewObject } from '../kernel.js';
import { putObject, removeIctx, type ModelChanges } from '../mutate.js';
import type { IctxState, IommufdObject, ModelState, Operation, PlannedOutcome, Transition } from '../types.js';

/**
 * vEVENTQ (6.15, drivers/iommu/iommufd/eventq.c): a queue of vIOMMU events with its own fd. The object holds
 * its vIOMMU (`refcount_inc(&viommu->obj.users)`: IOMMU_DESTROY of the vIOMMU is -EBUSY while it lives); its
 * fd holds the object (`refcount_inc(&eventq->obj.users)` in iommufd_eventq_init: IOMMU_DESTROY of the queue is
 * -EBUSY while the fd is open) and the context (`iommufd_ctx_get`): closing /dev/iommu leaves the ctx alive
 * until the fd closes (iommufd_eventq_fops_release → iommufd_ctx_put), as a bound device does (S9).
 */

type Veventq = Extract<IommufdObject, { kind: 'veventq' }>;

/**
 * what keeps a closed ctx alive (iommufd_fops_release runs only once every reference is gone): a bound device
 * other than `exceptDeviceFd`, or an open event-queue fd other than `exceptEventFd`
 */
export const ictxHeld = (ictx: IctxState, except: { readonly deviceFd?: string; readonly eventFd?: string } = {}): boolean => {
  for (const o of ictx.objects.values()) {
    if (o.kind === 'device' && o.deviceFd !== except.deviceFd) return true;
    // a vEVENTQ's or a fault queue's fd holds the ctx too (iommufd_ctx_get in iommufd_eventq_init / iommufd_fault_alloc)
    if ((o.kind === 'veventq' || o.kind === 'fault') && o.fdOpen && o.fd !== except.eventFd) return true;
  }
  return false;
};

/** IOMMU_DESTROY of an object a vEVENTQ or HW queue holds, or of a vEVENTQ its fd holds: the rule refusing it */
export const queueHoldsObject = (ictx: IctxState, id: number): 'upstream.destroy.viommu-queue-busy' | 'upstream.destroy.veventq-fd-busy' | null => {
  const obj = ictx.objects.get(id);
  if (obj?.kind === 'veventq' && obj.fdOpen) return 'upstream.destroy.veventq-fd-busy';
  if (obj?.kind !== 'viommu') return null;
  for (const o of ictx.objects.values()) if ((o.kind === 'veventq' || o.kind === 'hwQueue') && o.viommu === id) return 'upstream.destroy.viommu-queue-busy';
  return null;
};

/** enum iommu_veventq_type: DEFAULT is refused, the others by the release whose driver reports them */
const VEVENTQ_TYPES: ReadonlySet<string> = new Set(['arm-smmuv3', 'tegra241-cmdqv']);

/** iommufd_veventq_alloc: flags/type DEFAULT → -EOPNOTSUPP, depth 0 → -EINVAL, no vIOMMU → -ENOENT, one queue per type → -EEXIST */
export const decideAllocVeventq = (state: ModelState, op: Extract<Operation, { kind: 'allocVeventq' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  // `if (cmd->flags || cmd->__reserved || cmd->type == IOMMU_VEVENTQ_TYPE_DEFAULT) return -EOPNOTSUPP;`
  if (op.flags !== 0 || !VEVENTQ_TYPES.has(op.veventqType)) return fail('upstream.veventq.eopnotsupp');
  // `if (!cmd->veventq_depth) return -EINVAL;`
  if (op.depth === 0) return fail('upstream.veventq.depth-einval');
  // iommufd_get_viommu: a missing id or another type → -ENOENT
  if (ictx.objects.get(op.viommuId)?.kind !== 'viommu') return fail('upstream.veventq.enoent');
  // `if (iommufd_viommu_find_veventq(viommu, cmd->type)) rc = -EEXIST;`
  for (const o of ictx.objects.values()) if (o.kind === 'veventq' && o.viommu === op.viommuId && o.veventqType === op.veventqType) return fail('upstream.veventq.eexist');
  return okPlanned('upstream.veventq.ok', { veventqId: nextObjectId(ictx), veventqFd: op.veventqFd }, (o, changes) => planAllocVeventq(state, op, o, changes));
};

/** VEVENTQ_ALLOC as made (or recorded): the queue at the outcome's id, its fd open */
export const planAllocVeventq = (state: ModelState, op: Extract<Operation, { kind: 'allocVeventq' }>, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const object: Veventq = { kind: 'veventq', viommu: op.viommuId, veventqType: op.veventqType, fd: op.veventqFd, fdOpen: true };
  planNewObject(state, op.ictx, outcome, 'veventqId', object, changes);
};

type CloseEventFd = Extract<Operation, { kind: 'closeEventFd' }>;

/** the object whose open fd of the kind (a fault queue, 6.11, or a vEVENTQ, 6.15) the call closes */
const openEventFd = (ictx: IctxState, op: CloseEventFd): [number, Extract<IommufdObject, { kind: 'fault' | 'veventq' }>] | undefined => {
  for (const [id, o] of ictx.objects) if (o.kind === op.fdKind && o.fdOpen && o.fd === op.fd) return [id, o];
  return undefined;
};

/**
 * close of an event-queue fd (made or recorded): the object stays (until IOMMU_DESTROY or the ctx goes), its
 * fd's references on it and on the ctx are dropped; a ctx whose /dev/iommu was closed before goes with its
 * last holder
 */
export const planCloseEventFd = (state: ModelState, op: CloseEventFd, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const ictx = state.ictxs.get(op.ictx);
  const entry = outcome.ok && ictx ? openEventFd(ictx, op) : undefined;
  if (!ictx || !entry) return;
  const [id, queue] = entry;
  // whether anything else holds the ctx, read before the queue's fd is marked closed (it is excepted either way)
  const released = !ictx.open && !ictxHeld(ictx, { eventFd: op.fd });
  putObject(state, changes, op.ictx, id, { ...queue, fdOpen: false });
  if (released) removeIctx(state, changes, op.ictx);
};

export const decideCloseEventFd = (state: ModelState, op: CloseEventFd): Transition => {
  const ictx = state.ictxs.get(op.ictx);
  if (!ictx || !openEventFd(ictx, op)) return fail('common.fd.ebadf');
  return okPlanned(op.fdKind === 'fault' ? 'upstream.fault-fd.closed' : 'upstream.event-fd.closed', undefined, (o, changes) => planCloseEventFd(state, op, o, changes));
};
