import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { HandleSchema, Hex64Schema, ObjectIdSchema } from '../ids.js';
import { outcomeOf, PlainOutcomeSchema } from '../outcome.js';
import { HwptDataTypeSchema, U32Schema } from './iommufdObjects.js';

export const IommufdOpened = defineEvent(
  'IommufdOpened',
  1,
  { ictx: HandleSchema, outcome: PlainOutcomeSchema },
  { family: 'iommufd', operation: true, since: '6.2', doc: 'open(/dev/iommu): a new iommufd_ctx' },
);

export const IommufdClosed = defineEvent(
  'IommufdClosed',
  1,
  // how the close returned; absent on events recorded before it was kept, which read as success
  { ictx: HandleSchema, outcome: PlainOutcomeSchema.optional() },
  { family: 'iommufd', operation: true, since: '6.2', doc: 'close of /dev/iommu; bound devices and fault/vEVENTQ fds keep the ctx alive (S9)' },
);

export const IommufdIoasAllocIssued = defineEvent(
  'IommufdIoasAllocIssued',
  1,
  { ictx: HandleSchema, outcome: outcomeOf({ ioasId: ObjectIdSchema }) },
  { family: 'iommufd', operation: true, since: '6.2', doc: 'IOMMU_IOAS_ALLOC' },
);

export const IommufdHwptAllocIssued = defineEvent(
  'IommufdHwptAllocIssued',
  1,
  {
    ictx: HandleSchema,
    devId: ObjectIdSchema,
    ptId: ObjectIdSchema,
    flags: z.number().int().min(0).max(0xffffffff).default(0),
    /**
     * `data_type` (6.7): `none` for a paging hwpt on an IOAS; a user stage-1 table (`vtd-s1` 6.7,
     * `arm-smmuv3` 6.13, `amd-guest` 7.0) makes a nested hwpt under the parent hwpt or vIOMMU in `ptId`
     */
    dataType: HwptDataTypeSchema.optional(),
    /** `data_len`: a length that does not fit `data_type` is -EINVAL */
    dataLen: U32Schema.optional(),
    /** `fault_id` with IOMMU_HWPT_FAULT_ID_VALID (6.11): the fault queue that receives this hwpt's I/O page faults */
    faultId: ObjectIdSchema.optional(),
    outcome: outcomeOf({ hwptId: ObjectIdSchema }),
  },
  { family: 'iommufd', operation: true, since: '6.6', doc: 'IOMMU_HWPT_ALLOC (6.6): a manual hwpt, never picked by auto-domain search (S37); nested (6.7), dirty tracking (6.7), fault-capable (6.11), PASID-compatible (6.15)' },
);

export const IommufdDestroyIssued = defineEvent(
  'IommufdDestroyIssued',
  1,
  { ictx: HandleSchema, objectId: ObjectIdSchema, outcome: PlainOutcomeSchema },
  { family: 'iommufd', operation: true, since: '6.2', doc: 'IOMMU_DESTROY: -ENOENT missing, -EBUSY still referenced' },
);

export const IommufdIoasMapIssued = defineEvent(
  'IommufdIoasMapIssued',
  1,
  { ictx: HandleSchema, ioasId: ObjectIdSchema, iova: Hex64Schema, length: Hex64Schema, outcome: outcomeOf({ iova: Hex64Schema }) },
  { family: 'iommufd', operation: true, since: '6.2', doc: 'IOMMU_IOAS_MAP (iova out when the kernel chose it)' },
);

export const IommufdIoasUnmapIssued = defineEvent(
  'IommufdIoasUnmapIssued',
  1,
  { ictx: HandleSchema, ioasId: ObjectIdSchema, iova: Hex64Schema, length: Hex64Schema, outcome: outcomeOf({ length: Hex64Schema }) },
  { family: 'iommufd', operation: true, since: '6.2', doc: 'IOMMU_IOAS_UNMAP (length out is what was unmapped)' },
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
