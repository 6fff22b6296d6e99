import { z } from 'zod';
import { canonicalObject } from '../canonicalObject.js';
import { defineEvent } from '../defineEvent.js';
import { HandleSchema, Hex64Schema, ObjectIdSchema, PasidSchema } from '../ids.js';
import { outcomeOf, PlainOutcomeSchema } from '../outcome.js';

/*
 * iommufd objects and calls added after 6.6, each with the release it landed in (kernel-changes-6.7-to-7.3.md
 * §1 and §2). Field names follow the uAPI structs of include/uapi/linux/iommufd.h (struct iommu_*), in camel
 * case; enum values are the uAPI constants' names without their prefix, in lower case.
 */

/** a `__u32` the uAPI passes as a count, a length or a flag word */
export const U32Schema = z
  .number({ error: 'expected an unsigned 32-bit integer' })
  .int({ error: 'expected an unsigned 32-bit integer, got a fraction' })
  .min(0, { error: 'expected an unsigned 32-bit integer, got a negative number' })
  .max(0xffffffff, { error: 'expected an unsigned 32-bit integer, got a number above 4294967295' });

/** enum iommu_hwpt_data_type: IOMMU_HWPT_DATA_NONE, _VTD_S1 (6.7), _ARM_SMMUV3 (6.13), AMD guest table (7.0, date-derived) */
export const HwptDataTypeSchema = z.enum(['none', 'vtd-s1', 'arm-smmuv3', 'amd-guest']);

/** enum iommu_viommu_type: IOMMU_VIOMMU_TYPE_DEFAULT (refused: -EOPNOTSUPP), _ARM_SMMUV3 (6.13), _TEGRA241_CMDQV (6.17) */
export const ViommuTypeSchema = z.enum(['default', 'arm-smmuv3', 'tegra241-cmdqv']);

/** enum iommu_hw_info_type: IOMMU_HW_INFO_TYPE_NONE/_DEFAULT, _INTEL_VTD, _ARM_SMMUV3, _TEGRA241_CMDQV (6.17), _AMD (7.0) */
export const HwInfoTypeSchema = z.enum(['none', 'intel-vtd', 'arm-smmuv3', 'tegra241-cmdqv', 'amd']);

/**
 * enum iommufd_hw_capabilities bits of `out_capabilities`: IOMMU_HW_CAP_DIRTY_TRACKING (6.7),
 * _PCI_PASID_EXEC and _PCI_PASID_PRIV (6.15), _PCI_ATS_NOT_SUPPORTED (7.1, date-derived)
 */
export const HwCapabilitySchema = z.enum(['dirty-tracking', 'pci-pasid-exec', 'pci-pasid-priv', 'pci-ats-not-supported']);

/** what IOMMU_GET_HW_INFO returned for a device: the topology snapshot carries it per device */
export const HwInfoSchema = canonicalObject({
  /** `out_data_type` */
  type: HwInfoTypeSchema,
  /** `out_capabilities`, bit by bit */
  capabilities: z.array(HwCapabilitySchema),
  /** `out_max_pasid_log2` (6.15): 0 when the device has no PASID */
  maxPasidLog2: z.number().int().min(0).max(20, { error: 'PASIDs are 20 bits: out_max_pasid_log2 is at most 20' }).optional(),
});

export const IommufdGetHwInfoIssued = defineEvent(
  'IommufdGetHwInfoIssued',
  1,
  {
    ictx: HandleSchema,
    devId: ObjectIdSchema,
    /** `in_data_type` with IOMMU_HW_INFO_FLAG_INPUT_TYPE (6.17) */
    inDataType: HwInfoTypeSchema.optional(),
    outcome: outcomeOf({ hwInfo: HwInfoSchema }),
  },
  {
    family: 'iommufd',
    operation: true,
    since: '6.6',
    doc: 'IOMMU_GET_HW_INFO (struct iommu_hw_info; iommufd pull for 6.6): -ENOENT for an unknown dev_id; capabilities from 6.7, PASID width 6.15',
  },
);

export const IommufdHwptInvalidateIssued = defineEvent(
  'IommufdHwptInvalidateIssued',
  1,
  {
    ictx: HandleSchema,
    /** `hwpt_id`: a nested hwpt, or a vIOMMU (6.13) */
    hwptId: ObjectIdSchema,
    /** enum iommu_hwpt_invalidate_data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 */
    dataType: z.enum(['vtd-s1', 'viommu-arm-smmuv3']),
    entryLen: U32Schema,
    entryNum: U32Schema,
    /** the kernel writes back `entry_num` = the entries it handled */
    outcome: outcomeOf({ entryNum: U32Schema }),
  },
  { family: 'iommufd', operation: true, since: '6.8', doc: 'IOMMU_HWPT_INVALIDATE (struct iommu_hwpt_invalidate): iommufd_hwpt_invalidate; not nested/vIOMMU -EINVAL, no driver op -EOPNOTSUPP' },
);

export const IommufdHwptSetDirtyTrackingIssued = defineEvent(
  'IommufdHwptSetDirtyTrackingIssued',
  1,
  {
    ictx: HandleSchema,
    hwptId: ObjectIdSchema,
    /** `flags` & IOMMU_HWPT_DIRTY_TRACKING_ENABLE */
    enable: z.boolean(),
    outcome: PlainOutcomeSchema,
  },
  { family: 'iommufd', operation: true, since: '6.7', doc: 'IOMMU_HWPT_SET_DIRTY_TRACKING (struct iommu_hwpt_set_dirty_tracking): not a paging hwpt -ENOENT, unknown flags -EOPNOTSUPP' },
);

export const IommufdHwptGetDirtyBitmapIssued = defineEvent(
  'IommufdHwptGetDirtyBitmapIssued',
  1,
  {
    ictx: HandleSchema,
    hwptId: ObjectIdSchema,
    iova: Hex64Schema,
    length: Hex64Schema,
    pageSize: Hex64Schema,
    /** `flags` & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR */
    noClear: z.boolean().optional(),
    outcome: PlainOutcomeSchema,
  },
  { family: 'iommufd', operation: true, since: '6.7', doc: 'IOMMU_HWPT_GET_DIRTY_BITMAP (struct iommu_hwpt_get_dirty_bitmap): iommufd_hwpt_get_dirty_bitmap' },
);

export const IommufdFaultQueueAllocIssued = defineEvent(
  'IommufdFaultQueueAllocIssued',
  1,
  {
    ictx: HandleSchema,
    /** `flags` when not 0 (any is -EOPNOTSUPP) */
    flags: U32Schema.optional(),
    /** `out_fault_id` and `out_fault_fd` (anon_inode:[iommufd-pgfault], holding a reference on the ctx) */
    outcome: outcomeOf({ faultId: ObjectIdSchema, faultFd: HandleSchema }),
  },
  { family: 'iommufd', operation: true, since: '6.11', doc: 'IOMMU_FAULT_QUEUE_ALLOC (struct iommu_fault_alloc): iommufd_fault_alloc; its fd keeps the iommufd_ctx alive' },
);

export const IommufdPageFaultRead = defineEvent(
  'IommufdPageFaultRead',
  1,
  {
    /** the fault fd it was read from */
    faultFd: HandleSchema,
    /** struct iommu_hwpt_pgfault: `dev_id`, `pasid` (with IOMMU_PGFAULT_FLAGS_PASID_VALID), `grpid`, `perm`, `addr`, `cookie` */
    devId: ObjectIdSchema,
    pasid: PasidSchema.optional(),
    grpid: U32Schema,
    perm: z.array(z.enum(['read', 'write', 'exec', 'priv'])),
    addr: Hex64Schema,
    /** IOMMU_PGFAULT_FLAGS_LAST_PAGE: the last fault of its group, the one a response answers */
    lastPage: z.boolean(),
    cookie: U32Schema,
  },
  { family: 'iommufd', operation: false, since: '6.11', doc: 'an I/O page fault delivered to userspace (iommufd_fault_fops_read): which device, PASID and address faulted' },
);

export const IommufdPageResponseWritten = defineEvent(
  'IommufdPageResponseWritten',
  1,
  {
    faultFd: HandleSchema,
    /** struct iommu_hwpt_page_response: `cookie` of the fault group, `code` IOMMUFD_PAGE_RESP_SUCCESS / _INVALID */
    cookie: U32Schema,
    code: z.enum(['success', 'invalid']),
    outcome: PlainOutcomeSchema,
  },
  { family: 'iommufd', operation: true, since: '6.11', doc: 'a page response written to the fault fd (iommufd_fault_fops_write): unknown cookie or code -EINVAL, a size not a multiple of the record -ESPIPE' },
);

export const IommufdEventFdClosed = defineEvent(
  'IommufdEventFdClosed',
  1,
  {
    ictx: HandleSchema,
    /** the fault fd (6.11) or vEVENTQ fd (6.15) as its alloc returned it */
    fd: HandleSchema,
    kind: z.enum(['fault', 'veventq']),
    // absent on events recorded without it, which read as success
    outcome: PlainOutcomeSchema.optional(),
  },
  { family: 'iommufd', operation: true, since: '6.11', doc: 'close of a fault or vEVENTQ fd: drops its iommufd_ctx reference (iommufd_ctx_put); a fault fd answers pending faults INVALID' },
);

export const IommufdViommuAllocIssued = defineEvent(
  'IommufdViommuAllocIssued',
  1,
  {
    ictx: HandleSchema,
    flags: U32Schema.optional(),
    /** `type` */
    viommuType: ViommuTypeSchema,
    devId: ObjectIdSchema,
    /** `hwpt_id`: the nesting parent (IOMMU_HWPT_ALLOC_NEST_PARENT), else -EINVAL */
    hwptId: ObjectIdSchema,
    /** `data_len` of driver data (6.17) */
    dataLen: U32Schema.optional(),
    outcome: outcomeOf({ viommuId: ObjectIdSchema }),
  },
  { family: 'iommufd', operation: true, since: '6.13', doc: 'IOMMU_VIOMMU_ALLOC (struct iommu_viommu_alloc): iommufd_viommu_alloc_ioctl; holds its parent hwpt (IOMMU_DESTROY of it -EBUSY)' },
);

export const IommufdVdeviceAllocIssued = defineEvent(
  'IommufdVdeviceAllocIssued',
  1,
  {
    ictx: HandleSchema,
    viommuId: ObjectIdSchema,
    devId: ObjectIdSchema,
    /** `virt_id`: the device's id in the guest (a vSID, vRID), 64 bits */
    virtId: Hex64Schema,
    outcome: outcomeOf({ vdeviceId: ObjectIdSchema }),
  },
  {
    family: 'iommufd',
    operation: true,
    since: '6.13',
    doc: 'IOMMU_VDEVICE_ALLOC (struct iommu_vdevice_alloc): a second vDEVICE for the device or a taken virt_id -EEXIST; from 6.17 destroyed with its device (id kept until the ctx closes)',
  },
);

export const IommufdVeventqAllocIssued = defineEvent(
  'IommufdVeventqAllocIssued',
  1,
  {
    ictx: HandleSchema,
    flags: U32Schema.optional(),
    viommuId: ObjectIdSchema,
    /** `type`: enum iommu_veventq_type (DEFAULT is -EOPNOTSUPP) */
    veventqType: z.enum(['default', 'arm-smmuv3', 'tegra241-cmdqv']),
    /** `veventq_depth`: 0 is -EINVAL */
    veventqDepth: U32Schema,
    /** `out_veventq_id`, `out_veventq_fd` (anon_inode:[iommufd-viommu-event], holding a reference on the ctx) */
    outcome: outcomeOf({ veventqId: ObjectIdSchema, veventqFd: HandleSchema }),
  },
  { family: 'iommufd', operation: true, since: '6.15', doc: 'IOMMU_VEVENTQ_ALLOC (struct iommu_veventq_alloc): iommufd_veventq_alloc; one queue per type per vIOMMU (-EEXIST)' },
);

export const IommufdVeventRead = defineEvent(
  'IommufdVeventRead',
  1,
  {
    veventqFd: HandleSchema,
    /** `struct iommufd_vevent_header.sequence`: 0..INT_MAX, wrapping to 0; a gap reveals lost vEVENTs */
    sequence: z.number().int().min(0).max(0x7fffffff, { error: 'a vEVENT sequence is 0..INT_MAX (2147483647)' }),
    /** `flags` & IOMMU_VEVENTQ_FLAG_LOST_EVENTS: the queue overflowed before this header */
    lostEvents: z.boolean(),
  },
  { family: 'iommufd', operation: false, since: '6.15', doc: 'a vEVENT header read from a vEVENTQ fd (iommufd_veventq_fops_read): what the guest was told, in order' },
);

export const IommufdHwQueueAllocIssued = defineEvent(
  'IommufdHwQueueAllocIssued',
  1,
  {
    ictx: HandleSchema,
    flags: U32Schema.optional(),
    viommuId: ObjectIdSchema,
    /** `type`: enum iommu_hw_queue_type (DEFAULT is -EOPNOTSUPP) */
    hwQueueType: z.enum(['default', 'tegra241-cmdqv']),
    index: U32Schema,
    nestingParentIova: Hex64Schema,
    /** 0 is -EINVAL; iova + length overflowing is -EOVERFLOW */
    length: Hex64Schema,
    outcome: outcomeOf({ hwQueueId: ObjectIdSchema }),
  },
  { family: 'iommufd', operation: true, since: '6.17', doc: 'IOMMU_HW_QUEUE_ALLOC (struct iommu_hw_queue_alloc): iommufd_hw_queue_alloc_ioctl; pins the guest queue memory' },
);

export const IommufdIoasMapFileIssued = defineEvent(
  'IommufdIoasMapFileIssued',
  1,
  {
    ictx: HandleSchema,
    /** IOMMU_IOAS_MAP_FIXED_IOVA / _WRITEABLE / _READABLE, when the recorder saw them */
    flags: U32Schema.optional(),
    ioasId: ObjectIdSchema,
    /** the mapped file: a memfd (6.13) or a dma-buf (6.19, date-derived) */
    fd: HandleSchema,
    fileKind: z.enum(['memfd', 'dma-buf', 'other']).optional(),
    start: Hex64Schema,
    length: Hex64Schema,
    iova: Hex64Schema,
    outcome: outcomeOf({ iova: Hex64Schema }),
  },
  { family: 'iommufd', operation: true, since: '6.13', doc: 'IOMMU_IOAS_MAP_FILE (struct iommu_ioas_map_file): errnos as IOAS_MAP (missing ioas -ENOENT, bad range -EINVAL)' },
);

export const IommufdIoasChangeProcessIssued = defineEvent(
  'IommufdIoasChangeProcessIssued',
  1,
  { ictx: HandleSchema, outcome: PlainOutcomeSchema },
  {
    family: 'iommufd',
    operation: true,
    since: '6.13',
    doc: 'IOMMU_IOAS_CHANGE_PROCESS (struct iommu_ioas_change_process): pinned-page accounting moves to the caller; a non-file mapping anywhere -EINVAL, nothing changed',
  },
);

export const IommufdIoasGetPaIssued = defineEvent(
  'IommufdIoasGetPaIssued',
  1,
  {
    ictx: HandleSchema,
    ioasId: ObjectIdSchema,
    iova: Hex64Schema,
    /** the struct's `length` as the recorder saw it (whether the kernel reads or writes it was not read) */
    length: Hex64Schema,
    /** `phys`: the physical address the IOVA maps to */
    outcome: outcomeOf({ phys: Hex64Schema }),
  },
  {
    family: 'iommufd',
    operation: true,
    since: '7.3',
    doc: 'IOMMU_IOAS_GET_PA (cmd 0x95, struct {size, flags, ioas_id, __reserved, iova, length, phys}): the physical address behind an IOVA, for noiommu mode; a read, nothing changes',
  },
);

export const iommufdObjectEvents = [
  IommufdGetHwInfoIssued,
  IommufdHwptInvalidateIssued,
  IommufdHwptSetDirtyTrackingIssued,
  IommufdHwptGetDirtyBitmapIssued,
  IommufdFaultQueueAllocIssued,
  IommufdPageFaultRead,
  IommufdPageResponseWritten,
  IommufdEventFdClosed,
  IommufdViommuAllocIssued,
  IommufdVdeviceAllocIssued,
  IommufdVeventqAllocIssued,
  IommufdVeventRead,
  IommufdHwQueueAllocIssued,
  IommufdIoasMapFileIssued,
  IommufdIoasChangeProcessIssued,
  IommufdIoasGetPaIssued,
] as const;
