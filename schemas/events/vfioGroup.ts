import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { DeviceNameSchema, FdNumberSchema, GroupNumberSchema, HandleSchema } from '../ids.js';
import { BadFdSchema } from './vfioCdev.js';
import { outcomeOf, PlainOutcomeSchema } from '../outcome.js';

/** how a close returned; absent on events recorded before it was kept, which read as success */
const closeOutcome = { outcome: PlainOutcomeSchema.optional() };

export const VfioGroupOpened = defineEvent(
  'VfioGroupOpened',
  1,
  { group: GroupNumberSchema, groupFd: HandleSchema, outcome: PlainOutcomeSchema },
  { family: 'vfio-group', operation: true, doc: 'open(/dev/vfio/N): -EBUSY when already open or a member is cdev-bound (§1.6)' },
);

export const VfioGroupClosed = defineEvent(
  'VfioGroupClosed',
  1,
  { group: GroupNumberSchema, groupFd: HandleSchema, ...closeOutcome },
  { family: 'vfio-group', operation: true, doc: 'close of the group fd: releases a legacy container claim' },
);

export const VfioGroupGetStatusIssued = defineEvent(
  'VfioGroupGetStatusIssued',
  1,
  {
    group: GroupNumberSchema,
    groupFd: HandleSchema,
    outcome: outcomeOf({ viable: z.boolean(), containerSet: z.boolean() }),
  },
  { family: 'vfio-group', operation: true, doc: 'VFIO_GROUP_GET_STATUS: VIABLE iff owner_cnt == 0, or VIABLE|CONTAINER_SET once set' },
);

export const VfioGroupSetContainerIssued = defineEvent(
  'VfioGroupSetContainerIssued',
  1,
  {
    group: GroupNumberSchema,
    groupFd: HandleSchema,
    /** handle of a /dev/vfio/vfio container, or of an iommufd used as one */
    container: HandleSchema,
    containerKind: z.enum(['legacy', 'iommufd']),
    /** the `__s32` fd argument as passed, when the recorder saw it (a raw number, valid or not) */
    containerFd: FdNumberSchema.optional(),
    /**
     * the fd was no container: `negative` or `closed` (no open file: -EBADF from fdget), `not-iommufd` (an
     * open file that is neither a /dev/vfio/vfio container nor an iommufd: -EBADFD); `container` then names it
     */
    badFd: BadFdSchema.optional(),
    outcome: PlainOutcomeSchema,
  },
  { family: 'vfio-group', operation: true, doc: 'VFIO_GROUP_SET_CONTAINER: legacy container claims ownership (-EPERM), iommufd does not yet' },
);

export const VfioGroupUnsetContainerIssued = defineEvent(
  'VfioGroupUnsetContainerIssued',
  1,
  { group: GroupNumberSchema, groupFd: HandleSchema, outcome: PlainOutcomeSchema },
  { family: 'vfio-group', operation: true, doc: 'VFIO_GROUP_UNSET_CONTAINER: -EINVAL when none set, -EBUSY with other users' },
);

export const VfioGroupGetDeviceFdIssued = defineEvent(
  'VfioGroupGetDeviceFdIssued',
  1,
  {
    group: GroupNumberSchema,
    groupFd: HandleSchema,
    device: DeviceNameSchema,
    outcome: outcomeOf({ deviceFd: HandleSchema }),
  },
  { family: 'vfio-group', operation: true, doc: 'VFIO_GROUP_GET_DEVICE_FD: viability at open (pre-v5.19 -EINVAL, iommufd-backed -EPERM)' },
);

export const VfioContainerOpened = defineEvent(
  'VfioContainerOpened',
  1,
  { container: HandleSchema, outcome: PlainOutcomeSchema },
  { family: 'vfio-group', operation: true, doc: 'open(/dev/vfio/vfio)' },
);

export const VfioContainerSetIommuIssued = defineEvent(
  'VfioContainerSetIommuIssued',
  1,
  {
    container: HandleSchema,
    iommuType: z.enum(['type1', 'type1v2', 'type1-nesting', 'spapr-tce', 'spapr-tce-v2', 'noiommu']),
    outcome: PlainOutcomeSchema,
  },
  { family: 'vfio-group', operation: true, doc: 'VFIO_SET_IOMMU: the container backend attaches its own domain to every set group' },
);

export const VfioContainerClosed = defineEvent(
  'VfioContainerClosed',
  1,
  { container: HandleSchema, ...closeOutcome },
  { family: 'vfio-group', operation: true, doc: 'close of the container fd' },
);

export const vfioGroupEvents = [
  VfioGroupOpened,
  VfioGroupClosed,
  VfioGroupGetStatusIssued,
  VfioGroupSetContainerIssued,
  VfioGroupUnsetContainerIssued,
  VfioGroupGetDeviceFdIssued,
  VfioContainerOpened,
  VfioContainerSetIommuIssued,
  VfioContainerClosed,
] as const;
