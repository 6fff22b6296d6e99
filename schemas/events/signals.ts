import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { DeviceNameSchema, DriverNameSchema, GroupNumberSchema, Hex64Schema, PasidSchema } from '../ids.js';

/** the two halves of a 7.0 reset fence */
export const ResetPhaseSchema = z.enum(['prepare', 'done']);

// the raw trace_pipe / dmesg line, kept when the recorder has it: the evidence behind the parsed fields
const raw = { line: z.string().max(4096).optional() };

export const TraceAddDeviceToGroup = defineEvent(
  'TraceAddDeviceToGroup',
  1,
  { group: GroupNumberSchema, device: DeviceNameSchema, ...raw },
  { family: 'trace', operation: false, doc: 'iommu:add_device_to_group "IOMMU: groupID=%d device=%s"' },
);

export const TraceRemoveDeviceFromGroup = defineEvent(
  'TraceRemoveDeviceFromGroup',
  1,
  { group: GroupNumberSchema, device: DeviceNameSchema, ...raw },
  { family: 'trace', operation: false, doc: 'iommu:remove_device_from_group "IOMMU: groupID=%d device=%s"' },
);

export const TraceAttachDeviceToDomain = defineEvent(
  'TraceAttachDeviceToDomain',
  1,
  {
    device: DeviceNameSchema,
    /**
     * the line belongs to a 7.0 reset fence (pci_dev_reset_iommu_prepare: to the blocking domain, _done: back):
     * an ATS device's reset shows one per phase, and neither changes who owns the device
     */
    resetFence: ResetPhaseSchema.optional(),
    ...raw,
  },
  { family: 'trace', operation: false, doc: 'iommu:attach_device_to_domain "IOMMU: device=%s": one per group device per domain switch, no domain id' },
);

/**
 * A device reset entering or leaving its IOMMU fence (7.0, pci_dev_reset_iommu_prepare/done): the collector's
 * kprobe events `iommutrail_reset_prepare` / `iommutrail_reset_done` on those functions, with the device name.
 */
export const TraceDeviceResetFence = defineEvent(
  'TraceDeviceResetFence',
  1,
  { device: DeviceNameSchema, phase: ResetPhaseSchema, ...raw },
  { family: 'trace', operation: false, since: '7.0', doc: 'pci_dev_reset_iommu_prepare/done (kprobe): the next attach_device_to_domain of the device is the fence, not an ownership change' },
);

/**
 * intel_iommu:cache_tag_assign / cache_tag_unassign, drivers/iommu/intel/trace.h class cache_tag_log:
 * TP_printk("%s/%s type %s did %d pasid %d ref %d", iommu, dev, type, domain_id, pasid, users): which
 * domain (by VT-d domain id) and PASID a device's caches are tagged for, i.e. what it can reach now
 */
export const TraceCacheTag = defineEvent(
  'TraceCacheTag',
  1,
  {
    action: z.enum(['assign', 'unassign']),
    /** the DMAR unit, e.g. dmar0 */
    iommu: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, { error: (iss) => `expected an IOMMU unit name such as dmar0, got ${JSON.stringify(iss.input)}` }),
    device: DeviceNameSchema,
    /** CACHE_TAG_IOTLB, _DEVTLB, _NESTING_IOTLB/_DEVTLB (renamed parent_* later) */
    tagType: z.enum(['iotlb', 'devtlb', 'nesting_iotlb', 'nesting_devtlb', 'parent_iotlb', 'parent_devtlb']),
    /** the VT-d domain id (u16) */
    domainId: z.number().int().min(0).max(0xffff),
    /** IOMMU_NO_PASID (0) for the RID */
    pasid: PasidSchema,
    /** the tag's users after the change */
    ref: z.number().int().min(0).max(0xffffffff),
    ...raw,
  },
  { family: 'trace', operation: false, since: '6.10', doc: 'intel_iommu:cache_tag_assign/unassign "%s/%s type %s did %d pasid %d ref %d": domain id and PASID per device' },
);

export const TraceIoPageFault = defineEvent(
  'TraceIoPageFault',
  1,
  { driver: DriverNameSchema, device: DeviceNameSchema, iova: Hex64Schema, flags: z.number().int().min(0).max(0xffff), ...raw },
  { family: 'trace', operation: false, doc: 'iommu:io_page_fault "IOMMU:%s %s iova=0x%016llx flags=0x%04x"' },
);

/** a VMM or orchestrator error such as QEMU's "vfio: error, group N is not viable" (userspace wording) */
export const PassthroughErrorReported = defineEvent(
  'PassthroughErrorReported',
  1,
  {
    origin: z.enum(['qemu', 'libvirt', 'kubevirt', 'kernel', 'other']),
    group: GroupNumberSchema.optional(),
    device: DeviceNameSchema.optional(),
    message: z.string().min(1).max(4096),
  },
  { family: 'report', operation: false, doc: 'a passthrough failure reported by userspace, e.g. "group N is not viable"' },
);

export const signalEvents = [
  TraceAddDeviceToGroup,
  TraceRemoveDeviceFromGroup,
  TraceAttachDeviceToDomain,
  TraceIoPageFault,
  TraceDeviceResetFence,
  TraceCacheTag,
  PassthroughErrorReported,
] as const;
