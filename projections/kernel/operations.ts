import { OPERATION_TYPES, type ErrnoName, type EventType, type IommuEvent } from '../../schemas/index.js';
import type { DecidedEvent, ModelOutcome, Observation, Operation } from './types.js';

/** what the recorder saw the call return: the event's `outcome`, or plain success for close events */
export type RecordedOutcome = { readonly ok: true; readonly [id: string]: unknown } | { readonly ok: false; readonly errno: ErrnoName };

/** translate a recorded iommufd id (in a ctx) to the replay's id */
export type ToReplayedId = (ictx: string, recorded: number) => number;

/**
 * catalogue operations (issue 19) the replay reads but does not yet re-decide: recorded, not yet modelled.
 * They pass through the replay like signals until the per-release model decides them.
 */
const NOT_YET_MODELLED_TYPES = [
  'DriverUnbindRefused',
  'IommufdPageResponseWritten',
] as const satisfies readonly EventType[];
export const NOT_YET_MODELLED: ReadonlySet<EventType> = new Set(NOT_YET_MODELLED_TYPES);

export type OperationEvent = Exclude<
  IommuEvent,
  {
    type:
      | 'TopologySnapshotTaken'
      | 'DeviceAddedToGroup'
      | 'DeviceRemovedFromGroup'
      | 'TraceAddDeviceToGroup'
      | 'TraceRemoveDeviceFromGroup'
      | 'TraceAttachDeviceToDomain'
      | 'TraceIoPageFault'
      | 'TraceDeviceResetFence'
      | 'TraceCacheTag'
      | 'IommufdVeventRead'
      | 'IommufdPageFaultRead'
      | 'PassthroughErrorReported'
      | 'VfioDeviceDmaBufRevoked'
      | (typeof NOT_YET_MODELLED_TYPES)[number];
  }
>;

// a reset fence (7.0) is a kprobe signal the model folds: attaches meanwhile are -EBUSY (ops/reset.ts)
const OBSERVATIONS: ReadonlySet<EventType> = new Set(['TopologySnapshotTaken', 'DeviceAddedToGroup', 'DeviceRemovedFromGroup', 'TraceDeviceResetFence']);
export const isObservation = (e: IommuEvent): e is Observation => OBSERVATIONS.has(e.type);
/** an operation a model decides: a catalogue operation, less those not yet modelled */
export const isOperationEvent = (e: IommuEvent): e is OperationEvent => OPERATION_TYPES.has(e.type) && !NOT_YET_MODELLED.has(e.type);
// the two sets above as one: isModelEvent is asked of every event the projection folds
const MODEL_TYPES: ReadonlySet<EventType> = new Set([...OBSERVATIONS, ...[...OPERATION_TYPES].filter((t) => !NOT_YET_MODELLED.has(t))]);
/** what a model's `evolve` folds: a topology observation or an operation it decides (signals and the rest it does not see) */
export const isModelEvent = (e: IommuEvent): e is Observation | OperationEvent => MODEL_TYPES.has(e.type);

/** calls recorded without an outcome succeeded (shared: outcomes are never mutated) */
export const CLOSED_OK: RecordedOutcome = Object.freeze({ ok: true });

/** a close event's outcome: recorded only when the close failed */
export const closeOutcome = (outcome: RecordedOutcome | undefined): RecordedOutcome => outcome ?? CLOSED_OK;

export const recordedOutcomeOf = (e: OperationEvent | DecidedEvent): RecordedOutcome => {
  switch (e.type) {
    case 'DriverBound':
    case 'DriverUnbound':
      return CLOSED_OK;
    case 'IommufdClosed':
    case 'VfioDeviceClosed':
    case 'VfioGroupClosed':
    case 'VfioContainerClosed':
    case 'IommufdEventFdClosed':
      return closeOutcome(e.data.outcome);
    case 'DriverBindRefused':
      return { ok: false, errno: e.data.errno };
    default:
      return e.data.outcome as RecordedOutcome;
  }
};

/** a hex digit's value, -1 for any other character */
const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);

/**
 * `BigInt(s)` for a recorded 64-bit value: a `0x` string of up to 13 significant digits (below 2^53; leading zeros
 * skipped, as the simulator and the collector pad to 16 digits) is read as a number first, which costs a fraction of
 * BigInt's string parse (every IOAS map and unmap has two); anything else, valid or not, is BigInt's (the same value,
 * the same SyntaxError)
 */
export const bigIntOf = (s: string): bigint => {
  const len = s.length;
  if (len < 3 || s.charCodeAt(0) !== 48 || s.charCodeAt(1) !== 120) return BigInt(s);
  let i = 2;
  while (i < len - 1 && s.charCodeAt(i) === 48) i += 1;
  if (len - i > 13) return BigInt(s);
  let n = 0;
  for (; i < len; i++) {
    const d = hexDigit(s.charCodeAt(i));
    if (d < 0) return BigInt(s);
    n = n * 16 + d;
  }
  return BigInt(n);
};

/**
 * A recorded operation event as the call a model re-decides. `fdIctx` is the ctx the recorded history
 * bound a device fd to (pt_ids of ATTACH live in that ctx); `failedFd` names the fd of a failed
 * GET_DEVICE_FD (which a model may still open).
 */
export const toOperation = (e: OperationEvent | (DecidedEvent & { readonly id?: undefined }), id: ToReplayedId, fdIctx: (deviceFd: string) => string | undefined): Operation => {
  switch (e.type) {
    case 'DriverBound':
    case 'DriverBindRefused':
      return { kind: 'bindDriver', device: e.data.device, driver: e.data.driver, via: e.data.via };
    case 'DriverUnbound':
      return { kind: 'unbindDriver', device: e.data.device, driver: e.data.driver };
    case 'VfioDeviceOpened':
      return { kind: 'openDevice', device: e.data.device, deviceFd: e.data.deviceFd, cdev: e.data.cdev };
    case 'VfioDeviceAccessAttempted':
      return { kind: 'accessDevice', device: e.data.device, deviceFd: e.data.deviceFd, access: e.data.access };
    case 'VfioDeviceBindIommufdIssued':
      return { kind: 'bindIommufd', device: e.data.device, deviceFd: e.data.deviceFd, ictx: e.data.ictx, badFd: e.data.badFd, args: e.data.args, vfToken: e.data.vfToken };
    case 'VfioDeviceAttachPtIssued': {
      const ictx = fdIctx(e.data.deviceFd);
      return { kind: 'attachPt', device: e.data.device, deviceFd: e.data.deviceFd, ptId: ictx === undefined ? e.data.ptId : id(ictx, e.data.ptId), pasid: e.data.pasid, args: e.data.args };
    }
    case 'VfioDeviceDetachPtIssued':
      return { kind: 'detachPt', device: e.data.device, deviceFd: e.data.deviceFd, pasid: e.data.pasid, args: e.data.args };
    case 'VfioDeviceClosed':
      return { kind: 'closeDevice', device: e.data.device, deviceFd: e.data.deviceFd };
    case 'IommufdOpened':
      return { kind: 'openIommufd', ictx: e.data.ictx };
    case 'IommufdClosed':
      return { kind: 'closeIommufd', ictx: e.data.ictx };
    case 'IommufdIoasAllocIssued':
      return { kind: 'allocIoas', ictx: e.data.ictx };
    case 'IommufdHwptAllocIssued':
      return {
        kind: 'allocHwpt',
        ictx: e.data.ictx,
        devId: id(e.data.ictx, e.data.devId),
        ptId: id(e.data.ictx, e.data.ptId),
        flags: e.data.flags ?? 0,
        dataType: e.data.dataType,
        ...(e.data.faultId !== undefined ? { faultId: id(e.data.ictx, e.data.faultId) } : {}),
      };
    case 'IommufdGetHwInfoIssued':
      return { kind: 'getHwInfo', ictx: e.data.ictx, devId: id(e.data.ictx, e.data.devId) };
    case 'IommufdHwptInvalidateIssued':
      return { kind: 'invalidateHwpt', ictx: e.data.ictx, hwptId: id(e.data.ictx, e.data.hwptId), dataType: e.data.dataType, entryLen: e.data.entryLen, entryNum: e.data.entryNum };
    case 'IommufdHwptGetDirtyBitmapIssued':
      return {
        kind: 'getDirtyBitmap',
        ictx: e.data.ictx,
        hwptId: id(e.data.ictx, e.data.hwptId),
        iova: bigIntOf(e.data.iova),
        length: bigIntOf(e.data.length),
        pageSize: bigIntOf(e.data.pageSize),
        noClear: e.data.noClear,
      };
    case 'IommufdFaultQueueAllocIssued':
      // a failed call returned no fd: the model's fd (if it opens one) gets a name nothing else uses
      return { kind: 'allocFaultQueue', ictx: e.data.ictx, flags: e.data.flags ?? 0, faultFd: e.data.outcome.ok ? e.data.outcome.faultFd : `unrecorded-fd@${e.id ?? 'decided'}` };
    case 'IommufdEventFdClosed':
      return { kind: 'closeEventFd', ictx: e.data.ictx, fd: e.data.fd, fdKind: e.data.kind };
    case 'IommufdDestroyIssued':
      return { kind: 'destroy', ictx: e.data.ictx, objectId: id(e.data.ictx, e.data.objectId) };
    case 'IommufdIoasMapFileIssued':
      return {
        kind: 'mapFile',
        ictx: e.data.ictx,
        ioasId: id(e.data.ictx, e.data.ioasId),
        iova: bigIntOf(e.data.iova),
        length: bigIntOf(e.data.length),
        fd: e.data.fd,
        start: e.data.start,
        flags: e.data.flags,
        fileKind: e.data.fileKind,
      };
    case 'IommufdIoasChangeProcessIssued':
      return { kind: 'changeProcess', ictx: e.data.ictx };
    case 'IommufdIoasGetPaIssued':
      return {
        kind: 'getPa',
        ictx: e.data.ictx,
        ioasId: id(e.data.ictx, e.data.ioasId),
        iova: bigIntOf(e.data.iova),
        length: bigIntOf(e.data.length),
        ...(e.data.outcome.ok ? { phys: e.data.outcome.phys } : {}),
      };
    case 'IommufdHwptSetDirtyTrackingIssued':
      return { kind: 'setDirtyTracking', ictx: e.data.ictx, hwptId: id(e.data.ictx, e.data.hwptId), enable: e.data.enable };
    case 'IommufdViommuAllocIssued':
      return { kind: 'allocViommu', ictx: e.data.ictx, devId: id(e.data.ictx, e.data.devId), hwptId: id(e.data.ictx, e.data.hwptId), viommuType: e.data.viommuType, flags: e.data.flags ?? 0 };
    case 'IommufdVdeviceAllocIssued':
      return { kind: 'allocVdevice', ictx: e.data.ictx, viommuId: id(e.data.ictx, e.data.viommuId), devId: id(e.data.ictx, e.data.devId), virtId: e.data.virtId };
    case 'IommufdVeventqAllocIssued':
      return {
        kind: 'allocVeventq',
        ictx: e.data.ictx,
        viommuId: id(e.data.ictx, e.data.viommuId),
        veventqType: e.data.veventqType,
        depth: e.data.veventqDepth,
        flags: e.data.flags ?? 0,
        // a failed call returned no fd: the model's fd (if it opens one) gets a name nothing else uses
        veventqFd: e.data.outcome.ok ? e.data.outcome.veventqFd : `unrecorded-fd@${e.id ?? 'decided'}`,
      };
    case 'IommufdHwQueueAllocIssued':
      return {
        kind: 'allocHwQueue',
        ictx: e.data.ictx,
        viommuId: id(e.data.ictx, e.data.viommuId),
        hwQueueType: e.data.hwQueueType,
        index: e.data.index,
        iova: bigIntOf(e.data.nestingParentIova),
        length: bigIntOf(e.data.length),
        flags: e.data.flags ?? 0,
      };
    case 'VfioDeviceResetIssued':
      return { kind: 'resetDevice', device: e.data.device, deviceFd: e.data.deviceFd, reset: e.data.reset };
    case 'VfioDeviceDmaBufCreated':
      return {
        kind: 'createDmaBuf',
        device: e.data.device,
        deviceFd: e.data.deviceFd,
        // a failed call returned no fd: the model's fd (if it opens one) gets a name nothing else uses
        dmaBufFd: e.data.outcome.ok ? e.data.outcome.dmaBufFd : `unrecorded-fd@${e.id ?? 'decided'}`,
        regionIndex: e.data.regionIndex,
        nrRanges: e.data.nrRanges,
      };
    case 'IommufdIoasMapIssued':
      return { kind: 'mapIoas', ictx: e.data.ictx, ioasId: id(e.data.ictx, e.data.ioasId), iova: bigIntOf(e.data.iova), length: bigIntOf(e.data.length) };
    case 'IommufdIoasUnmapIssued':
      return { kind: 'unmapIoas', ictx: e.data.ictx, ioasId: id(e.data.ictx, e.data.ioasId), iova: bigIntOf(e.data.iova), length: bigIntOf(e.data.length) };
    case 'VfioGroupOpened':
      return { kind: 'openGroup', group: e.data.group, groupFd: e.data.groupFd };
    case 'VfioGroupClosed':
      return { kind: 'closeGroup', group: e.data.group, groupFd: e.data.groupFd };
    case 'VfioGroupGetStatusIssued':
      return { kind: 'groupStatus', group: e.data.group, groupFd: e.data.groupFd };
    case 'VfioGroupSetContainerIssued':
      return { kind: 'setContainer', group: e.data.group, groupFd: e.data.groupFd, container: e.data.container, containerKind: e.data.containerKind };
    case 'VfioGroupUnsetContainerIssued':
      return { kind: 'unsetContainer', group: e.data.group, groupFd: e.data.groupFd };
    case 'VfioGroupGetDeviceFdIssued':
      return {
        kind: 'getDeviceFd',
        group: e.data.group,
        groupFd: e.data.groupFd,
        device: e.data.device,
        // a failed call returned no fd: the model's fd (if it opens one) gets a name nothing else uses
        newFd: e.data.outcome.ok ? e.data.outcome.deviceFd : `unrecorded-fd@${e.id ?? 'decided'}`,
      };
    case 'VfioContainerOpened':
      return { kind: 'openContainer', container: e.data.container };
    case 'VfioContainerSetIommuIssued':
      return { kind: 'setIommu', container: e.data.container, iommuType: e.data.iommuType };
    case 'VfioContainerClosed':
      return { kind: 'closeContainer', container: e.data.container };
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
};

// a recorded event's ids are the model's own (no translation); a model's own evolve knows no fd's recorded ctx
const SAME_ID: ToReplayedId = (_ictx, id) => id;
const NO_FD_ICTX = (): undefined => undefined;

/** a recorded (or decided) operation event as the call, its ids the model's own: what a variant's `evolve` follows */
export const toRecordedOperation = (e: OperationEvent | DecidedEvent): Operation => toOperation(e, SAME_ID, NO_FD_ICTX);

const ICTX_OBJECT_OPERATIONS = [
  'allocIoas',
  'allocHwpt',
  'destroy',
  'mapIoas',
  'unmapIoas',
  'setDirtyTracking',
  'allocViommu',
  'allocVdevice',
  'mapFile',
  'changeProcess',
  'getPa',
  'allocVeventq',
  'closeEventFd',
  'allocHwQueue',
  'getHwInfo',
  'invalidateHwpt',
  'getDirtyBitmap',
  'allocFaultQueue',
] as const;
type IctxObjectOperation = Extract<Operation, { readonly kind: (typeof ICTX_OBJECT_OPERATIONS)[number] }>;
const ICTX_OBJECT_KINDS: ReadonlySet<string> = new Set(ICTX_OBJECT_OPERATIONS);
/** an ioctl on an iommufd context's objects (IOAS, hwpt, vIOMMU, ...), named by the ctx's fd */
export const isIctxObjectOperation = (op: Operation): op is IctxObjectOperation => ICTX_OBJECT_KINDS.has(op.kind);

/** the ctx whose ids an operation's outputs live in */
export const ictxOfOperation = (op: Operation, fdIctx: (deviceFd: string) => string | undefined): string | undefined => {
  if (isIctxObjectOperation(op)) return op.ictx;
  switch (op.kind) {
    case 'bindIommufd':
      return op.ictx;
    case 'attachPt':
      return fdIctx(op.deviceFd);
    default:
      return undefined;
  }
};

const hex64 = (n: bigint): string => `0x${n.toString(16).padStart(16, '0')}`;
const opt = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));

/**
 * The catalogue's recorded event for a call and what it returned: the inverse of `toOperation` (a
 * decider's output). A call that fails where the recorder sees nothing (an unbind or a close of something
 * not there) or never returns (a crash, a blocked call) records no event.
 */
export const toRecordedEvents = (op: Operation, o: ModelOutcome): readonly DecidedEvent[] => {
  if (!o.ok && !('errno' in o)) return [];
  // the catalogue's outcome for the call: ids as the kernel writes them back (types checked by the schemas)
  const outcome = o as never;
  const one = (e: DecidedEvent): readonly DecidedEvent[] => [e];
  switch (op.kind) {
    case 'bindDriver':
      return one(
        o.ok
          ? { type: 'DriverBound', data: { device: op.device, driver: op.driver, ...opt('via', op.via) } }
          : { type: 'DriverBindRefused', data: { device: op.device, driver: op.driver, errno: (o as { errno: ErrnoName }).errno, ...opt('via', op.via) } },
      );
    case 'unbindDriver':
      return o.ok ? one({ type: 'DriverUnbound', data: { device: op.device, ...opt('driver', op.driver) } }) : [];
    case 'openDevice':
      return one({ type: 'VfioDeviceOpened', data: { device: op.device, deviceFd: op.deviceFd, ...opt('cdev', op.cdev), outcome } });
    case 'accessDevice':
      return one({ type: 'VfioDeviceAccessAttempted', data: { device: op.device, deviceFd: op.deviceFd, access: op.access as never, outcome } });
    case 'bindIommufd':
      return one({
        type: 'VfioDeviceBindIommufdIssued',
        data: { device: op.device, deviceFd: op.deviceFd, ictx: op.ictx, ...opt('badFd', op.badFd), ...opt('vfToken', op.vfToken), ...opt('args', op.args), outcome },
      });
    case 'attachPt':
      return one({ type: 'VfioDeviceAttachPtIssued', data: { device: op.device, deviceFd: op.deviceFd, ptId: op.ptId, ...opt('pasid', op.pasid), ...opt('args', op.args), outcome } });
    case 'detachPt':
      return one({ type: 'VfioDeviceDetachPtIssued', data: { device: op.device, deviceFd: op.deviceFd, ...opt('pasid', op.pasid), ...opt('args', op.args), outcome } });
    case 'closeDevice':
      return o.ok ? one({ type: 'VfioDeviceClosed', data: { device: op.device, deviceFd: op.deviceFd } }) : [];
    case 'openIommufd':
      return one({ type: 'IommufdOpened', data: { ictx: op.ictx, outcome } });
    case 'closeIommufd':
      return o.ok ? one({ type: 'IommufdClosed', data: { ictx: op.ictx } }) : [];
    case 'allocIoas':
      return one({ type: 'IommufdIoasAllocIssued', data: { ictx: op.ictx, outcome } });
    case 'allocHwpt':
      return one({ type: 'IommufdHwptAllocIssued', data: { ictx: op.ictx, devId: op.devId, ptId: op.ptId, flags: op.flags, ...opt('dataType', op.dataType as never), ...opt('faultId', op.faultId), outcome } });
    case 'getHwInfo':
      return one({ type: 'IommufdGetHwInfoIssued', data: { ictx: op.ictx, devId: op.devId, outcome } });
    case 'invalidateHwpt':
      return one({ type: 'IommufdHwptInvalidateIssued', data: { ictx: op.ictx, hwptId: op.hwptId, dataType: op.dataType as never, entryLen: op.entryLen, entryNum: op.entryNum, outcome } });
    case 'getDirtyBitmap':
      return one({
        type: 'IommufdHwptGetDirtyBitmapIssued',
        data: { ictx: op.ictx, hwptId: op.hwptId, iova: hex64(op.iova), length: hex64(op.length), pageSize: hex64(op.pageSize), ...opt('noClear', op.noClear), outcome },
      });
    case 'allocFaultQueue':
      return one({ type: 'IommufdFaultQueueAllocIssued', data: { ictx: op.ictx, ...(op.flags !== 0 ? { flags: op.flags } : {}), outcome } });
    case 'closeEventFd':
      return o.ok ? one({ type: 'IommufdEventFdClosed', data: { ictx: op.ictx, fd: op.fd, kind: op.fdKind } }) : [];
    case 'destroy':
      return one({ type: 'IommufdDestroyIssued', data: { ictx: op.ictx, objectId: op.objectId, outcome } });
    case 'mapFile':
      return one({
        type: 'IommufdIoasMapFileIssued',
        data: { ictx: op.ictx, ...opt('flags', op.flags), ioasId: op.ioasId, fd: op.fd, ...opt('fileKind', op.fileKind as never), start: op.start, length: hex64(op.length), iova: hex64(op.iova), outcome },
      });
    case 'changeProcess':
      return one({ type: 'IommufdIoasChangeProcessIssued', data: { ictx: op.ictx, outcome } });
    case 'getPa':
      return one({ type: 'IommufdIoasGetPaIssued', data: { ictx: op.ictx, ioasId: op.ioasId, iova: hex64(op.iova), length: hex64(op.length), outcome } });
    case 'setDirtyTracking':
      return one({ type: 'IommufdHwptSetDirtyTrackingIssued', data: { ictx: op.ictx, hwptId: op.hwptId, enable: op.enable, outcome } });
    case 'allocViommu':
      return one({ type: 'IommufdViommuAllocIssued', data: { ictx: op.ictx, ...(op.flags !== 0 ? { flags: op.flags } : {}), viommuType: op.viommuType as never, devId: op.devId, hwptId: op.hwptId, outcome } });
    case 'allocVdevice':
      return one({ type: 'IommufdVdeviceAllocIssued', data: { ictx: op.ictx, viommuId: op.viommuId, devId: op.devId, virtId: op.virtId, outcome } });
    case 'allocVeventq':
      return one({
        type: 'IommufdVeventqAllocIssued',
        data: { ictx: op.ictx, ...(op.flags !== 0 ? { flags: op.flags } : {}), viommuId: op.viommuId, veventqType: op.veventqType as never, veventqDepth: op.depth, outcome },
      });
    case 'allocHwQueue':
      return one({
        type: 'IommufdHwQueueAllocIssued',
        data: {
          ictx: op.ictx,
          ...(op.flags !== 0 ? { flags: op.flags } : {}),
          viommuId: op.viommuId,
          hwQueueType: op.hwQueueType as never,
          index: op.index,
          nestingParentIova: hex64(op.iova),
          length: hex64(op.length),
          outcome,
        },
      });
    case 'resetDevice':
      return one({ type: 'VfioDeviceResetIssued', data: { device: op.device, deviceFd: op.deviceFd, reset: op.reset, outcome } });
    case 'createDmaBuf':
      return one({ type: 'VfioDeviceDmaBufCreated', data: { device: op.device, deviceFd: op.deviceFd, regionIndex: op.regionIndex, nrRanges: op.nrRanges, outcome } });
    case 'mapIoas':
      return one({ type: 'IommufdIoasMapIssued', data: { ictx: op.ictx, ioasId: op.ioasId, iova: hex64(op.iova), length: hex64(op.length), outcome } });
    case 'unmapIoas':
      return one({ type: 'IommufdIoasUnmapIssued', data: { ictx: op.ictx, ioasId: op.ioasId, iova: hex64(op.iova), length: hex64(op.length), outcome } });
    case 'openGroup':
      return one({ type: 'VfioGroupOpened', data: { group: op.group, groupFd: op.groupFd, outcome } });
    case 'closeGroup':
      return o.ok ? one({ type: 'VfioGroupClosed', data: { group: op.group, groupFd: op.groupFd } }) : [];
    case 'groupStatus':
      return one({ type: 'VfioGroupGetStatusIssued', data: { group: op.group, groupFd: op.groupFd, outcome } });
    case 'setContainer':
      return one({ type: 'VfioGroupSetContainerIssued', data: { group: op.group, groupFd: op.groupFd, container: op.container, containerKind: op.containerKind, outcome } });
    case 'unsetContainer':
      return one({ type: 'VfioGroupUnsetContainerIssued', data: { group: op.group, groupFd: op.groupFd, outcome } });
    case 'getDeviceFd':
      return one({ type: 'VfioGroupGetDeviceFdIssued', data: { group: op.group, groupFd: op.groupFd, device: op.device, outcome } });
    case 'openContainer':
      return one({ type: 'VfioContainerOpened', data: { container: op.container, outcome } });
    case 'setIommu':
      return one({ type: 'VfioContainerSetIommuIssued', data: { container: op.container, iommuType: op.iommuType as never, outcome } });
    case 'closeContainer':
      return o.ok ? one({ type: 'VfioContainerClosed', data: { container: op.container } }) : [];
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};
