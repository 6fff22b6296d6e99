import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { HandleSchema, Hex64Schema, ObjectIdSchema } from '../ids.js';
import { outcomeOf, PlainOutcomeSchema } from '../outcome.js';

export const IommufdOpened = defineEvent(
  'IommufdOpened',
  1,
  { ictx: HandleSchema, outcome: PlainOutcomeSchema },
  { family: 'iommufd', operation: true, doc: 'open(/dev/iommu): a new iommufd_ctx' },
);

export const IommufdClosed = defineEvent(
  'IommufdClosed',
  1,
  { ictx: HandleSchema },
  { family: 'iommufd', operation: true, doc: 'close of /dev/iommu; bound devices keep the ctx alive (S9)' },
);

export const IommufdIoasAllocIssued = defineEvent(
  'IommufdIoasAllocIssued',
  1,
  { ictx: HandleSchema, outcome: outcomeOf({ ioasId: ObjectIdSchema }) },
  { family: 'iommufd', operation: true, doc: 'IOMMU_IOAS_ALLOC' },
);

export const IommufdHwptAllocIssued = defineEvent(
  'IommufdHwptAllocIssued',
  1,
  {
    ictx: HandleSchema,
    devId: ObjectIdSchema,
    ptId: ObjectIdSchema,
    flags: z.number().int().min(0).max(0xffffffff).default(0),
    outcome: outcomeOf({ hwptId: ObjectIdSchema }),
  },
  { family: 'iommufd', operation: true, doc: 'IOMMU_HWPT_ALLOC: a manual hwpt, never picked by auto-domain search (S37)' },
);

export const IommufdDestroyIssued = defineEvent(
  'IommufdDestroyIssued',
  1,
  { ictx: HandleSchema, objectId: ObjectIdSchema, outcome: PlainOutcomeSchema },
  { family: 'iommufd', operation: true, doc: 'IOMMU_DESTROY: -ENOENT missing, -EBUSY still referenced' },
);

export const IommufdIoasMapIssued = defineEvent(
  'IommufdIoasMapIssued',
  1,
  { ictx: HandleSchema, ioasId: ObjectIdSchema, iova: Hex64Schema, length: Hex64Schema, outcome: outcomeOf({ iova: Hex64Schema }) },
  { family: 'iommufd', operation: true, doc: 'IOMMU_IOAS_MAP (iova out when the kernel chose it)' },
);

export const IommufdIoasUnmapIssued = defineEvent(
  'IommufdIoasUnmapIssued',
  1,
  { ictx: HandleSchema, ioasId: ObjectIdSchema, iova: Hex64Schema, length: Hex64Schema, outcome: outcomeOf({ length: Hex64Schema }) },
  { family: 'iommufd', operation: true, doc: 'IOMMU_IOAS_UNMAP (length out is what was unmapped)' },
);

export const iommufdEvents = [
  IommufdOpened,
  IommufdClosed,
  IommufdIoasAllocIssued,
  IommufdHwptAllocIssued,
  IommufdDestroyIssued,
  IommufdIoasMapIssued,
  IommufdIoasUnmapIssued,
] as const;
