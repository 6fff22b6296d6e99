import type { EventType, IommuEventInput } from '../catalogue.js';

type DataOf<T extends EventType> = Extract<IommuEventInput, { type: T }>['data'];

/**
 * One valid `data` per event type, with real-format ids from the reference's topology (group 7 =
 * 0000:01:00.0 GPU + 0000:01:00.1 HDMI audio, group 12 = 0000:03:00.0 NIC, ...), and for each a mutation
 * that must be rejected, with the field path the error must name.
 */
export const VALID_DATA: { [T in EventType]: DataOf<T> } = {
  TopologySnapshotTaken: {
    capabilities: { iommu: true, interruptRemapping: true, allowUnsafeInterrupts: false, cacheCoherent: true, kernelRelease: '6.12.0-amd64' },
    groups: [
      { group: 7, devices: ['0000:01:00.0', '0000:01:00.1'], defaultDomainType: 'DMA-FQ', reservedRegions: [{ start: '0x00000000fee00000', end: '0x00000000feefffff', type: 'msi' }] },
      { group: 12, devices: ['03:00.0'], defaultDomainType: 'DMA' },
    ],
    devices: [
      { device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '0x030000', driver: 'nouveau', group: 7, headerType: 'normal' },
      { device: '0000:01:00.1', vendorId: '0x10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 7 },
      { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: 12, cdev: 'vfio0' },
      { device: '0000:00:1f.6', vendorId: '8086', deviceId: '15bc', classCode: '020000', driver: 'e1000e', group: null },
    ],
  },
  DeviceAddedToGroup: { device: '0000:01:00.2', group: 7 },
  DeviceRemovedFromGroup: { device: '0000:01:00.2', group: 7 },
  DriverBound: { device: '0000:03:00.0', driver: 'vfio-pci' },
  DriverUnbound: { device: '0000:01:00.1' },
  DriverBindRefused: { device: '0000:01:00.2', driver: 'xhci_hcd', errno: 'EBUSY' },
  VfioDeviceOpened: { device: '0000:03:00.0', deviceFd: '4242:7', cdev: 'vfio0', outcome: { ok: true } },
  VfioDeviceAccessAttempted: { device: '0000:03:00.0', deviceFd: '4242:7', access: 'mmap', outcome: { ok: false, errno: 'EINVAL' } },
  VfioDeviceBindIommufdIssued: { device: '0000:03:00.0', deviceFd: '4242:7', ictx: '4242:5', outcome: { ok: true, devId: 1 } },
  VfioDeviceAttachPtIssued: { device: '0000:03:00.0', deviceFd: '4242:7', ptId: 2, outcome: { ok: true, ptId: 3 } },
  VfioDeviceDetachPtIssued: { device: '0000:03:00.0', deviceFd: '4242:7', outcome: { ok: true } },
  VfioDeviceClosed: { device: '0000:03:00.0', deviceFd: '4242:7' },
  IommufdOpened: { ictx: '4242:5', outcome: { ok: true } },
  IommufdClosed: { ictx: '4242:5' },
  IommufdIoasAllocIssued: { ictx: '4242:5', outcome: { ok: true, ioasId: 2 } },
  IommufdHwptAllocIssued: { ictx: '4242:5', devId: 1, ptId: 2, outcome: { ok: true, hwptId: 6 } },
  IommufdDestroyIssued: { ictx: '4242:5', objectId: 6, outcome: { ok: false, errno: 'EBUSY' } },
  IommufdIoasMapIssued: { ictx: '4242:5', ioasId: 2, iova: '0x100000', length: '0x200000', outcome: { ok: true, iova: '0x100000' } },
  IommufdIoasUnmapIssued: { ictx: '4242:5', ioasId: 2, iova: '0x100000', length: '0x200000', outcome: { ok: true, length: '0x200000' } },
  VfioGroupOpened: { group: 12, groupFd: '5151:3', outcome: { ok: true } },
  VfioGroupClosed: { group: 12, groupFd: '5151:3' },
  VfioGroupGetStatusIssued: { group: 7, groupFd: '5151:3', outcome: { ok: true, viable: true, containerSet: true } },
  VfioGroupSetContainerIssued: { group: 7, groupFd: '5151:3', container: '5151:4', containerKind: 'iommufd', outcome: { ok: true } },
  VfioGroupUnsetContainerIssued: { group: 12, groupFd: '5151:3', outcome: { ok: false, errno: 'EINVAL' } },
  VfioGroupGetDeviceFdIssued: { group: 7, groupFd: '5151:3', device: '0000:01:00.0', outcome: { ok: false, errno: 'EPERM' } },
  VfioContainerOpened: { container: '5151:4', outcome: { ok: true } },
  VfioContainerSetIommuIssued: { container: '5151:4', iommuType: 'type1v2', outcome: { ok: true } },
  VfioContainerClosed: { container: '5151:4' },
  TraceAddDeviceToGroup: { group: 7, device: '0000:01:00.2', line: 'kworker/0:1-42 [000] ..... 1234.567890: add_device_to_group: IOMMU: groupID=7 device=0000:01:00.2' },
  TraceRemoveDeviceFromGroup: { group: 7, device: '0000:01:00.2' },
  TraceAttachDeviceToDomain: { device: '0000:01:00.0' },
  TraceIoPageFault: { driver: 'vfio-pci', device: '0000:03:00.0', iova: '0x00000000deadb000', flags: 0x0020 },
  PassthroughErrorReported: { origin: 'qemu', group: 7, message: 'vfio: error, group 7 is not viable, please ensure all devices within the iommu_group are bound to their vfio bus driver.' },
};

/** a broken copy of each valid example and the path its error must name */
export const INVALID_DATA: { [T in EventType]: { data: unknown; path: string } } = {
  TopologySnapshotTaken: { data: { ...VALID_DATA.TopologySnapshotTaken, groups: [{ group: -1, devices: [] }] }, path: 'data.groups[0].group' },
  DeviceAddedToGroup: { data: { device: '1:0.0x', group: 7 }, path: 'data.device' },
  DeviceRemovedFromGroup: { data: { device: '0000:01:00.2', group: 7.5 }, path: 'data.group' },
  DriverBound: { data: { device: '0000:03:00.0', driver: 'vfio pci' }, path: 'data.driver' },
  DriverUnbound: { data: { device: '0000:01:00.1', reason: 'x' }, path: 'data.reason' },
  DriverBindRefused: { data: { device: '0000:01:00.2', driver: 'xhci_hcd', errno: 'EWHATEVER' }, path: 'data.errno' },
  VfioDeviceOpened: { data: { device: '0000:03:00.0', deviceFd: '4242:7', cdev: 'vfio', outcome: { ok: true } }, path: 'data.cdev' },
  VfioDeviceAccessAttempted: { data: { device: '0000:03:00.0', deviceFd: '4242:7', access: 'poke', outcome: { ok: true } }, path: 'data.access' },
  VfioDeviceBindIommufdIssued: { data: { device: '0000:03:00.0', deviceFd: '4242:7', ictx: '4242:5', outcome: { ok: true, devId: -1 } }, path: 'data.outcome.devId' },
  VfioDeviceAttachPtIssued: { data: { device: '0000:03:00.0', deviceFd: '4242:7', ptId: 2 ** 32, outcome: { ok: true, ptId: 3 } }, path: 'data.ptId' },
  VfioDeviceDetachPtIssued: { data: { device: '0000:03:00.0', deviceFd: '4242:7', pasid: 1 << 21, outcome: { ok: true } }, path: 'data.pasid' },
  VfioDeviceClosed: { data: { device: '0000:03:00.0', deviceFd: '' }, path: 'data.deviceFd' },
  IommufdOpened: { data: { ictx: '4242:5' }, path: 'data.outcome' },
  IommufdClosed: { data: { ictx: 'bad handle' }, path: 'data.ictx' },
  IommufdIoasAllocIssued: { data: { ictx: '4242:5', outcome: { ok: false, errno: 'EPERM', ioasId: 2 } }, path: 'data.outcome.ioasId' },
  IommufdHwptAllocIssued: { data: { ictx: '4242:5', devId: 1, ptId: 'two', outcome: { ok: true, hwptId: 6 } }, path: 'data.ptId' },
  IommufdDestroyIssued: { data: { ictx: '4242:5', objectId: 6, outcome: { ok: false, errno: 16 } }, path: 'data.outcome.errno' },
  IommufdIoasMapIssued: { data: { ictx: '4242:5', ioasId: 2, iova: 1048576, length: '0x200000', outcome: { ok: true, iova: '0x100000' } }, path: 'data.iova' },
  IommufdIoasUnmapIssued: { data: { ictx: '4242:5', ioasId: 2, iova: '0x100000', length: '0xZZ', outcome: { ok: true, length: '0x200000' } }, path: 'data.length' },
  VfioGroupOpened: { data: { group: '12', groupFd: '5151:3', outcome: { ok: true } }, path: 'data.group' },
  VfioGroupClosed: { data: { groupFd: '5151:3' }, path: 'data.group' },
  VfioGroupGetStatusIssued: { data: { group: 7, groupFd: '5151:3', outcome: { ok: true, viable: 'yes', containerSet: true } }, path: 'data.outcome.viable' },
  VfioGroupSetContainerIssued: { data: { group: 7, groupFd: '5151:3', container: '5151:4', containerKind: 'type1', outcome: { ok: true } }, path: 'data.containerKind' },
  VfioGroupUnsetContainerIssued: { data: { group: 12, groupFd: '5151:3', outcome: { ok: 'no' } }, path: 'data.outcome.ok' },
  VfioGroupGetDeviceFdIssued: { data: { group: 7, groupFd: '5151:3', device: '0000:01:00.10', outcome: { ok: false, errno: 'EPERM' } }, path: 'data.device' },
  VfioContainerOpened: { data: { container: '5151:4', outcome: { ok: true }, fd: 4 }, path: 'data.fd' },
  VfioContainerSetIommuIssued: { data: { container: '5151:4', iommuType: 'type2', outcome: { ok: true } }, path: 'data.iommuType' },
  VfioContainerClosed: { data: {}, path: 'data.container' },
  TraceAddDeviceToGroup: { data: { group: 7, device: '0000:1:00.2' }, path: 'data.device' },
  TraceRemoveDeviceFromGroup: { data: { group: null, device: '0000:01:00.2' }, path: 'data.group' },
  TraceAttachDeviceToDomain: { data: { device: 'not-a-device' }, path: 'data.device' },
  TraceIoPageFault: { data: { driver: 'vfio-pci', device: '0000:03:00.0', iova: '0xdeadb000', flags: 0x10000 }, path: 'data.flags' },
  PassthroughErrorReported: { data: { origin: 'qemu', group: 7, message: '' }, path: 'data.message' },
};
