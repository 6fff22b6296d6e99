import { z } from 'zod';
import { canonicalObject } from '../canonicalObject.js';
import { defineEvent } from '../defineEvent.js';
import { CdevNameSchema, DeviceNameSchema, FdNumberSchema, HandleSchema, ObjectIdSchema, PasidSchema } from '../ids.js';
import { outcomeOf, PlainOutcomeSchema } from '../outcome.js';
import { U32Schema } from './iommufdObjects.js';

/**
 * The raw header fields of a VFIO ioctl argument, recorded only when the caller did not pass the usual
 * values (argsz = the struct size, flags = 0): a short argsz or unknown flags are refused before anything else.
 */
export const IoctlArgsSchema = canonicalObject({
  argsz: z.number().int().min(0).max(0xffffffff).optional(),
  flags: z.number().int().min(0).max(0xffffffff).optional(),
});

/**
 * A BIND whose `iommufd` argument was not an open iommufd: `negative` (e.g. -1: -EINVAL with the argument
 * checks), `closed` (no open file: -EBADF), `not-iommufd` (another file such as /dev/null: -EBADFD). The
 * `ictx` handle then names what the recorder passed, not an iommufd.
 */
export const BadFdSchema = z.enum(['negative', 'closed', 'not-iommufd']);

/** how a close returned; absent on events recorded before it was kept, which read as success */
const closeOutcome = { outcome: PlainOutcomeSchema.optional() };

export const VfioDeviceOpened = defineEvent(
  'VfioDeviceOpened',
  1,
  {
    device: DeviceNameSchema,
    deviceFd: HandleSchema,
    /** /dev/vfio/devices/vfioN (noiommu-vfioN from 7.3) */
    cdev: CdevNameSchema.optional(),
    outcome: PlainOutcomeSchema,
  },
  { family: 'vfio-cdev', operation: true, since: '6.6', doc: 'open(/dev/vfio/devices/vfioN): vfio_device_fops_cdev_open, no ownership taken' },
);

export const VfioDeviceAccessAttempted = defineEvent(
  'VfioDeviceAccessAttempted',
  1,
  {
    device: DeviceNameSchema,
    deviceFd: HandleSchema,
    access: z.enum(['mmap', 'ioctl', 'read', 'write']),
    /** the ioctl, e.g. VFIO_DEVICE_GET_INFO */
    request: z.string().max(64).optional(),
    outcome: PlainOutcomeSchema,
  },
  { family: 'vfio-cdev', operation: true, since: '6.6', doc: 'mmap/read/write/ioctl on a device fd, gated by df->access_granted (-EINVAL before bind)' },
);

export const VfioDeviceBindIommufdIssued = defineEvent(
  'VfioDeviceBindIommufdIssued',
  1,
  {
    device: DeviceNameSchema,
    deviceFd: HandleSchema,
    /** the iommufd context the device is bound to */
    ictx: HandleSchema,
    badFd: BadFdSchema.optional(),
    /** `vfio_device_bind_iommufd.iommufd` as passed, when the recorder saw it (a raw number, valid or not) */
    iommufdFd: FdNumberSchema.optional(),
    /**
     * `VFIO_DEVICE_BIND_FLAG_TOKEN` with `token_uuid_ptr` (6.17): a VF token was passed. Only the fact is
     * recorded: the UUID is the secret shared between the PF's and the VF's users and never leaves the host.
     */
    vfToken: z.boolean().optional(),
    args: IoctlArgsSchema.optional(),
    outcome: outcomeOf({ devId: ObjectIdSchema }),
  },
  {
    family: 'vfio-cdev',
    operation: true,
    since: '6.6',
    doc: 'VFIO_DEVICE_BIND_IOMMUFD → iommufd_device_bind → iommu_device_claim_dma_owner (errnos: §1.4); VF token checks (-EACCES) from 6.17',
  },
);

export const VfioDeviceAttachPtIssued = defineEvent(
  'VfioDeviceAttachPtIssued',
  2,
  {
    device: DeviceNameSchema,
    deviceFd: HandleSchema,
    /** the pt_id passed in: an IOAS (auto hwpt) or a HWPT */
    ptId: ObjectIdSchema,
    pasid: PasidSchema.optional(),
    args: IoctlArgsSchema.optional(),
    /** on success the kernel rewrites pt_id to the hwpt actually attached */
    outcome: outcomeOf({ ptId: ObjectIdSchema }),
  },
  { family: 'vfio-cdev', operation: true, since: '6.6', doc: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT; a second attach is a group-wide replace' },
);

export const VfioDeviceDetachPtIssued = defineEvent(
  'VfioDeviceDetachPtIssued',
  1,
  { device: DeviceNameSchema, deviceFd: HandleSchema, pasid: PasidSchema.optional(), args: IoctlArgsSchema.optional(), outcome: PlainOutcomeSchema },
  { family: 'vfio-cdev', operation: true, since: '6.6', doc: 'VFIO_DEVICE_DETACH_IOMMUFD_PT: always 0 for valid args, even when not attached' },
);

export const VfioDeviceClosed = defineEvent(
  'VfioDeviceClosed',
  1,
  { device: DeviceNameSchema, deviceFd: HandleSchema, ...closeOutcome },
  {
    family: 'vfio-cdev',
    operation: true,
    doc: 'close of a device fd (cdev or legacy): the implicit unbind, detach then release of DMA ownership',
  },
);

export const VfioDeviceResetIssued = defineEvent(
  'VfioDeviceResetIssued',
  1,
  {
    device: DeviceNameSchema,
    deviceFd: HandleSchema,
    /** VFIO_DEVICE_RESET (a function-level reset) or VFIO_DEVICE_PCI_HOT_RESET (the bus, with its group siblings) */
    reset: z.enum(['device', 'hot']),
    outcome: PlainOutcomeSchema,
  },
  {
    family: 'vfio-cdev',
    operation: true,
    doc: 'VFIO_DEVICE_RESET / VFIO_DEVICE_PCI_HOT_RESET; from 7.0 pci_dev_reset_iommu_prepare/done fence the IOMMU: an ATTACH meanwhile is -EBUSY, and an ATS device shows two attach_device_to_domain lines that move no ownership',
  },
);

export const VfioDeviceDmaBufCreated = defineEvent(
  'VfioDeviceDmaBufCreated',
  1,
  {
    device: DeviceNameSchema,
    deviceFd: HandleSchema,
    /** struct vfio_device_feature_dma_buf: `region_index` (the BAR) and `nr_ranges` (how many slices of it) */
    regionIndex: U32Schema,
    nrRanges: U32Schema,
    /** `dmaBufFd`: the recorder's handle for the returned dma-buf fd */
    outcome: outcomeOf({ dmaBufFd: HandleSchema }),
  },
  {
    family: 'vfio-cdev',
    operation: true,
    since: '6.19',
    doc: 'VFIO_DEVICE_FEATURE with VFIO_DEVICE_FEATURE_DMA_BUF (11) on a device fd: a dma-buf of a BAR\'s ranges (vfio_pci_core_feature_dma_buf); before 6.19 vfio_pci_core_ioctl_feature answers an unknown feature -ENOTTY',
  },
);

export const VfioDeviceDmaBufRevoked = defineEvent(
  'VfioDeviceDmaBufRevoked',
  1,
  {
    device: DeviceNameSchema,
    dmaBufFd: HandleSchema,
    /** why the kernel revoked it: its device fd was closed, or the device was reset */
    reason: z.enum(['device-fd-closed', 'device-reset']),
  },
  {
    family: 'vfio-cdev',
    operation: false,
    since: '6.19',
    doc: 'a VFIO dma-buf\'s access revoked by the kernel ("access is revoked when the VFIO device is closed or a PCI reset is issued", commit 5d74781e); the fd stays open but maps nothing',
  },
);

export const vfioCdevEvents = [
  VfioDeviceOpened,
  VfioDeviceAccessAttempted,
  VfioDeviceBindIommufdIssued,
  VfioDeviceAttachPtIssued,
  VfioDeviceDetachPtIssued,
  VfioDeviceClosed,
  VfioDeviceResetIssued,
  VfioDeviceDmaBufCreated,
  VfioDeviceDmaBufRevoked,
] as const;
