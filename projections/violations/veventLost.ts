import { defineRule } from './rule.js';

/** vEVENTs a vEVENTQ dropped before the VMM read them: the guest missed IOMMU events */
export const veventLost = {
  ...defineRule({
    id: 'vevent-lost',
    severity: 'warning',
    title: 'vEVENTs lost on a vEVENTQ (sequence gap or LOST_EVENTS): the guest missed IOMMU events',
    harm: 'the guest\'s vIOMMU never saw some of its events (translation faults, invalid stream table entries): its view of what its devices did is incomplete',
    reference:
      'kernel-changes-6.7-to-7.3.md §1 item 9, §2.2: drivers/iommu/iommufd/eventq.c (6.15) iommufd_viommu_report_event numbers each vEVENT (struct iommufd_vevent_header.sequence, 0..INT_MAX wrapping) and on overflow queues a header with IOMMU_VEVENTQ_FLAG_LOST_EVENTS; iommufd_veventq_fops_read',
    guards: 'a full vEVENTQ drops events; the sequence numbers and the LOST_EVENTS flag are how the reader learns of it',
    opens: 'raised by the vEVENT header read whose sequence is not the one after the last read (from 0 for a queue whose allocation was recorded), or that carries LOST_EVENTS',
    closes: 'closed when the queue goes: its fd closed, IOMMU_DESTROY of it, or its context torn down',
    transient: 'none needed: every vEVENT of a queue is numbered, so a gap is a loss whatever follows',
    impossibleUpstream: false,
  }),
  describe: (queue: string, lastRead: number | null, got: number, gap: number, flagged: boolean): string =>
    `vEVENTQ ${queue} read sequence ${got}${lastRead === null ? ' as its first vEVENT' : ` after ${lastRead}`}: ${[
      gap > 0 ? `${gap} vEVENT${gap === 1 ? '' : 's'} lost` : null,
      flagged ? 'the kernel flagged lost events (IOMMU_VEVENTQ_FLAG_LOST_EVENTS: the queue overflowed)' : null,
    ]
      .filter((x) => x !== null)
      .join(', ')}; the guest missed IOMMU events`,
};
