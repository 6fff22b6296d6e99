import { fail, liveIctx, nextObjectId, okPlanned, planNewObject } from '../kernel.js';
import type { ModelChanges } from '../mutate.js';
import type { ModelState, Operation, PlannedOutcome, Transition } from '../types.js';

/**
 * HW queue (6.17, drivers/iommu/iommufd/viommu.c: iommufd_hw_queue_alloc_ioctl): a guest command queue the
 * vIOMMU's hardware reads directly (Tegra241 CMDQV). The object holds its vIOMMU, so IOMMU_DESTROY of the
 * vIOMMU is -EBUSY while it lives (ops/veventq.ts `queueHoldsObject`).
 */

const U64_MAX = (1n << 64n) - 1n;
/** the vIOMMU types whose driver has get_hw_queue_size / hw_queue_init_phys (Tegra241 CMDQV, 6.17) */
const HW_QUEUE_VIOMMUS: Readonly<Record<string, string>> = { 'tegra241-cmdqv': 'tegra241-cmdqv' };

export const decideAllocHwQueue = (state: ModelState, op: Extract<Operation, { kind: 'allocHwQueue' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  // `if (cmd->flags || cmd->type == IOMMU_HW_QUEUE_TYPE_DEFAULT) return -EOPNOTSUPP;`
  if (op.flags !== 0 || op.hwQueueType === 'default') return fail('upstream.hw-queue.eopnotsupp');
  // `if (!cmd->length) return -EINVAL;`
  if (op.length === 0n) return fail('upstream.hw-queue.length-einval');
  // `if (check_add_overflow(cmd->nesting_parent_iova, cmd->length - 1, &last)) return -EOVERFLOW;`
  if (op.iova + op.length - 1n > U64_MAX) return fail('upstream.hw-queue.eoverflow');
  const viommu = ictx.objects.get(op.viommuId);
  if (viommu?.kind !== 'viommu') return fail('upstream.hw-queue.enoent');
  // `if (!viommu->ops || !viommu->ops->get_hw_queue_size ...)`, `if (!hw_queue_size) rc = -EOPNOTSUPP;`
  if (HW_QUEUE_VIOMMUS[viommu.viommuType] !== op.hwQueueType) return fail('upstream.hw-queue.eopnotsupp');
  return okPlanned('upstream.hw-queue.ok', { hwQueueId: nextObjectId(ictx) }, (o, changes) => planAllocHwQueue(state, op, o, changes));
};

/** HW_QUEUE_ALLOC as made (or recorded): the queue under its vIOMMU at the outcome's id */
export const planAllocHwQueue = (state: ModelState, op: Extract<Operation, { kind: 'allocHwQueue' }>, outcome: PlannedOutcome, changes: ModelChanges): void =>
  planNewObject(state, op.ictx, outcome, 'hwQueueId', { kind: 'hwQueue', viommu: op.viommuId, hwQueueType: op.hwQueueType, index: op.index }, changes);
