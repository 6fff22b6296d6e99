import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  EVENT_TYPES,
  OPERATION_TYPES,
  createEventBuilder,
  currentVersionOf,
  normalizePciAddress,
  parseEvent,
  parseEventJson,
  parseEvents,
  type EventOfType,
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
      const isClose = type.endsWith('Closed') || type === 'DriverBound' || type === 'DriverUnbound' || type === 'DriverBindRefused';
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

describe('types', () => {
  it('infers event data from the schema', () => {
    expectTypeOf<EventOfType<'VfioDeviceBindIommufdIssued'>['data']['ictx']>().toExtend<string>();
    expectTypeOf<IommuEvent['type']>().toExtend<string>();
    expectTypeOf<Extract<EventOfType<'VfioDeviceBindIommufdIssued'>['data']['outcome'], { ok: true }>['devId']>().toEqualTypeOf<number>();
  });
});
