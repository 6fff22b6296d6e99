import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { DeviceNameSchema, DriverNameSchema, GroupNumberSchema, Hex64Schema } from '../ids.js';

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
  { device: DeviceNameSchema, ...raw },
  { family: 'trace', operation: false, doc: 'iommu:attach_device_to_domain "IOMMU: device=%s": one per group device per domain switch, no domain id' },
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

export const signalEvents = [TraceAddDeviceToGroup, TraceRemoveDeviceFromGroup, TraceAttachDeviceToDomain, TraceIoPageFault, PassthroughErrorReported] as const;
