import { createEventBuilder, type ErrnoName, type EventBuilder, type EventExtras, type IommuEvent, type IommuEventInput } from '../../schemas/index.js';
import { referenceTopology, type ReferenceTopologyOptions } from '../../schemas/testing/referenceTopology.js';

type Result<K extends string> = number | ErrnoName | Record<K, unknown>;
const out = <K extends string>(key: K, r: Result<K> | undefined) =>
  r === undefined ? { ok: true as const } : typeof r === 'string' ? { ok: false as const, errno: r } : typeof r === 'number' ? { ok: true as const, [key]: r } : { ok: true as const, ...r };
const plain = (errno?: ErrnoName) => (errno ? { ok: false as const, errno } : { ok: true as const });

type Capabilities = Extract<IommuEventInput, { type: 'TopologySnapshotTaken' }>['data']['capabilities'];

export interface TopologyOptions extends ReferenceTopologyOptions {
  /** `uname -r` the snapshot reports (the upstream model decides as that release) @defaultValue '6.12.0' */
  readonly kernelRelease?: string;
  /** the whole capabilities object instead of the recorder's (which `kernelRelease` only sets) */
  readonly capabilities?: Capabilities;
}

/**
 * A host recording, the one recorder of test scenarios (issue 16): one method per catalogue operation, outcomes
 * given as id / errno; each call mints one validated event with the host's next sequence number, keeps it in
 * `events` and returns it. replay/testing/scenarios.ts records the corpus with it; createScenario
 * (scenarioEvents.ts) is its given/when/then shorthand.
 */
export const createRecorder = (host: string, b: EventBuilder = createEventBuilder({ host, source: 'simulator' })) => {
  const events: IommuEvent[] = [];
  const push = <E extends IommuEvent>(e: E): E => {
    events.push(e);
    return e;
  };
  const traces = (...devices: string[]): void => devices.forEach((device) => push(b.event('TraceAttachDeviceToDomain', { device })));
  return {
    events,
    topology(options: TopologyOptions = {}, x?: EventExtras) {
      return push(
        b.event(
          'TopologySnapshotTaken',
          {
            capabilities: options.capabilities ?? { iommu: true, interruptRemapping: true, allowUnsafeInterrupts: false, cacheCoherent: true, kernelRelease: options.kernelRelease ?? '6.12.0' },
            ...referenceTopology(options),
          },
          x,
        ),
      );
    },
    traces,
    bindDriver: (device: string, driver: string, errno?: ErrnoName, x?: EventExtras) =>
      push(errno ? b.event('DriverBindRefused', { device, driver, errno }, x) : b.event('DriverBound', { device, driver }, x)),
    unbindDriver: (device: string, driver?: string, x?: EventExtras) => push(b.event('DriverUnbound', driver ? { device, driver } : { device }, x)),
    openIommufd: (ictx: string) => push(b.event('IommufdOpened', { ictx, outcome: plain() })),
    closeIommufd: (ictx: string) => push(b.event('IommufdClosed', { ictx })),
    openDevice: (device: string, deviceFd: string, errno?: ErrnoName, x?: EventExtras) => push(b.event('VfioDeviceOpened', { device, deviceFd, outcome: plain(errno) as never }, x)),
    access: (device: string, deviceFd: string, access: 'mmap' | 'ioctl', errno?: ErrnoName, request?: string) =>
      push(b.event('VfioDeviceAccessAttempted', { device, deviceFd, access, ...(request ? { request } : {}), outcome: plain(errno) as never })),
    bind: (device: string, deviceFd: string, ictx: string, r: Result<'devId'>, x?: EventExtras) =>
      push(b.event('VfioDeviceBindIommufdIssued', { device, deviceFd, ictx, outcome: out('devId', r) as never }, x)),
    allocIoas: (ictx: string, r: Result<'ioasId'>) => push(b.event('IommufdIoasAllocIssued', { ictx, outcome: out('ioasId', r) as never })),
    attach: (device: string, deviceFd: string, ptId: number, r: Result<'ptId'>, pasid?: number) =>
      push(b.event('VfioDeviceAttachPtIssued', { device, deviceFd, ptId, ...(pasid !== undefined ? { pasid } : {}), outcome: out('ptId', r) as never })),
    detach: (device: string, deviceFd: string, errno?: ErrnoName, pasid?: number) =>
      push(b.event('VfioDeviceDetachPtIssued', { device, deviceFd, ...(pasid !== undefined ? { pasid } : {}), outcome: plain(errno) as never })),
    closeDevice: (device: string, deviceFd: string, x?: EventExtras) => push(b.event('VfioDeviceClosed', { device, deviceFd }, x)),
    allocHwpt: (ictx: string, devId: number, ptId: number, flags: number, r: Result<'hwptId'>) =>
      push(b.event('IommufdHwptAllocIssued', { ictx, devId, ptId, flags, outcome: out('hwptId', r) as never })),
    destroy: (ictx: string, objectId: number, errno?: ErrnoName) => push(b.event('IommufdDestroyIssued', { ictx, objectId, outcome: plain(errno) as never })),
    mapIoas: (ictx: string, ioasId: number, errno?: ErrnoName) =>
      push(b.event('IommufdIoasMapIssued', { ictx, ioasId, iova: '0x100000', length: '0x200000', outcome: (errno ? plain(errno) : { ok: true, iova: '0x100000' }) as never })),
    setDirtyTracking: (ictx: string, hwptId: number, enable: boolean, errno?: ErrnoName) =>
      push(b.event('IommufdHwptSetDirtyTrackingIssued', { ictx, hwptId, enable, outcome: plain(errno) as never })),
    allocViommu: (ictx: string, devId: number, hwptId: number, r: Result<'viommuId'>) =>
      push(b.event('IommufdViommuAllocIssued', { ictx, viommuType: 'arm-smmuv3', devId, hwptId, outcome: out('viommuId', r) as never })),
    allocVdevice: (ictx: string, viommuId: number, devId: number, virtId: string, r: Result<'vdeviceId'>) =>
      push(b.event('IommufdVdeviceAllocIssued', { ictx, viommuId, devId, virtId, outcome: out('vdeviceId', r) as never })),
    openGroup: (group: number, groupFd: string, errno?: ErrnoName) => push(b.event('VfioGroupOpened', { group, groupFd, outcome: plain(errno) as never })),
    closeGroup: (group: number, groupFd: string) => push(b.event('VfioGroupClosed', { group, groupFd })),
    groupStatus: (group: number, groupFd: string, r: { viable: boolean; containerSet: boolean } | ErrnoName) =>
      push(b.event('VfioGroupGetStatusIssued', { group, groupFd, outcome: (typeof r === 'string' ? plain(r) : { ok: true, ...r }) as never })),
    setContainer: (group: number, groupFd: string, container: string, containerKind: 'legacy' | 'iommufd', errno?: ErrnoName) =>
      push(b.event('VfioGroupSetContainerIssued', { group, groupFd, container, containerKind, outcome: plain(errno) as never })),
    unsetContainer: (group: number, groupFd: string, errno?: ErrnoName) => push(b.event('VfioGroupUnsetContainerIssued', { group, groupFd, outcome: plain(errno) as never })),
    getDeviceFd: (group: number, groupFd: string, device: string, r: string | { errno: ErrnoName }) =>
      push(b.event('VfioGroupGetDeviceFdIssued', { group, groupFd, device, outcome: typeof r === 'string' ? { ok: true, deviceFd: r } : { ok: false, errno: r.errno } })),
    openContainer: (container: string) => push(b.event('VfioContainerOpened', { container, outcome: plain() })),
    setIommu: (container: string, iommuType: 'type1v2', errno?: ErrnoName) => push(b.event('VfioContainerSetIommuIssued', { container, iommuType, outcome: plain(errno) as never })),
    closeContainer: (container: string) => push(b.event('VfioContainerClosed', { container })),
    deviceAdded: (device: string, group: number) => {
      push(b.event('DeviceAddedToGroup', { device, group }));
      push(b.event('TraceAddDeviceToGroup', { group, device, line: `IOMMU: groupID=${group} device=${device}` }));
    },
    /** any catalogue event, for calls the helpers above do not cover (issue 19's newer objects) */
    event: <T extends IommuEventInput['type']>(type: T, data: Extract<IommuEventInput, { type: T }>['data']) => push(b.event(type, data as never)),
    report: (message: string, group?: number) => push(b.event('PassthroughErrorReported', { origin: 'qemu', ...(group !== undefined ? { group } : {}), message })),
  };
};
export type Recorder = ReturnType<typeof createRecorder>;
