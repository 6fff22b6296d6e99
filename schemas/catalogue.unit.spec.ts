import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  EVENT_TYPES,
  OPERATION_TYPES,
  createEventBuilder,
  currentVersionOf,
  eventMetaOf,
  normalizePciAddress,
  parseEvent,
  parseEventJson,
  parseEvents,
  type EventOfType,
  type EventType,
  type IommuEvent,
} from './index.js';
import { INVALID_DATA, VALID_DATA } from './testing/examples.js';

const builder = () => createEventBuilder({ host: 'h12', source: 'collector' });

describe('event catalogue', () => {
  it('has a valid and an invalid example for every event type', () => {
    expect(Object.keys(VALID_DATA).sort()).toEqual([...EVENT_TYPES].sort());
    expect(Object.keys(INVALID_DATA).sort()).toEqual([...EVENT_TYPES].sort());
  });

  describe.each(EVENT_TYPES)('%s', (type) => {
    it('given a valid example, when parsed, then it is accepted as that type', () => {
      const raw = builder().raw(type, VALID_DATA[type] as never);
      const r = parseEvent(raw);
      if (!r.ok) throw r.error;
      expect(r.value.type).toBe(type);
      expect(r.value.schemaVersion).toBe(currentVersionOf(type));
    });

    it('given a broken example, when parsed, then the error names the offending field', () => {
      const raw = { ...builder().raw(type, VALID_DATA[type] as never), data: INVALID_DATA[type].data };
      const r = parseEvent(raw, 'events[3]');
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.issues.map((i) => i.path)).toContain(`events[3].${INVALID_DATA[type].path}`);
      expect(r.error.kind).toBe('validation');
    });
  });

  it('records an outcome on every operation event except closes', () => {
    for (const type of OPERATION_TYPES) {
      const data = VALID_DATA[type] as Record<string, unknown>;
      const isClose = type.endsWith('Closed') || type === 'DriverBound' || type === 'DriverUnbound' || type === 'DriverBindRefused' || type === 'DriverUnbindRefused';
      if (!isClose) expect(data, type).toHaveProperty('outcome');
    }
  });
});

describe('identifiers', () => {
  it('normalises the short PCI form to domain 0000 and lower case', () => {
    expect(normalizePciAddress('01:00.0')).toBe('0000:01:00.0');
    expect(normalizePciAddress('0000:AF:1F.7')).toBe('0000:af:1f.7');
    expect(normalizePciAddress('10000:00:02.0')).toBe('10000:00:02.0');
    expect(normalizePciAddress('1:0.0x')).toBeUndefined();
    expect(normalizePciAddress('0000:01:00.8')).toBeUndefined();
    expect(normalizePciAddress('0000:01:20.0')).toBeUndefined();
  });

  it('names the field and the value of a bad PCI address as the issue asks', () => {
    const raw = builder().raw('DriverBound', { device: '1:0.0x', driver: 'vfio-pci' });
    const r = parseEvents([raw, raw, raw, raw], 'events');
    expect(r.rejected).toHaveLength(4);
    expect(r.rejected[3]!.error.message).toBe('events[3].data.device: expected a PCI address like 0000:01:00.0 or an mdev UUID, got "1:0.0x"');
  });

  it('accepts mdev UUIDs as device names', () => {
    const r = parseEvent(builder().raw('DriverBound', { device: '83B8F4F2-509F-382F-3C1E-E6BFE0FA1001', driver: 'vfio_mdev' }));
    expect(r.ok && r.value.type === 'DriverBound' && r.value.data.device).toBe('83b8f4f2-509f-382f-3c1e-e6bfe0fa1001');
  });

  it('keeps nanosecond times exact as strings', () => {
    const e = builder().event('DriverBound', { device: '03:00.0', driver: 'vfio-pci' }, { atNs: 1_732_400_000_123_456_789n });
    expect(e.time).toBe('1732400000123456789');
    expect(BigInt(e.time)).toBe(1_732_400_000_123_456_789n);
  });

  it('accepts a ULID as event id and rejects other ids', () => {
    const raw = builder().raw('IommufdClosed', { ictx: '4242:5' });
    expect(parseEvent({ ...raw, id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }).ok).toBe(true);
    const bad = parseEvent({ ...raw, id: '550e8400-e29b-41d4-a716-446655440000' }, 'e');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error.issues[0]!.path).toBe('e.id');
  });
});

describe('strictness', () => {
  it('issue 21: a misspelt event type gets a "did you mean" naming the nearest catalogue type', () => {
    const r = parseEvent({ ...builder().raw('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }), type: 'DriverBund' }, 'events[0]');
    expect(!r.ok && r.error.message).toBe('events[0].type: unknown event type "DriverBund"; did you mean "DriverBound"?');
    const lower = parseEvent({ ...builder().raw('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }), type: 'vfiodeviceopened' }, 'events[0]');
    expect(!lower.ok && lower.error.message).toContain('did you mean "VfioDeviceOpened"?');
  });

  it('rejects unknown event types by name', () => {
    const r = parseEvent({ ...builder().raw('IommufdClosed', { ictx: 'a' }), type: 'IommufdExploded' }, 'events[0]');
    expect(!r.ok && r.error.message).toBe('events[0].type: unknown event type "IommufdExploded"');
  });

  it('rejects extra fields in the envelope and in data', () => {
    const raw = builder().raw('IommufdClosed', { ictx: 'a' }) as Record<string, unknown>;
    const r = parseEvent({ ...raw, colour: 'red', data: { ictx: 'a', extra: 1 } }, 'x');
    expect(!r.ok && r.error.issues.map((i) => i.path).sort()).toEqual(['x.colour', 'x.data.extra']);
  });

  it('rejects a schema version newer than the build knows', () => {
    const raw = builder().raw('IommufdClosed', { ictx: 'a' }) as Record<string, unknown>;
    const r = parseEvent({ ...raw, schemaVersion: 9 });
    expect(!r.ok && r.error.issues[0]!.path).toBe('schemaVersion');
  });

  it('names JSON syntax errors with the line path', () => {
    const r = parseEventJson('{"type": ', 'history.jsonl:7');
    expect(!r.ok && r.error.issues[0]!.path).toBe('history.jsonl:7');
  });

  it('never throws, whatever the input (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseEvent(v);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on mutated valid events either (property)', () => {
    const raws = EVENT_TYPES.map((t) => builder().raw(t, VALID_DATA[t] as never));
    fc.assert(
      fc.property(fc.constantFrom(...raws), fc.string(), fc.jsonValue(), (raw, key, value) => {
        const mutated = { ...(raw as Record<string, unknown>), data: { ...((raw as { data: object }).data), [key]: value } };
        expect(typeof parseEvent(mutated).ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });
});

describe('versioning', () => {
  it('given a v1 VfioDeviceAttachPtIssued (ioasId/hwptId), when read, then it is upcast to v2 (ptId in, ptId out)', () => {
    const raw = builder().raw('IommufdClosed', { ictx: 'a' }) as Record<string, unknown>;
    const v1 = { ...raw, type: 'VfioDeviceAttachPtIssued', schemaVersion: 1, data: { device: '01:00.0', deviceFd: '4242:7', ioasId: 2, outcome: { ok: true, hwptId: 3 } } };
    const r = parseEvent(v1);
    if (!r.ok) throw r.error;
    expect(r.value).toMatchObject({ schemaVersion: 2, data: { device: '0000:01:00.0', ptId: 2, outcome: { ok: true, ptId: 3 } } });
    const failed = parseEvent({ ...v1, data: { ...v1.data, outcome: { ok: false, errno: 'EINVAL' } } });
    expect(failed.ok && failed.value.data).toMatchObject({ outcome: { ok: false, errno: 'EINVAL' } });
  });

  it('names a malformed old version as such', () => {
    const raw = builder().raw('IommufdClosed', { ictx: 'a' }) as Record<string, unknown>;
    const r = parseEvent({ ...raw, type: 'VfioDeviceAttachPtIssued', schemaVersion: 1, data: { device: '01:00.0', deviceFd: '4242:7', ptId: 2, outcome: { ok: true, ptId: 3 } } }, 'e');
    expect(!r.ok && r.error.message).toMatch(/as VfioDeviceAttachPtIssued v1/);
  });
});

describe('issue 19: what newer kernels distinguish', () => {
  const at = (type: EventType, data: Record<string, unknown>, schemaVersion = 1): unknown => ({ ...(builder().raw('IommufdClosed', { ictx: 'a' }) as object), type, schemaVersion, data });

  it('issue 19: a close records how it returned (EBADF of a close on a handle not open), and a close recorded without one still reads as before', () => {
    for (const [type, data] of [
      ['VfioDeviceClosed', { device: '0000:03:00.0', deviceFd: '4242:7' }],
      ['IommufdClosed', { ictx: '4242:5' }],
      ['VfioGroupClosed', { group: 12, groupFd: '5151:3' }],
      ['VfioContainerClosed', { container: '5151:4' }],
    ] as const) {
      const old = parseEvent(at(type, data));
      expect(old.ok && old.value.data, type).toEqual(type === 'VfioDeviceClosed' ? { ...data, device: '0000:03:00.0' } : data);
      const refused = parseEvent(at(type, { ...data, outcome: { ok: false, errno: 'EBADF' } }));
      expect(refused.ok && refused.value.data, type).toMatchObject({ outcome: { ok: false, errno: 'EBADF' } });
    }
  });

  it('issue 19: a refused unbind (unbind_store: -ENODEV, the device is not bound to that driver) is an event of its own', () => {
    const r = parseEvent(at('DriverUnbindRefused', { device: '01:00.1', driver: 'snd_hda_intel', errno: 'ENODEV' }));
    expect(r.ok && r.value.data).toEqual({ device: '0000:01:00.1', driver: 'snd_hda_intel', errno: 'ENODEV' });
    expect(OPERATION_TYPES.has('DriverUnbindRefused')).toBe(true);
  });

  it('issue 19: a bind records the raw iommufd fd number (even -1) and that a VF token was passed, never the token', () => {
    const r = parseEvent(
      at('VfioDeviceBindIommufdIssued', { device: '0000:03:00.0', deviceFd: '4242:7', ictx: 'fd-negative', badFd: 'negative', iommufdFd: -1, vfToken: true, args: { flags: 1 }, outcome: { ok: false, errno: 'EINVAL' } }),
    );
    expect(r.ok && r.value.data).toMatchObject({ iommufdFd: -1, vfToken: true, args: { flags: 1 } });
    const tooBig = parseEvent(at('VfioDeviceBindIommufdIssued', { device: '0000:03:00.0', deviceFd: '4242:7', ictx: 'x', iommufdFd: 2 ** 31, outcome: { ok: true, devId: 1 } }), 'e');
    expect(!tooBig.ok && tooBig.error.message).toBe('e.data.iommufdFd: an fd number is a 32-bit signed integer: at most 2147483647');
    // the token is a shared secret: there is no field that could carry it
    const withUuid = parseEvent(at('VfioDeviceBindIommufdIssued', { device: '0000:03:00.0', deviceFd: '4242:7', ictx: 'x', vfToken: true, tokenUuid: '4f2a1c3e-0000-0000-0000-000000000000', outcome: { ok: true, devId: 1 } }), 'e');
    expect(!withUuid.ok && withUuid.error.issues.map((i) => i.path)).toEqual(['e.data.tokenUuid']);
  });

  it('issue 19: SET_CONTAINER records the raw fd and a file that is neither a container nor an iommufd (-EBADFD)', () => {
    const r = parseEvent(at('VfioGroupSetContainerIssued', { group: 7, groupFd: '5151:3', container: 'dev-null', containerKind: 'legacy', containerFd: 9, badFd: 'not-iommufd', outcome: { ok: false, errno: 'EBADFD' } }));
    expect(r.ok && r.value.data).toMatchObject({ containerFd: 9, badFd: 'not-iommufd' });
  });

  it('issue 19: events stored before these fields existed read unchanged (same version, every new field optional)', () => {
    const stored = [
      at('VfioDeviceBindIommufdIssued', { device: '0000:03:00.0', deviceFd: '4242:7', ictx: '4242:5', outcome: { ok: true, devId: 1 } }),
      at('IommufdHwptAllocIssued', { ictx: '4242:5', devId: 1, ptId: 2, flags: 0, outcome: { ok: true, hwptId: 6 } }),
      at('VfioGroupSetContainerIssued', { group: 7, groupFd: '5151:3', container: '5151:4', containerKind: 'legacy', outcome: { ok: true } }),
      at('TraceAttachDeviceToDomain', { device: '0000:01:00.0' }),
      at('VfioDeviceOpened', { device: '0000:03:00.0', deviceFd: '4242:7', cdev: 'vfio0', outcome: { ok: true } }),
    ] as { data: unknown }[];
    for (const raw of stored) {
      const r = parseEvent(raw);
      if (!r.ok) throw r.error;
      expect(r.value.schemaVersion).toBe(1);
      expect(r.value.data).toEqual(raw.data);
    }
  });

  it('issue 19: a nested hwpt records data_type, data_len and fault_id of struct iommu_hwpt_alloc', () => {
    const r = parseEvent(at('IommufdHwptAllocIssued', { ictx: '4242:5', devId: 1, ptId: 9, flags: 4, dataType: 'arm-smmuv3', dataLen: 8, faultId: 8, outcome: { ok: false, errno: 'EOPNOTSUPP' } }));
    expect(r.ok && r.value.data).toMatchObject({ dataType: 'arm-smmuv3', dataLen: 8, faultId: 8 });
  });

  it('issue 19 (7.3): noiommu-vfioN cdev names are accepted on open and in the topology, other names still refused', () => {
    const opened = parseEvent(at('VfioDeviceOpened', { device: '0000:03:00.0', deviceFd: '4242:7', cdev: 'noiommu-vfio0', outcome: { ok: true } }));
    expect(opened.ok && opened.value.data).toMatchObject({ cdev: 'noiommu-vfio0' });
    const snapshot = { ...VALID_DATA.TopologySnapshotTaken, devices: [{ device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: null, cdev: 'noiommu-vfio3' }] };
    expect(parseEvent(at('TopologySnapshotTaken', snapshot)).ok).toBe(true);
    const bad = parseEvent(at('VfioDeviceOpened', { device: '0000:03:00.0', deviceFd: '4242:7', cdev: 'noiommu-vfio', outcome: { ok: true } }), 'e');
    expect(!bad.ok && bad.error.message).toBe('e.data.cdev: expected a VFIO cdev name such as vfio3 or noiommu-vfio3, got "noiommu-vfio"');
  });

  it('issue 19: GET_HW_INFO capabilities feed the topology snapshot per device', () => {
    const hwInfo = { type: 'arm-smmuv3', capabilities: ['dirty-tracking', 'pci-ats-not-supported'], maxPasidLog2: 0 };
    const snapshot = { ...VALID_DATA.TopologySnapshotTaken, devices: [{ device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: 12, hwInfo }] };
    const r = parseEvent(at('TopologySnapshotTaken', snapshot));
    expect(r.ok && r.value.type === 'TopologySnapshotTaken' && r.value.data.devices[0]!.hwInfo).toEqual(hwInfo);
  });

  it('issue 19: a page response of the wrong size records -ESPIPE (iommufd_fault_fops_write)', () => {
    const r = parseEvent(at('IommufdPageResponseWritten', { faultFd: '4242:11', cookie: 17, code: 'success', outcome: { ok: false, errno: 'ESPIPE' } }));
    expect(r.ok && r.value.data).toMatchObject({ outcome: { ok: false, errno: 'ESPIPE' } });
  });

  it('issue 19: every operation added since 6.6 names the release it needs', () => {
    const added = ['IommufdPageFaultRead', 'IommufdPageResponseWritten', 'IommufdGetHwInfoIssued', 'IommufdHwptInvalidateIssued', 'IommufdHwptSetDirtyTrackingIssued', 'IommufdHwptGetDirtyBitmapIssued', 'IommufdFaultQueueAllocIssued', 'IommufdViommuAllocIssued', 'IommufdVdeviceAllocIssued', 'IommufdVeventqAllocIssued', 'IommufdVeventRead', 'IommufdHwQueueAllocIssued', 'IommufdIoasMapFileIssued', 'IommufdIoasChangeProcessIssued', 'IommufdIoasGetPaIssued', 'VfioDeviceDmaBufCreated', 'VfioDeviceDmaBufRevoked', 'TraceDeviceResetFence', 'TraceCacheTag'] as const;
    expect(Object.fromEntries(added.map((t) => [t, eventMetaOf(t).since]))).toEqual({
      IommufdPageFaultRead: '6.11',
      IommufdPageResponseWritten: '6.11',
      IommufdGetHwInfoIssued: '6.6',
      IommufdHwptInvalidateIssued: '6.8',
      IommufdHwptSetDirtyTrackingIssued: '6.7',
      IommufdHwptGetDirtyBitmapIssued: '6.7',
      IommufdFaultQueueAllocIssued: '6.11',
      IommufdViommuAllocIssued: '6.13',
      IommufdVdeviceAllocIssued: '6.13',
      IommufdVeventqAllocIssued: '6.15',
      IommufdVeventRead: '6.15',
      IommufdHwQueueAllocIssued: '6.17',
      IommufdIoasMapFileIssued: '6.13',
      IommufdIoasChangeProcessIssued: '6.13',
      IommufdIoasGetPaIssued: '7.3',
      VfioDeviceDmaBufCreated: '6.19',
      VfioDeviceDmaBufRevoked: '6.19',
      TraceDeviceResetFence: '7.0',
      TraceCacheTag: '6.10',
    });
  });
});

describe('types', () => {
  it('infers event data from the schema', () => {
    expectTypeOf<EventOfType<'VfioDeviceBindIommufdIssued'>['data']['ictx']>().toExtend<string>();
    expectTypeOf<IommuEvent['type']>().toExtend<string>();
    expectTypeOf<Extract<EventOfType<'VfioDeviceBindIommufdIssued'>['data']['outcome'], { ok: true }>['devId']>().toEqualTypeOf<number>();
  });
});
