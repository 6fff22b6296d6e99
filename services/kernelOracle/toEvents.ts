import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { currentVersionOf, parseEvent, ERRNO_NUMBERS, OPERATION_TYPES, type ErrnoName, type EventType, type IommuEvent } from '../../schemas/index.js';
import type { BeginRecord, GuestRecord, OpRecord } from './guestRecords.js';
import type { Machine } from './topologies.js';

/** a recorded step the catalogue has no event for, with the reason */
export interface Unexpressed {
  readonly scenario: string;
  readonly line: number;
  readonly step: string;
  readonly reason: string;
}

export interface ScenarioHistory {
  readonly machine: string;
  readonly scenario: string;
  readonly host: string;
  readonly kernelRelease: string;
  readonly events: IommuEvent[];
  /** guest steps run (every op record) */
  readonly steps: number;
  /** steps that became operation events, and those of them that failed with an errno */
  readonly operations: number;
  readonly errnos: number;
  readonly traces: number;
  readonly unexpressed: Unexpressed[];
  readonly complete: boolean;
}

const ERRNO_BY_NUMBER = new Map<number, ErrnoName>(Object.entries(ERRNO_NUMBERS).map(([name, n]) => [n, name as ErrnoName]));

/** `/sys/kernel/iommu_groups/N/type` → the catalogue's DomainType */
const DOMAIN_TYPES = new Set(['blocked', 'identity', 'unmanaged', 'DMA', 'DMA-FQ']);

/** the file handle a bind names when the fd it passed is not an iommufd (the recorder's own name for it) */
const BAD_FDS: Record<string, { handle: string; badFd: 'negative' | 'closed' | 'not-iommufd' }> = {
  '@neg': { handle: 'fd-negative', badFd: 'negative' },
  '@closed': { handle: 'fd-closed', badFd: 'closed' },
  '@devnull': { handle: 'dev-null', badFd: 'not-iommufd' },
};

const str = (r: OpRecord, key: string): string | undefined => (typeof r[key] === 'string' ? (r[key] as string) : undefined);
const num = (r: OpRecord, key: string): number | undefined => (typeof r[key] === 'number' ? (r[key] as number) : undefined);

/** `flags=`/`argsz=` as the step passed them, when it overrode the defaults */
const argsOf = (argv: readonly string[]): { args?: { argsz?: number; flags?: number } } => {
  const args: { argsz?: number; flags?: number } = {};
  for (const a of argv) {
    const m = /^(argsz|flags)=(.+)$/.exec(a);
    if (m) args[m[1] as 'argsz' | 'flags'] = Number(m[2]);
  }
  return Object.keys(args).length > 0 ? { args } : {};
};

const hex = (s: string): string => `0x${BigInt(s).toString(16)}`;

type Data = Record<string, unknown>;
type Converted = { readonly type: EventType; readonly data: Data } | { readonly unexpressed: string };
/** a step that shows the collector several things at once (a rescan: each device it added, and the driver that bound) */
type ConvertedMany = Converted | { readonly events: readonly { readonly type: EventType; readonly data: Data }[] };

/** a `rescan` record's `added` member: the role devices the rescan (re-)added, with their group and driver */
const addedOf = (r: OpRecord): { device: string; group: number; driver: string | null }[] =>
  Array.isArray(r.added) ? (r.added as { device: string; group: number; driver: string | null }[]) : [];

/**
 * The CONFIG_IOMMUFD_TEST mock objects of one scenario (drivers/iommu/iommufd/selftest.c): the ids
 * IOMMU_TEST_OP_MOCK_DOMAIN returned (the selftest object, the mock device's iommufd device, its auto hwpt) and
 * every hwpt allocated for the mock device or under one of its hwpts. A mock device is no PCI function: the
 * catalogue has no device for it, so no step naming one of its objects is a catalogue event (the unit tests of
 * projections/kernel/ops judge the model by what the kernel answered for them).
 */
type SelftestIds = Set<number>;
const SELFTEST_REASON = 'selftest mock object';
/** IOMMU_HWPT_DATA_SELFTEST, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST (drivers/iommu/iommufd/iommufd_test.h) */
const SELFTEST_HWPT_DATA = 0xdead;
const SELFTEST_INVALIDATE_DATA = 0xdeadbeef;
const selftestStep = (r: OpRecord, errno: ErrnoName | null, ids: SelftestIds): string | null => {
  const op = r.argv[0];
  if (op === 'mock') {
    for (const key of ['stdevId', 'devId', 'hwptId']) if (typeof r[key] === 'number') ids.add(r[key] as number);
    return `${SELFTEST_REASON}: IOMMU_TEST_OP_MOCK_DOMAIN creates a kernel test device no VMM records`;
  }
  // the selftest's own data types (iommufd_test.h): a mock-only call even where no mock device could be made (6.1)
  const selftestData = (op === 'hwpt' && r.dataType === SELFTEST_HWPT_DATA) || (op === 'invalidate' && r.dataType === SELFTEST_INVALIDATE_DATA);
  const named = (['devId', 'ptId', 'hwptId', 'objectId'] as const).filter((k) => typeof r[k] === 'number' && ids.has(r[k] as number) && !(k === 'hwptId' && op === 'hwpt'));
  if (named.length === 0 && !selftestData) return null;
  if (op === 'hwpt' && errno === null && typeof r.hwptId === 'number') ids.add(r.hwptId);
  // a destroyed mock object's id is free: the kernel gives it to the next object, which may be no mock's
  if (op === 'destroy' && errno === null && typeof r.objectId === 'number') ids.delete(r.objectId);
  return named.length > 0 ? `${SELFTEST_REASON}: ${op} names the mock's ${named.join(', ')}` : `${SELFTEST_REASON}: ${op} passes the selftest data type`;
};

/** enum iommu_hw_info_type (include/uapi/linux/iommufd.h) → the catalogue's HwInfoType; the selftest's 0xfeedbeef has none */
const HW_INFO_TYPES: Readonly<Record<number, string>> = { 0: 'none', 1: 'intel-vtd', 2: 'arm-smmuv3', 3: 'tegra241-cmdqv', 4: 'amd' };
/** enum iommufd_hw_capabilities, bit by bit */
const HW_CAPS = ['dirty-tracking', 'pci-pasid-exec', 'pci-pasid-priv', 'pci-ats-not-supported'] as const;
const hwInfoOf = (r: OpRecord): Data | undefined => {
  const type = HW_INFO_TYPES[num(r, 'type') ?? -1];
  if (type === undefined) return undefined;
  const caps = num(r, 'capabilities') ?? 0;
  return { type, capabilities: HW_CAPS.filter((_, bit) => (caps & (1 << bit)) !== 0), maxPasidLog2: num(r, 'maxPasidLog2') ?? 0 };
};
/** enum iommu_hwpt_data_type / iommu_hwpt_invalidate_data_type: the values a step passes */
const HWPT_DATA: Readonly<Record<number, string>> = { 0: 'none', 1: 'vtd-s1', 2: 'arm-smmuv3' };
const INVALIDATE_DATA: Readonly<Record<number, string>> = { 0: 'vtd-s1', 1: 'viommu-arm-smmuv3' };

/**
 * What GET_HW_INFO told each scenario about its PCI devices (a fixed property of the hardware, measured in the
 * same boot): the topology snapshot carries it, so a model knows a device's IOMMU capabilities from the start
 * (dirty tracking: iommufd_hwpt_paging_alloc refuses IOMMU_HWPT_ALLOC_DIRTY_TRACKING without it).
 */
const hwInfoByScenario = (records: readonly GuestRecord[]): Map<string, Map<string, Data>> => {
  const out = new Map<string, Map<string, Data>>();
  let scenario: Map<string, Data> | null = null;
  const devices = new Map<number, string>();
  for (const r of records) {
    if (r.t === 'begin') {
      scenario = new Map();
      out.set(r.scenario, scenario);
      devices.clear();
    } else if (r.t === 'op' && r.errno === 0 && scenario) {
      if (r.argv[0] === 'bind_iommufd' && typeof r.devId === 'number' && str(r, 'dev1')) devices.set(r.devId, str(r, 'dev1')!);
      const device = r.argv[0] === 'hw_info' ? devices.get(num(r, 'devId') ?? -1) : undefined;
      const info = device === undefined ? undefined : hwInfoOf(r);
      if (device !== undefined && info !== undefined) scenario.set(device, info);
    }
  }
  return out;
};

/**
 * One guest step → the catalogue event a VMM would record for its own call, or the reason it has none.
 * `outcome` is the call's result: ids written back on success, the errno by name on failure.
 */
const convertStep = (r: OpRecord, errno: ErrnoName | null, fdDevice: Map<string, string>, fdKind: Map<string, string>, fdGroup: Map<string, number>, selftest: SelftestIds): ConvertedMany => {
  const [op, a1 = '', a2 = ''] = r.argv;
  const mock = selftestStep(r, errno, selftest);
  if (mock !== null) return { unexpressed: mock };
  // what a name was opened as, even when the open failed (a 6.1 kernel has no /dev/iommu: later calls pass a closed fd)
  if (op === 'iommufd' || op === 'container') fdKind.set(a1, op === 'iommufd' ? 'ictx' : 'container');
  // the device an fd name was opened for, even when the open failed (the step on it is still a real call)
  if (op === 'cdev' && str(r, 'device')) fdDevice.set(a1, str(r, 'device')!);
  if (op === 'get_device_fd' && str(r, 'out') && str(r, 'device')) fdDevice.set(str(r, 'out')!, str(r, 'device')!);
  // the group a group name was opened for, even when the open failed (a later call on the name is still a real call)
  if (op === 'group' && num(r, 'group') !== undefined) fdGroup.set(a1, num(r, 'group')!);
  const group = num(r, 'group1') ?? fdGroup.get(a1);
  const outcome = (ids: Data = {}): Data => (errno === null ? { ok: true, ...ids } : { ok: false, errno });
  const out = (key: string): Data => (errno === null && r[key] !== undefined ? { [key]: r[key] } : {});
  const device = str(r, 'device') ?? str(r, 'dev1') ?? fdDevice.get(a1);
  if (device === undefined && ['getinfo', 'bind_iommufd', 'attach', 'detach'].includes(op ?? '')) return { unexpressed: `${a1} names no device fd this scenario tried to open` };
  switch (op) {
    case 'override':
      return { unexpressed: 'driver_override write: sysfs configuration, no ownership change (the probe that follows is recorded)' };
    case 'unbind':
      if (errno !== null) return { unexpressed: `unbind failed with ${errno}: DriverUnbound has no outcome` };
      return { type: 'DriverUnbound', data: { device, driver: str(r, 'driver') } };
    case 'bind':
    case 'probe': {
      const via = op === 'probe' ? { via: 'drivers_probe' } : {};
      if (errno !== null) return { type: 'DriverBindRefused', data: { device, driver: a2, errno, ...via } };
      const after = str(r, 'after');
      if (after === undefined) return { unexpressed: 'drivers_probe matched no driver: nothing bound, no event' };
      return { type: 'DriverBound', data: { device, driver: after, ...via } };
    }
    case 'remove': {
      // sysfs software hot-unplug: pci_stop_and_remove_bus_device unbinds any driver, then iommu_release_device
      // takes the device out of its group (the collector sees the remove uevent and remove_device_from_group)
      if (errno !== null) return { unexpressed: `remove failed with ${errno}: DeviceRemovedFromGroup has no outcome` };
      const group = num(r, 'group');
      if (group === undefined || group < 0) return { unexpressed: `remove of ${device}, which was in no iommu group` };
      return {
        events: [...(str(r, 'driver') ? [{ type: 'DriverUnbound' as const, data: { device, driver: str(r, 'driver') } }] : []), { type: 'DeviceRemovedFromGroup', data: { device, group } }],
      };
    }
    case 'rescan': {
      // pci_rescan_bus → pci_device_add → iommu_probe_device (the device joins its group, on the group's current
      // domain), then the bus probes a driver; really_probe → iommu_device_use_default_domain refuses a kernel
      // driver with -EBUSY while the group is user-owned, silently (no uevent, no log line): the device stays driverless
      if (errno !== null) return { unexpressed: `rescan failed with ${errno}: no device was added` };
      const added = addedOf(r).filter((a) => a.group >= 0);
      if (added.length === 0) return { unexpressed: 'rescan added no device of the scenario: nothing to record' };
      return {
        events: added.flatMap((a) => [
          { type: 'DeviceAddedToGroup' as const, data: { device: a.device, group: a.group } },
          ...(a.driver !== null ? [{ type: 'DriverBound' as const, data: { device: a.device, driver: a.driver } }] : []),
        ]),
      };
    }
    case 'iommufd':
      return { type: 'IommufdOpened', data: { ictx: a1, outcome: outcome() } };
    case 'cdev': {
      const cdev = str(r, 'cdev');
      return { type: 'VfioDeviceOpened', data: { device, deviceFd: a1, ...(cdev ? { cdev } : {}), outcome: outcome() } };
    }
    case 'getinfo':
      return { type: 'VfioDeviceAccessAttempted', data: { device, deviceFd: a1, access: 'ioctl', request: 'VFIO_DEVICE_GET_INFO', outcome: outcome() } };
    case 'bind_iommufd': {
      const bad = BAD_FDS[a2];
      return {
        type: 'VfioDeviceBindIommufdIssued',
        data: { device, deviceFd: a1, ictx: bad ? bad.handle : a2, ...(bad ? { badFd: bad.badFd } : {}), ...argsOf(r.argv), outcome: outcome(out('devId')) },
      };
    }
    case 'attach':
      return { type: 'VfioDeviceAttachPtIssued', data: { device, deviceFd: a1, ptId: num(r, 'inPtId'), ...argsOf(r.argv), outcome: outcome(out('ptId')) } };
    case 'detach':
      return { type: 'VfioDeviceDetachPtIssued', data: { device, deviceFd: a1, ...argsOf(r.argv), outcome: outcome() } };
    case 'close':
      // a name whose open failed: there was no file, so a recorder has no event for it
      if (errno === 'EBADF') return { unexpressed: `close of ${a1}, which was never open (EBADF): no file, no event` };
      if (errno !== null) return { unexpressed: `close failed with ${errno}` };
      switch (str(r, 'kind1')) {
        case 'ictx':
          return { type: 'IommufdClosed', data: { ictx: a1 } };
        case 'devfd':
          return { type: 'VfioDeviceClosed', data: { device, deviceFd: a1 } };
        case 'group':
          return { type: 'VfioGroupClosed', data: { group, groupFd: a1 } };
        case 'container':
          return { type: 'VfioContainerClosed', data: { container: a1 } };
        case 'fault': {
          // the fd IOMMU_FAULT_QUEUE_ALLOC returned (anon_inode:[iommufd-pgfault]): its ctx is the one it was allocated in
          const kind = fdKind.get(a1);
          if (!kind?.startsWith('fault:')) return { unexpressed: `close of ${a1}: a fault fd of no recorded allocation` };
          return { type: 'IommufdEventFdClosed', data: { ictx: kind.slice(6), fd: a1, kind: 'fault' } };
        }
        default:
          return { unexpressed: `close of ${a1}: not a file this scenario opened` };
      }
    case 'ioas':
      return { type: 'IommufdIoasAllocIssued', data: { ictx: a1, outcome: outcome(out('ioasId')) } };
    case 'hwpt': {
      const dataType = HWPT_DATA[num(r, 'dataType') ?? 0];
      if (dataType === undefined) return { unexpressed: `IOMMU_HWPT_ALLOC data_type ${num(r, 'dataType')}: not a type the catalogue knows` };
      return {
        type: 'IommufdHwptAllocIssued',
        data: {
          ictx: a1,
          devId: num(r, 'devId'),
          ptId: num(r, 'ptId'),
          flags: num(r, 'flags') ?? 0,
          ...(dataType !== undefined && dataType !== 'none' ? { dataType } : {}),
          ...(r.argv.some((a) => a.startsWith('fault=')) ? { faultId: num(r, 'faultId') } : {}),
          outcome: outcome(out('hwptId')),
        },
      };
    }
    case 'hw_info': {
      const hwInfo = errno === null ? hwInfoOf(r) : undefined;
      if (errno === null && hwInfo === undefined) return { unexpressed: `GET_HW_INFO type ${num(r, 'type')}: not a type the catalogue knows` };
      return { type: 'IommufdGetHwInfoIssued', data: { ictx: a1, devId: num(r, 'devId'), outcome: outcome(hwInfo ? { hwInfo } : {}) } };
    }
    case 'invalidate': {
      const dataType = INVALIDATE_DATA[num(r, 'dataType') ?? -1];
      if (dataType === undefined) return { unexpressed: `IOMMU_HWPT_INVALIDATE data_type ${num(r, 'dataType')}: not a type the catalogue knows` };
      return {
        type: 'IommufdHwptInvalidateIssued',
        data: { ictx: a1, hwptId: num(r, 'hwptId'), dataType, entryLen: num(r, 'entryLen'), entryNum: num(r, 'entryNum'), outcome: outcome({ entryNum: num(r, 'handled') }) },
      };
    }
    case 'dirty':
      return { type: 'IommufdHwptSetDirtyTrackingIssued', data: { ictx: a1, hwptId: num(r, 'hwptId'), enable: r.argv[3] === 'on', outcome: outcome() } };
    case 'dirty_bitmap': {
      const noClear = ((num(r, 'dirtyFlags') ?? 0) & 1) !== 0;
      return {
        type: 'IommufdHwptGetDirtyBitmapIssued',
        data: {
          ictx: a1,
          hwptId: num(r, 'hwptId'),
          iova: hex(r.argv[3] ?? '0'),
          length: hex(r.argv[4] ?? '0'),
          pageSize: hex(String(num(r, 'pageSize') ?? 4096)),
          ...(noClear ? { noClear } : {}),
          outcome: outcome(),
        },
      };
    }
    case 'fault_queue': {
      const flags = num(r, 'faultFlags') ?? 0;
      const fdName = str(r, 'out');
      if (errno === null && fdName === undefined) return { unexpressed: 'a fault queue allocated without a name: its fd was closed at once' };
      if (fdName !== undefined) fdKind.set(fdName, `fault:${a1}`);
      return { type: 'IommufdFaultQueueAllocIssued', data: { ictx: a1, ...(flags !== 0 ? { flags } : {}), outcome: outcome(errno === null ? { faultId: num(r, 'faultId'), faultFd: fdName } : {}) } };
    }
    case 'destroy':
      return { type: 'IommufdDestroyIssued', data: { ictx: a1, objectId: num(r, 'objectId'), outcome: outcome() } };
    case 'map':
    case 'unmap':
      return {
        type: op === 'map' ? 'IommufdIoasMapIssued' : 'IommufdIoasUnmapIssued',
        data: { ictx: a1, ioasId: num(r, 'ioasId'), iova: hex(r.argv[3] ?? '0'), length: hex(r.argv[4] ?? '0'), outcome: outcome(out(op === 'map' ? 'iova' : 'length')) },
      };
    case 'group':
      return { type: 'VfioGroupOpened', data: { group: num(r, 'group'), groupFd: a1, outcome: outcome() } };
    case 'status':
      return {
        type: 'VfioGroupGetStatusIssued',
        data: { group, groupFd: a1, outcome: outcome(errno === null ? { viable: r.viable, containerSet: r.containerSet } : {}) },
      };
    case 'set_container': {
      const kind = str(r, 'kind2') ?? fdKind.get(a2);
      if (kind !== 'ictx' && kind !== 'container') return { unexpressed: `set_container with ${a2}: neither a container nor an iommufd` };
      return {
        type: 'VfioGroupSetContainerIssued',
        data: { group, groupFd: a1, container: a2, containerKind: kind === 'ictx' ? 'iommufd' : 'legacy', outcome: outcome() },
      };
    }
    case 'unset_container':
      return { type: 'VfioGroupUnsetContainerIssued', data: { group, groupFd: a1, outcome: outcome() } };
    case 'get_device_fd': {
      const fdName = str(r, 'out');
      return {
        type: 'VfioGroupGetDeviceFdIssued',
        data: { group, groupFd: a1, device, outcome: outcome(errno === null ? { deviceFd: fdName } : {}) },
      };
    }
    case 'container':
      return { type: 'VfioContainerOpened', data: { container: a1, outcome: outcome() } };
    case 'set_iommu':
      return { type: 'VfioContainerSetIommuIssued', data: { container: a1, iommuType: a2, outcome: outcome() } };
    default:
      return { unexpressed: `unknown step ${op}` };
  }
};

const PCI_HEADER = ['normal', 'bridge', 'cardbus'] as const;

/** the 6 bytes of a host's event ids that name the host: the start of its name's SHA-256 */
const hostIdBytes = (host: string): Uint8Array => new Uint8Array(createHash('sha256').update(host).digest().subarray(0, 6));

type Building = { -readonly [K in keyof ScenarioHistory]: ScenarioHistory[K] } & {
  seq: number;
  last: bigint;
  /** the host's part of every event id (hostIdBytes) */
  hostBytes: Uint8Array;
  fdDevice: Map<string, string>;
  fdKind: Map<string, string>;
  fdGroup: Map<string, number>;
  selftest: SelftestIds;
};

const snapshotData = (b: BeginRecord, machine: Machine, hwInfo: ReadonlyMap<string, Data> = new Map()): Data => ({
  capabilities: {
    iommu: b.groups.length > 0,
    interruptRemapping: machine.capabilities.interruptRemapping,
    allowUnsafeInterrupts: machine.capabilities.allowUnsafeInterrupts,
    kernelRelease: b.release,
  },
  groups: b.groups
    .map((g) => ({ group: g.group, devices: [...g.devices].sort(), defaultDomainType: DOMAIN_TYPES.has(g.type) ? g.type : 'unknown' }))
    .sort((x, y) => x.group - y.group),
  devices: b.devices
    .map((d) => ({
      device: d.device,
      vendorId: d.vendor,
      deviceId: d.deviceId,
      classCode: d.class,
      driver: d.driver,
      group: d.group < 0 ? null : d.group,
      headerType: PCI_HEADER[d.headerType] ?? 'normal',
      ...(d.cdev ? { cdev: d.cdev } : {}),
      ...(hwInfo.has(d.device) ? { hwInfo: hwInfo.get(d.device) } : {}),
    }))
    .sort((x, y) => (x.device < y.device ? -1 : 1)),
});

/** iommu trace lines the catalogue keeps; every other line is counted and dropped by name */
const SELFTEST_MOCK_DEVICE = /^iommufd_mock\d+$/;
const TRACE = /\b(attach_device_to_domain|add_device_to_group|remove_device_from_group): IOMMU: (?:groupID=(\d+) )?device=(\S+)/;

/**
 * The records of one boot → one history per scenario, on its own host (`oracle-<machine>-<scenario>`), as
 * a VMM recording its own calls (source `vmm`; trace lines as `ftrace`). Ids are UUIDv7 minted from the
 * guest's clock and a per-host counter, so the same records give the same events.
 */
export const toHistories = (machine: Machine, records: readonly GuestRecord[]): ScenarioHistory[] => {
  const out: Building[] = [];
  let cur: Building | null = null;
  const hwInfo = hwInfoByScenario(records);
  const random = new Uint8Array(16);
  const push = (type: EventType, data: Data, source: 'vmm' | 'ftrace', realNs: bigint, monoNs: bigint | null, labels?: string[]): boolean => {
    if (!cur) return false;
    cur.seq += 1;
    // strictly increasing time per host, even when the guest clock did not tick between two records
    cur.last = realNs > cur.last ? realNs : cur.last + 1n;
    // uuid's v7 takes its 32-bit counter from random[6..9] and the id's last 6 bytes from random[10..15]
    // (random[0..5] go nowhere): the host's seq there, and the host's own bytes, so every event has its own id
    random.fill(0);
    new DataView(random.buffer).setUint32(6, cur.seq);
    random.set(cur.hostBytes, 10);
    const event = {
      id: uuidv7({ msecs: Number(cur.last / 1_000_000n), random }),
      type,
      schemaVersion: currentVersionOf(type),
      host: cur.host,
      seq: cur.seq,
      time: cur.last.toString(),
      ...(monoNs !== null ? { monoNs: monoNs.toString() } : {}),
      source,
      ...(labels && labels.length > 0 ? { labels } : {}),
      data,
    };
    const parsed = parseEvent(event, `${cur.scenario}#${cur.seq}`);
    if (parsed.ok) cur.events.push(parsed.value);
    else {
      cur.seq -= 1;
      cur.unexpressed.push({ scenario: cur.scenario, line: -1, step: type, reason: `not a valid ${type}: ${parsed.error.message}` });
    }
    return parsed.ok;
  };
  for (const r of records) {
    switch (r.t) {
      case 'begin': {
        cur = {
          machine: machine.name,
          scenario: r.scenario,
          host: `oracle-${machine.name}-${r.scenario}`,
          kernelRelease: r.release,
          events: [],
          steps: 0,
          operations: 0,
          errnos: 0,
          traces: 0,
          unexpressed: [],
          complete: false,
          seq: 0,
          last: 0n,
          hostBytes: hostIdBytes(`oracle-${machine.name}-${r.scenario}`),
          fdDevice: new Map(),
          fdKind: new Map(),
          fdGroup: new Map(),
          selftest: new Set(),
        };
        out.push(cur);
        push('TopologySnapshotTaken', snapshotData(r, machine, hwInfo.get(r.scenario)), 'vmm', BigInt(r.real), BigInt(r.mono));
        break;
      }
      case 'op': {
        if (!cur) break;
        cur.steps += 1;
        const errno = r.errno === 0 ? null : (ERRNO_BY_NUMBER.get(r.errno) ?? null);
        if (r.errno !== 0 && errno === null) {
          cur.unexpressed.push({ scenario: cur.scenario, line: r.line, step: r.argv.join(' '), reason: `errno ${r.errno} is not in the catalogue's errno list` });
          break;
        }
        const c = convertStep(r, errno, cur.fdDevice, cur.fdKind, cur.fdGroup, cur.selftest);
        if ('unexpressed' in c) {
          cur.unexpressed.push({ scenario: cur.scenario, line: r.line, step: r.argv.join(' '), reason: c.unexpressed });
          break;
        }
        const labels = [`scenario:${cur.scenario}`, `line:${r.line}`, ...(r.mistake ? ['mistake'] : [])];
        for (const e of 'events' in c ? c.events : [c]) {
          if (!push(e.type, e.data, 'vmm', BigInt(r.real), BigInt(r.mono), labels)) break;
          if (!OPERATION_TYPES.has(e.type)) continue;
          cur.operations += 1;
          if (errno !== null) cur.errnos += 1;
        }
        break;
      }
      case 'trace': {
        // lines between a scenario's end and the next begin came from restoring the drivers: no history's
        if (!cur || cur.complete) break;
        const m = TRACE.exec(r.line);
        // the kernel's selftest mock devices (iommufd_mockN) are no PCI function: the collector ignores them by name too
        if (!m || SELFTEST_MOCK_DEVICE.test(m[3]!)) break;
        cur.traces += 1;
        const line = r.line.trim().slice(0, 4096);
        if (m[1] === 'attach_device_to_domain') push('TraceAttachDeviceToDomain', { device: m[3], line }, 'ftrace', cur.last, null);
        else push(m[1] === 'add_device_to_group' ? 'TraceAddDeviceToGroup' : 'TraceRemoveDeviceFromGroup', { group: Number(m[2]), device: m[3], line }, 'ftrace', cur.last, null);
        break;
      }
      case 'end':
        if (cur && cur.scenario === r.scenario) cur.complete = true;
        break;
      default:
        break;
    }
  }
  return out.map(({ seq: _seq, last: _last, hostBytes: _host, fdDevice: _fds, fdKind: _kinds, fdGroup: _groups, selftest: _selftest, ...h }): ScenarioHistory => h);
};
