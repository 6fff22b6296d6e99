import { z } from 'zod';
import { canonicalObject } from '../canonicalObject.js';
import { defineEvent } from '../defineEvent.js';
import { HwInfoSchema } from './iommufdObjects.js';
import { CdevNameSchema, ClassCodeSchema, DeviceNameSchema, DriverNameSchema, GroupNumberSchema, Hex16Schema, Hex64Schema } from '../ids.js';

/** /sys/kernel/iommu_groups/N/type: the group's *default* domain type, not its current domain */
export const DomainTypeSchema = z.enum(['blocked', 'identity', 'unmanaged', 'DMA', 'DMA-FQ', 'unknown']);

/** a line of /sys/kernel/iommu_groups/N/reserved_regions: "0x%016llx 0x%016llx %s" */
export const ReservedRegionSchema = canonicalObject({
  start: Hex64Schema,
  end: Hex64Schema,
  type: z.enum(['direct', 'direct-relaxable', 'reserved', 'msi']),
});

export const TopologyGroupSchema = canonicalObject({
  group: GroupNumberSchema,
  devices: z.array(DeviceNameSchema),
  defaultDomainType: DomainTypeSchema.optional(),
  reservedRegions: z.array(ReservedRegionSchema).optional(),
  /**
   * the 2021 design's stage-3 input: partitions of the group whose requester ids the platform says are
   * reliably distinguishable. Linux never implemented it (protocol.md §1.3); only the stage3 model reads it.
   */
  subGroups: z.array(z.array(DeviceNameSchema).min(1)).optional(),
});

export const TopologyDeviceSchema = canonicalObject({
  device: DeviceNameSchema,
  vendorId: Hex16Schema,
  deviceId: Hex16Schema,
  classCode: ClassCodeSchema,
  /** null when no driver is bound (no /sys/bus/pci/devices/D/driver link) */
  driver: DriverNameSchema.nullable(),
  /** null when the device has no iommu_group link (no IOMMU, as on many VMs) */
  group: GroupNumberSchema.nullable(),
  /** PCI header type; bridges count as viable on pre-v5.19 VFIO (vfio_dev_driver_allowed) */
  headerType: z.enum(['normal', 'bridge', 'cardbus']).optional(),
  /** an RMRR / IOMMU_RESV_DIRECT region: the blocking domain is refused (S33) */
  requireDirect: z.boolean().optional(),
  /** dev->iommu->max_pasids; 0 or absent when PASID is not supported */
  maxPasids: z.number().int().min(0).max(0x100000, { error: 'PASIDs are 20 bits: at most 1048576 of them' }).optional(),
  /** the bound vfio variant driver implements pasid_attach_ioas */
  pasidAttach: z.boolean().optional(),
  /** what IOMMU_GET_HW_INFO reported for the device (6.7 on), when the collector asked */
  hwInfo: HwInfoSchema.optional(),
  /** the VFIO cdev node name when one exists, e.g. vfio3 (noiommu-vfio3 from 7.3) */
  cdev: CdevNameSchema.optional(),
  /**
   * an SR-IOV VF's PF (the /sys/bus/pci/devices/D/physfn link): from 6.17 a VF of a PF bound to vfio-pci needs
   * the VF token on its cdev bind (-EACCES). Absent on snapshots taken before it was read: not known to be a VF
   */
  physfn: DeviceNameSchema.optional(),
  /** an SR-IOV PF's sriov_totalvfs (absent or 0: not a PF) */
  sriovTotalVfs: z.number().int().min(0).max(0xffff).optional(),
});

export const HostCapabilitiesSchema = canonicalObject({
  /** an IOMMU is present and enabled (iommu_groups populated) */
  iommu: z.boolean(),
  /**
   * interrupt remapping / isolated MSI (IRQ domain with MSI isolation); null when not observed — sysfs has no
   * attribute for it, and a pasted log rarely shows it
   */
  interruptRemapping: z.boolean().nullable(),
  /** vfio_iommu_type1 / iommufd allow_unsafe_interrupts module parameter */
  allowUnsafeInterrupts: z.boolean().default(false),
  /** IOMMU_CAP_CACHE_COHERENCY; iommufd_device_bind refuses without it */
  cacheCoherent: z.boolean().default(true),
  kernelRelease: z.string().max(128).optional(),
  /** the kernel driver set counted as driver_managed_dma on this host, when it differs from the default */
  managedDmaDrivers: z.array(DriverNameSchema).optional(),
});

export const TopologySnapshotTaken = defineEvent(
  'TopologySnapshotTaken',
  1,
  {
    capabilities: HostCapabilitiesSchema,
    groups: z.array(TopologyGroupSchema),
    devices: z.array(TopologyDeviceSchema),
    /** true for an import of pasted output: it lists what it saw, and removes nothing it did not list */
    partial: z.boolean().optional(),
  },
  { family: 'topology', operation: false, doc: 'a full read of /sys/kernel/iommu_groups and /sys/bus/pci/devices (protocol.md §2.3)' },
);

export const DeviceAddedToGroup = defineEvent(
  'DeviceAddedToGroup',
  1,
  { device: DeviceNameSchema, group: GroupNumberSchema },
  { family: 'topology', operation: false, doc: 'iommu_group_alloc_device: "Adding to iommu group N" (hotplug, probe)' },
);

export const DeviceRemovedFromGroup = defineEvent(
  'DeviceRemovedFromGroup',
  1,
  { device: DeviceNameSchema, group: GroupNumberSchema },
  { family: 'topology', operation: false, doc: 'iommu_group_remove_device: "Removing from iommu group N" (hot-unplug)' },
);

export const topologyEvents = [TopologySnapshotTaken, DeviceAddedToGroup, DeviceRemovedFromGroup] as const;
