import { createEventBuilder, type ErrnoName, type EventBuilder, type EventExtras, type IommuEvent } from '../../schemas/index.js';
import { createRecorder } from './recorder.js';

/**
 * The reference topology (protocol.md §3) and short event makers for given/when/then tests: each call
 * mints one validated event with the next sequence number of the host.
 */
export { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, ROOT_PORT, USB_RMRR, USBC, XHCI } from '../../schemas/testing/referenceTopology.js';
import { AUDIO, DEV_A, GPU, NIC, REFERENCE_TOPOLOGY, XHCI, referenceDevices, type ReferenceDeviceSpec } from '../../schemas/testing/referenceTopology.js';

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

/**
 * An event maker for one host, the given/when/then shorthand of the one recorder (recorder.ts): same builder,
 * same events, the projection scenarios' topology start; `fd(x)` / `ictx(x)` name handles the way a collector would
 */
export const createScenario = (host = 'host-a', builder: EventBuilder = createEventBuilder({ host })) => {
  const r = createRecorder(host, builder);
  return {
    builder,
    host,
    topology: (options: TopologyOptions = {}, x?: EventExtras): IommuEvent =>
      r.topology(
        {
          capabilities: {
            iommu: true,
            interruptRemapping: options.interruptRemapping === undefined ? true : options.interruptRemapping,
            allowUnsafeInterrupts: options.allowUnsafeInterrupts ?? false,
            ...(options.managedDmaDrivers ? { managedDmaDrivers: options.managedDmaDrivers } : {}),
          },
          devices: SCENARIO_START,
          ...(options.drivers ? { drivers: options.drivers } : {}),
        },
        x,
      ),
    driverBound: (device: string, driver: string, x?: EventExtras) => r.bindDriver(device, driver, undefined, x),
    driverUnbound: (device: string, x?: EventExtras) => r.unbindDriver(device, undefined, x),
    driverBindRefused: (device: string, driver: string, errno: ErrnoName = 'EBUSY') => r.bindDriver(device, driver, errno),
    deviceAdded: (device: string, group: number) => r.event('DeviceAddedToGroup', { device, group }),
    deviceRemoved: (device: string, group: number) => r.event('DeviceRemovedFromGroup', { device, group }),
    iommufdOpened: (ictx: string) => r.openIommufd(ictx),
    iommufdClosed: (ictx: string) => r.closeIommufd(ictx),
    ioasAlloc: (ictx: string, ioasId: number) => r.allocIoas(ictx, ioasId),
    hwptAlloc: (ictx: string, devId: number, ptId: number, hwptId: number) => r.event('IommufdHwptAllocIssued', { ictx, devId, ptId, outcome: { ok: true, hwptId } }),
    destroy: (ictx: string, objectId: number, errno?: ErrnoName) => r.destroy(ictx, objectId, errno),
    map: (ictx: string, ioasId: number) => r.event('IommufdIoasMapIssued', { ictx, ioasId, iova: '0x100000', length: '0x1000', outcome: { ok: true, iova: '0x100000' } }),
    open: (device: string, deviceFd: string, x?: EventExtras) => r.openDevice(device, deviceFd, undefined, x),
    access: (device: string, deviceFd: string, errno?: ErrnoName) => r.access(device, deviceFd, 'mmap', errno),
    bind: (device: string, deviceFd: string, ictx: string, devId: number, x?: EventExtras) => r.bind(device, deviceFd, ictx, devId, x),
    bindFail: (device: string, deviceFd: string, ictx: string, errno: ErrnoName) => r.bind(device, deviceFd, ictx, errno),
    attach: (device: string, deviceFd: string, ptId: number, hwpt: number, pasid?: number) => r.attach(device, deviceFd, ptId, hwpt, pasid),
    attachFail: (device: string, deviceFd: string, ptId: number, errno: ErrnoName) => r.attach(device, deviceFd, ptId, errno),
    detach: (device: string, deviceFd: string, pasid?: number) => r.detach(device, deviceFd, undefined, pasid),
    close: (device: string, deviceFd: string, x?: EventExtras) => r.closeDevice(device, deviceFd, x),
    groupOpened: (group: number, groupFd: string, errno?: ErrnoName) => r.openGroup(group, groupFd, errno),
    groupClosed: (group: number, groupFd: string) => r.closeGroup(group, groupFd),
    setContainer: (group: number, groupFd: string, container: string, containerKind: 'legacy' | 'iommufd', errno?: ErrnoName) => r.setContainer(group, groupFd, container, containerKind, errno),
    unsetContainer: (group: number, groupFd: string) => r.unsetContainer(group, groupFd),
    getDeviceFd: (group: number, groupFd: string, device: string, deviceFd: string) => r.getDeviceFd(group, groupFd, device, deviceFd),
    getDeviceFdFail: (group: number, groupFd: string, device: string, errno: ErrnoName) => r.getDeviceFd(group, groupFd, device, { errno }),
    containerOpened: (container: string) => r.openContainer(container),
    setIommu: (container: string) => r.setIommu(container, 'type1v2'),
    containerClosed: (container: string) => r.closeContainer(container),
    traceAttach: (device: string) => r.event('TraceAttachDeviceToDomain', { device }),
  };
};
