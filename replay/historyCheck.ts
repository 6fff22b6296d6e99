import type { FieldIssue, IommuEvent } from '../schemas/index.js';
import type { OperationEvent, RecordedOutcome } from '../projections/kernel/operations.js';

export { isOperationEvent } from '../projections/kernel/operations.js';

/**
 * Variant-independent sanity of one host's recorded history: what no kernel could have produced, so no
 * model can meaningfully replay it ("impossible sequence"). Each problem names the field. Handles are
 * only checked on calls the recorder saw succeed (a recorded -EBADF on an unknown fd is fine).
 */
export interface HistoryTracker {
  /**
   * the problem with this event, or null; call `apply` afterwards for accepted events. `recorded` is the
   * event's recorded outcome when it is an operation (isOperationEvent), else null: the replayer has it anyway.
   */
  check(event: IommuEvent, recorded: RecordedOutcome | null): FieldIssue | null;
  apply(event: IommuEvent, recorded: RecordedOutcome | null): void;
  /** the ctx a device fd was bound to in the recorded history */
  fdIctx(deviceFd: string): string | undefined;
}

const issue = (path: string, message: string): FieldIssue => ({ path, message });

export const createHistoryTracker = (): HistoryTracker => {
  let lastSeq = -1;
  let topology = false;
  const devices = new Set<string>();
  const fds = new Map<string, { device: string; ictx?: string }>();
  const ictxs = new Set<string>();
  const groupFds = new Map<string, number>();
  const containers = new Set<string>();
  // group fd → the iommufd set as its container
  const containerIctx = new Map<string, string>();

  const needFd = (handle: string, device: string): FieldIssue | null => {
    const fd = fds.get(handle);
    if (!fd) return issue('data.deviceFd', `device fd ${JSON.stringify(handle)} is not open at this point of the history (never opened, or closed)`);
    if (fd.device !== device) return issue('data.device', `device fd ${JSON.stringify(handle)} was opened for ${fd.device}, not ${device}`);
    return null;
  };
  const needIctx = (handle: string): FieldIssue | null =>
    ictxs.has(handle) ? null : issue('data.ictx', `iommufd ${JSON.stringify(handle)} is not open at this point of the history`);
  const needGroupFd = (handle: string, group: number): FieldIssue | null => {
    const g = groupFds.get(handle);
    if (g === undefined) return issue('data.groupFd', `group fd ${JSON.stringify(handle)} is not open at this point of the history`);
    return g === group ? null : issue('data.group', `group fd ${JSON.stringify(handle)} belongs to group ${g}, not ${group}`);
  };
  const needContainer = (handle: string): FieldIssue | null =>
    containers.has(handle) ? null : issue('data.container', `container ${JSON.stringify(handle)} is not open at this point of the history`);
  const fresh = (path: string, taken: boolean, handle: string): FieldIssue | null =>
    taken ? issue(path, `handle ${JSON.stringify(handle)} already names an open file (handles are unique while open)`) : null;

  const checkHandles = (e: OperationEvent): FieldIssue | null => {
    switch (e.type) {
      case 'VfioDeviceOpened':
        return fresh('data.deviceFd', fds.has(e.data.deviceFd), e.data.deviceFd);
      case 'VfioDeviceAccessAttempted':
      case 'VfioDeviceAttachPtIssued':
      case 'VfioDeviceDetachPtIssued':
      case 'VfioDeviceClosed':
      case 'VfioDeviceResetIssued':
        return needFd(e.data.deviceFd, e.data.device);
      case 'VfioDeviceBindIommufdIssued':
        return needFd(e.data.deviceFd, e.data.device) ?? needIctx(e.data.ictx);
      case 'IommufdOpened':
        return fresh('data.ictx', ictxs.has(e.data.ictx), e.data.ictx);
      case 'IommufdClosed':
      case 'IommufdIoasAllocIssued':
      case 'IommufdHwptAllocIssued':
      case 'IommufdDestroyIssued':
      case 'IommufdIoasMapIssued':
      case 'IommufdIoasUnmapIssued':
      case 'IommufdHwptSetDirtyTrackingIssued':
      case 'IommufdViommuAllocIssued':
      case 'IommufdVdeviceAllocIssued':
      case 'IommufdIoasMapFileIssued':
      case 'IommufdIoasChangeProcessIssued':
      case 'IommufdGetHwInfoIssued':
      case 'IommufdHwptInvalidateIssued':
      case 'IommufdHwptGetDirtyBitmapIssued':
      case 'IommufdFaultQueueAllocIssued':
      case 'IommufdVeventqAllocIssued':
      case 'IommufdHwQueueAllocIssued':
        return needIctx(e.data.ictx);
      case 'IommufdEventFdClosed':
        // a fault or vEVENTQ fd holds its ctx (iommufd_ctx_get): /dev/iommu may be closed already (the decider
        // answers -EBADF for an fd it never opened)
        return null;
      case 'VfioGroupOpened':
        return fresh('data.groupFd', groupFds.has(e.data.groupFd), e.data.groupFd);
      case 'VfioGroupClosed':
      case 'VfioGroupGetStatusIssued':
      case 'VfioGroupUnsetContainerIssued':
        return needGroupFd(e.data.groupFd, e.data.group);
      case 'VfioGroupGetDeviceFdIssued':
        return needGroupFd(e.data.groupFd, e.data.group) ?? (e.data.outcome.ok ? fresh('data.outcome.deviceFd', fds.has(e.data.outcome.deviceFd), e.data.outcome.deviceFd) : null);
      case 'VfioGroupSetContainerIssued':
        return (
          needGroupFd(e.data.groupFd, e.data.group) ??
          (e.data.containerKind === 'legacy' ? needContainer(e.data.container) : ictxs.has(e.data.container) ? null : issue('data.container', `iommufd ${JSON.stringify(e.data.container)} is not open at this point of the history`))
        );
      case 'VfioContainerOpened':
        return fresh('data.container', containers.has(e.data.container), e.data.container);
      case 'VfioContainerSetIommuIssued':
      case 'VfioContainerClosed':
        return needContainer(e.data.container);
      case 'DriverBound':
      case 'DriverUnbound':
      case 'DriverBindRefused':
        return null;
      default: {
        const unreachable: never = e;
        return unreachable;
      }
    }
  };

  return {
    check(e, recorded) {
      if (e.seq <= lastSeq) return issue('seq', `sequence number ${e.seq} does not follow ${lastSeq} (duplicate or out of order on host ${e.host})`);
      if (recorded === null) return null;
      if (!topology) return issue('type', `${e.type} before the host's first TopologySnapshotTaken: replay starts from the recorded topology`);
      const device = (e.data as { device?: string }).device;
      if (device !== undefined && !devices.has(device)) return issue('data.device', `device ${device} is not in the recorded topology of host ${e.host}`);
      return recorded.ok ? checkHandles(e as OperationEvent) : null;
    },
    apply(e, recorded) {
      lastSeq = e.seq;
      switch (e.type) {
        case 'TopologySnapshotTaken':
          topology = true;
          for (const d of e.data.devices) devices.add(d.device);
          for (const g of e.data.groups) for (const d of g.devices) devices.add(d);
          return;
        case 'DeviceAddedToGroup':
          devices.add(e.data.device);
          return;
        case 'DeviceRemovedFromGroup':
          devices.delete(e.data.device);
          return;
        default:
          break;
      }
      if (recorded === null || !recorded.ok) return;
      switch (e.type) {
        case 'VfioDeviceOpened':
          fds.set(e.data.deviceFd, { device: e.data.device });
          return;
        case 'VfioGroupGetDeviceFdIssued': {
          const bound = [...fds.values()].find((f) => f.device === e.data.device && f.ictx !== undefined)?.ictx;
          // an iommufd-backed group binds the device into that ctx: its pt_ids live there
          const ictx = bound ?? containerIctx.get(e.data.groupFd);
          if (e.data.outcome.ok) fds.set(e.data.outcome.deviceFd, ictx === undefined ? { device: e.data.device } : { device: e.data.device, ictx });
          return;
        }
        case 'VfioDeviceBindIommufdIssued': {
          const fd = fds.get(e.data.deviceFd);
          if (fd) fds.set(e.data.deviceFd, { device: fd.device, ictx: e.data.ictx });
          return;
        }
        case 'VfioDeviceClosed':
          fds.delete(e.data.deviceFd);
          return;
        case 'IommufdOpened':
          ictxs.add(e.data.ictx);
          return;
        case 'IommufdClosed':
          ictxs.delete(e.data.ictx);
          return;
        case 'VfioGroupOpened':
          groupFds.set(e.data.groupFd, e.data.group);
          return;
        case 'VfioGroupClosed':
          groupFds.delete(e.data.groupFd);
          containerIctx.delete(e.data.groupFd);
          return;
        case 'VfioGroupSetContainerIssued':
          if (e.data.containerKind === 'iommufd') containerIctx.set(e.data.groupFd, e.data.container);
          return;
        case 'VfioGroupUnsetContainerIssued':
          containerIctx.delete(e.data.groupFd);
          return;
        case 'VfioContainerOpened':
          containers.add(e.data.container);
          return;
        case 'VfioContainerClosed':
          containers.delete(e.data.container);
          return;
        default:
          return;
      }
    },
    fdIctx: (deviceFd) => fds.get(deviceFd)?.ictx,
  };
};
