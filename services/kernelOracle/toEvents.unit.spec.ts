import { describe, expect, it } from 'vitest';
import type { GuestRecord } from './guestRecords.js';
import { toHistories } from './toEvents.js';
import { loadTopologies } from './topologies.js';

const machine = loadTopologies().machines.find((m) => m.name === 'vtd')!;
const DEV = '0000:01:02.0';
const begin: GuestRecord = {
  t: 'begin',
  scenario: 'hp',
  release: '6.12.118',
  cmdline: '',
  real: 1e18,
  mono: 1e9,
  groups: [{ group: 2, type: 'DMA', devices: [DEV] }],
  devices: [{ device: DEV, vendor: '0x8086', deviceId: '0x100e', class: '0x020000', headerType: 0, group: 2, driver: 'e1000', cdev: null }],
};
const op = (line: number, argv: string[], extra: Record<string, unknown>): GuestRecord => ({ t: 'op', line, mistake: false, mono: 1e9 + line, real: 1e18 + line, argv, errno: 0, ...extra });
const typesOf = (records: GuestRecord[]) => {
  const [h] = toHistories(machine, [begin, ...records, { t: 'end', scenario: 'hp', ops: records.length }]);
  return { events: h!.events.slice(1).map((e) => `${e.type} ${JSON.stringify(e.data)}`), operations: h!.operations, unexpressed: h!.unexpressed.map((u) => u.reason) };
};

describe('kernel oracle > remove and rescan steps as catalogue events', () => {
  it('given a remove of a device bound to a driver, when converted, then the collector-visible unbind comes before the removal from its group, and only the unbind counts as an operation', () => {
    expect(typesOf([op(1, ['remove', '$br2'], { device: DEV, group: 2, driver: 'e1000' })])).toEqual({
      events: [`DriverUnbound {"device":"${DEV}","driver":"e1000"}`, `DeviceRemovedFromGroup {"device":"${DEV}","group":2}`],
      operations: 1,
      unexpressed: [],
    });
  });

  it('given a rescan that re-added nothing of the scenario, or a remove the kernel refused, when converted, then each is named as having no event, never dropped silently', () => {
    expect(typesOf([op(1, ['rescan'], { added: [] }), { ...(op(2, ['remove', '$br2'], { device: DEV, group: 2, driver: null }) as object), errno: 2 } as GuestRecord]).unexpressed).toEqual([
      'rescan added no device of the scenario: nothing to record',
      'remove failed with ENOENT: DeviceRemovedFromGroup has no outcome',
    ]);
  });
});

describe('kernel oracle > iommufd 6.7–6.11 steps and CONFIG_IOMMUFD_TEST mock devices', () => {
  const ictx = (line: number, argv: string[], extra: Record<string, unknown>, errno = 0): GuestRecord => ({ ...(op(line, argv, extra) as object), errno } as GuestRecord);
  it('given a GET_HW_INFO of a bound device, when converted, then the event carries the type and capability bits, and the snapshot the device\'s hwInfo', () => {
    const records = [op(1, ['bind_iommufd', 'd', 'ctx'], { out: 'dev', devId: 1, dev1: DEV }), op(2, ['hw_info', 'ctx', 'dev'], { devId: 1, type: 1, capabilities: 1, maxPasidLog2: 0 })];
    const [h] = toHistories(machine, [begin, ...records, { t: 'end', scenario: 'hp', ops: 2 }]);
    const snapshot = h!.events[0]!;
    expect(snapshot.type === 'TopologySnapshotTaken' && snapshot.data.devices.find((d) => d.device === DEV)?.hwInfo).toEqual({ type: 'intel-vtd', capabilities: ['dirty-tracking'], maxPasidLog2: 0 });
    expect(h!.events.at(-1)).toMatchObject({ type: 'IommufdGetHwInfoIssued', data: { ictx: 'ctx', devId: 1, outcome: { ok: true, hwInfo: { type: 'intel-vtd' } } } });
  });

  it('given a mock device and the hwpts allocated for it, when converted, then each is named as a selftest object, and a fault queue, its fd\'s close and a destroy of a reused id are events', () => {
    const got = typesOf([
      op(1, ['mock', 'ctx', 'ioas'], { out: 'm', stdevId: 2, devId: 3, hwptId: 4, ptId: 1 }),
      op(2, ['hwpt', 'ctx', 'm', 'ioas', 'flags=1'], { out: 'p', hwptId: 5, devId: 3, ptId: 1, flags: 1, dataType: 0, faultId: 0 }),
      op(3, ['destroy', 'ctx', 'p'], { objectId: 5 }),
      op(4, ['fault_queue', 'ctx'], { out: 'fq', faultId: 5, faultFlags: 0 }),
      ictx(5, ['destroy', 'ctx', 'fq'], { objectId: 5, kind2: 'fault' }, 16),
      op(6, ['close', 'fq'], { kind1: 'fault' }),
    ]);
    expect(got.unexpressed).toEqual([
      'selftest mock object: IOMMU_TEST_OP_MOCK_DOMAIN creates a kernel test device no VMM records',
      "selftest mock object: hwpt names the mock's devId",
      "selftest mock object: destroy names the mock's objectId",
    ]);
    expect(got.events).toEqual([
      'IommufdFaultQueueAllocIssued {"ictx":"ctx","outcome":{"faultFd":"fq","faultId":5,"ok":true}}',
      'IommufdDestroyIssued {"ictx":"ctx","objectId":5,"outcome":{"errno":"EBUSY","ok":false}}',
      'IommufdEventFdClosed {"fd":"fq","ictx":"ctx","kind":"fault"}',
    ]);
  });

  it('kernel oracle mock #7: given a kernel without iommufd (6.1), where no mock device was made, when a step passes the selftest data types, then it is named as a selftest step, not as an unknown type', () => {
    const got = typesOf([
      ictx(1, ['mock', 'ctx', 'ioas'], { out: 'm', ptId: 0 }, 9),
      ictx(2, ['hwpt', 'ctx', 'm', 'parent', 'data=selftest'], { devId: 0, ptId: 0, flags: 0, dataType: 0xdead, faultId: 0 }, 9),
      ictx(3, ['invalidate', 'ctx', 'nested', 'data=selftest'], { handled: 0, hwptId: 0, dataType: 0xdeadbeef, entryLen: 8, entryNum: 1 }, 9),
    ]);
    expect(got.unexpressed).toEqual([
      'selftest mock object: IOMMU_TEST_OP_MOCK_DOMAIN creates a kernel test device no VMM records',
      'selftest mock object: hwpt passes the selftest data type',
      'selftest mock object: invalidate passes the selftest data type',
    ]);
  });

  it('kernel oracle mock #9: given a nested hwpt allocated for the mock with selftest data, when a later step names it, then that step is a selftest step too (was: its id was not kept, and the model judged a call on an object it never saw)', () => {
    const got = typesOf([
      op(1, ['mock', 'ctx', 'ioas'], { out: 'm', stdevId: 2, devId: 3, hwptId: 4, ptId: 1 }),
      op(2, ['hwpt', 'ctx', 'm', 'ioas', 'flags=1'], { out: 'p', hwptId: 5, devId: 3, ptId: 1, flags: 1, dataType: 0, faultId: 0 }),
      op(3, ['hwpt', 'ctx', 'm', 'p', 'data=selftest'], { out: 'n', hwptId: 6, devId: 3, ptId: 5, flags: 0, dataType: 0xdead, faultId: 0 }),
      ictx(4, ['invalidate', 'ctx', 'n', 'data=vtd'], { handled: 0, hwptId: 6, dataType: 0, entryLen: 24, entryNum: 1 }, 22),
    ]);
    expect(got.events).toEqual([]);
    expect(got.unexpressed.at(-1)).toBe("selftest mock object: invalidate names the mock's hwptId");
  });
});

describe('kernel oracle > one history per scenario: ids and names', () => {
  const failed = (line: number, argv: string[], extra: Record<string, unknown>, errno: number): GuestRecord => ({ ...(op(line, argv, extra) as object), errno } as GuestRecord);

  it('oracle16 #16: given several steps the guest ran within one millisecond, when converted, then every event has its own id (was: the per-host counter sat in bytes UUIDv7 does not use, so steps of one millisecond shared an id and a divergence was shown at another step\'s line)', () => {
    // the guest's clock: 1e18 + line ns, so every step here falls in the same millisecond
    const records = [op(1, ['iommufd', 'ctx'], {}), op(2, ['iommufd', 'ctx2'], {}), op(3, ['close', 'ctx2'], { kind1: 'ictx' }), op(4, ['close', 'ctx'], { kind1: 'ictx' })];
    const [h] = toHistories(machine, [begin, ...records, { t: 'end', scenario: 'hp', ops: records.length }]);
    const ids = h!.events.map((e) => e.id);
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(ids.length);
    // and another host's history of the same steps has ids of its own
    const [other] = toHistories({ ...machine, name: 'vtd-pt' }, [begin, ...records, { t: 'end', scenario: 'hp', ops: records.length }]);
    expect(other!.events.map((e) => e.id).filter((id) => ids.includes(id))).toEqual([]);
  });

  it('oracle16 #16: given a group node whose open failed, when a later step calls on the name, then it is the VFIO call on that group with its errno, not an invalid event', () => {
    const got = typesOf([failed(1, ['group', 'g', '$br2'], { group: 2 }, 16), failed(2, ['status', 'g'], {}, 9), failed(3, ['get_device_fd', 'g', '$br2'], { out: 'd', device: DEV }, 9)]);
    expect(got.unexpressed).toEqual([]);
    expect(got.events).toEqual([
      'VfioGroupOpened {"group":2,"groupFd":"g","outcome":{"errno":"EBUSY","ok":false}}',
      'VfioGroupGetStatusIssued {"group":2,"groupFd":"g","outcome":{"errno":"EBADF","ok":false}}',
      `VfioGroupGetDeviceFdIssued {"device":"${DEV}","group":2,"groupFd":"g","outcome":{"errno":"EBADF","ok":false}}`,
    ]);
  });
});
