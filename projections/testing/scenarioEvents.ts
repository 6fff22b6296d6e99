import { createEventBuilder, type ErrnoName, type EventBuilder, type EventExtras, type IommuEvent } from '../../schemas/index.js';

/**
 * The reference topology (protocol.md §3) and short event makers for given/when/then tests: each call
 * mints one validated event with the next sequence number of the host.
 */
export { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, ROOT_PORT, USB_RMRR, USBC, XHCI } from '../../schemas/testing/referenceTopology.js';
import { AUDIO, DEV_A, GPU, NIC, REFERENCE_TOPOLOGY, XHCI, referenceDevices, referenceTopology, type ReferenceDeviceSpec } from '../../schemas/testing/referenceTopology.js';

/**
 * Where the projection scenarios start, over the one reference table: GPU, xHCI, the NIC and DEV_A already on
 * vfio-pci, the GPU function PASID-capable (64, attachable), audio 64 PASIDs, group 30 per S35, placeholder ids.
 */
const SCENARIO_OWN: Readonly<Record<string, Partial<ReferenceDeviceSpec>>> = {
  [GPU]: { driver: 'vfio-pci', maxPasids: 64, pasidAttach: true },
  [AUDIO]: { maxPasids: 64 },
  [XHCI]: { driver: 'vfio-pci' },
  [NIC]: { driver: 'vfio-pci' },
  [DEV_A]: { driver: 'vfio-pci' },
};
const SCENARIO_START: Readonly<Record<string, Partial<ReferenceDeviceSpec>>> = Object.fromEntries(
  Object.keys(REFERENCE_TOPOLOGY).map((device) => [device, { vendorId: '8086', deviceId: '1234', ...SCENARIO_OWN[device] }]),
);

/** the reference devices as the scenarios start */
export const REFERENCE_DEVICES = referenceDevices({ devices: SCENARIO_START });

export interface TopologyOptions {
  /** per-device driver overrides (null = no driver) */
  readonly drivers?: Readonly<Record<string, string | null>>;
  readonly interruptRemapping?: boolean | null;
  readonly allowUnsafeInterrupts?: boolean;
  readonly managedDmaDrivers?: string[];
}

export type Scenario = ReturnType<typeof createScenario>;

/** an event maker for one host; `fd(x)` / `ictx(x)` name handles the way a collector would */
export const createScenario = (host = 'host-a', builder: EventBuilder = createEventBuilder({ host })) => {
  const ok = { ok: true as const };
  const fail = (errno: ErrnoName) => ({ ok: false as const, errno });
  return {
    builder,
    host,
    topology(options: TopologyOptions = {}, x?: EventExtras): IommuEvent {
      return builder.event(
        'TopologySnapshotTaken',
        {
          capabilities: {
            iommu: true,
            interruptRemapping: options.interruptRemapping === undefined ? true : options.interruptRemapping,
            allowUnsafeInterrupts: options.allowUnsafeInterrupts ?? false,
            ...(options.managedDmaDrivers ? { managedDmaDrivers: options.managedDmaDrivers } : {}),
          },
          ...referenceTopology({ devices: SCENARIO_START, ...(options.drivers ? { drivers: options.drivers } : {}) }),
        },
        x,
      );
    },
    driverBound: (device: string, driver: string, x?: EventExtras) => builder.event('DriverBound', { device, driver }, x),
    driverUnbound: (device: string, x?: EventExtras) => builder.event('DriverUnbound', { device }, x),
    driverBindRefused: (device: string, driver: string, errno: ErrnoName = 'EBUSY') => builder.event('DriverBindRefused', { device, driver, errno }),
    deviceAdded: (device: string, group: number) => builder.event('DeviceAddedToGroup', { device, group }),
    deviceRemoved: (device: string, group: number) => builder.event('DeviceRemovedFromGroup', { device, group }),
    iommufdOpened: (ictx: string) => builder.event('IommufdOpened', { ictx, outcome: ok }),
    iommufdClosed: (ictx: string) => builder.event('IommufdClosed', { ictx }),
    ioasAlloc: (ictx: string, ioasId: number) => builder.event('IommufdIoasAllocIssued', { ictx, outcome: { ok: true, ioasId } }),
    hwptAlloc: (ictx: string, devId: number, ptId: number, hwptId: number) =>
      builder.event('IommufdHwptAllocIssued', { ictx, devId, ptId, outcome: { ok: true, hwptId } }),
    destroy: (ictx: string, objectId: number, errno?: ErrnoName) =>
      builder.event('IommufdDestroyIssued', { ictx, objectId, outcome: errno ? fail(errno) : ok }),
    map: (ictx: string, ioasId: number) => builder.event('IommufdIoasMapIssued', { ictx, ioasId, iova: '0x100000', length: '0x1000', outcome: { ok: true, iova: '0x100000' } }),
    open: (device: string, deviceFd: string, x?: EventExtras) => builder.event('VfioDeviceOpened', { device, deviceFd, outcome: ok }, x),
    access: (device: string, deviceFd: string, errno?: ErrnoName) =>
      builder.event('VfioDeviceAccessAttempted', { device, deviceFd, access: 'mmap', outcome: errno ? fail(errno) : ok }),
    bind: (device: string, deviceFd: string, ictx: string, devId: number, x?: EventExtras) =>
      builder.event('VfioDeviceBindIommufdIssued', { device, deviceFd, ictx, outcome: { ok: true, devId } }, x),
    bindFail: (device: string, deviceFd: string, ictx: string, errno: ErrnoName) =>
      builder.event('VfioDeviceBindIommufdIssued', { device, deviceFd, ictx, outcome: fail(errno) }),
    attach: (device: string, deviceFd: string, ptId: number, hwpt: number, pasid?: number) =>
      builder.event('VfioDeviceAttachPtIssued', { device, deviceFd, ptId, ...(pasid !== undefined ? { pasid } : {}), outcome: { ok: true, ptId: hwpt } }),
    attachFail: (device: string, deviceFd: string, ptId: number, errno: ErrnoName) =>
      builder.event('VfioDeviceAttachPtIssued', { device, deviceFd, ptId, outcome: fail(errno) }),
    detach: (device: string, deviceFd: string, pasid?: number) =>
      builder.event('VfioDeviceDetachPtIssued', { device, deviceFd, ...(pasid !== undefined ? { pasid } : {}), outcome: ok }),
    close: (device: string, deviceFd: string, x?: EventExtras) => builder.event('VfioDeviceClosed', { device, deviceFd }, x),
    groupOpened: (group: number, groupFd: string, errno?: ErrnoName) => builder.event('VfioGroupOpened', { group, groupFd, outcome: errno ? fail(errno) : ok }),
    groupClosed: (group: number, groupFd: string) => builder.event('VfioGroupClosed', { group, groupFd }),
    setContainer: (group: number, groupFd: string, container: string, containerKind: 'legacy' | 'iommufd', errno?: ErrnoName) =>
      builder.event('VfioGroupSetContainerIssued', { group, groupFd, container, containerKind, outcome: errno ? fail(errno) : ok }),
    unsetContainer: (group: number, groupFd: string) => builder.event('VfioGroupUnsetContainerIssued', { group, groupFd, outcome: ok }),
    getDeviceFd: (group: number, groupFd: string, device: string, deviceFd: string) =>
      builder.event('VfioGroupGetDeviceFdIssued', { group, groupFd, device, outcome: { ok: true, deviceFd } }),
    getDeviceFdFail: (group: number, groupFd: string, device: string, errno: ErrnoName) =>
      builder.event('VfioGroupGetDeviceFdIssued', { group, groupFd, device, outcome: fail(errno) }),
    containerOpened: (container: string) => builder.event('VfioContainerOpened', { container, outcome: ok }),
    setIommu: (container: string) => builder.event('VfioContainerSetIommuIssued', { container, iommuType: 'type1v2', outcome: ok }),
    containerClosed: (container: string) => builder.event('VfioContainerClosed', { container }),
    traceAttach: (device: string) => builder.event('TraceAttachDeviceToDomain', { device }),
  };
};
