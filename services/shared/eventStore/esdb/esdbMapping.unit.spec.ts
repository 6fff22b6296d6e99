import { describe, expect, it } from 'vitest';
import { createEventBuilder, isValidationError } from '../../../../schemas/index.js';
import { fromEsdbRecord, indexStream, isUserRecord, linkEventId, toEsdbEvent, toEsdbEventId } from './esdbMapping.js';

const b = createEventBuilder({ host: 'node-a' });
const event = b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' }, { correlationId: 'c-1' });

describe('esdb mapping', () => {
  it('given a catalogue event, when mapped to ESDB and back, then the same event returns with its positions', () => {
    const out = toEsdbEvent(event);
    expect(out).toMatchObject({ id: event.id, type: 'DriverBound', metadata: { host: 'node-a', schemaVersion: 1, $correlationId: 'c-1' } });
    const back = fromEsdbRecord({ streamId: 'host-node-a', id: out.id, revision: 4n, type: out.type, data: JSON.parse(JSON.stringify(out.data)), position: { commit: 900n, prepare: 900n } });
    expect(back).toEqual({ event, streamName: 'host-node-a', streamPosition: 4n, globalPosition: 900n });
  });

  it('given a ULID event id, when mapped, then it becomes the UUID of the same 128 bits', () => {
    // the ULID spec's example and its widely published UUID form
    expect(toEsdbEventId('01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBe('01563e3a-b5d3-d676-4c61-efb99302bd5b');
    expect(toEsdbEventId('00000000000000000000000001')).toBe('00000000-0000-0000-0000-000000000001');
    expect(toEsdbEventId('7ZZZZZZZZZZZZZZZZZZZZZZZZZ')).toBe('ffffffff-ffff-ffff-ffff-ffffffffffff');
    expect(() => toEsdbEventId('not-an-id')).toThrow(/neither a UUID nor a ULID/);
  });

  it('given a record whose data fails the catalogue, when read, then a validation error names the record and field', () => {
    const data = { ...JSON.parse(JSON.stringify(event)), data: { device: 'nope', driver: 'vfio-pci' } };
    let error: unknown;
    try {
      fromEsdbRecord({ streamId: 'host-node-a', id: event.id, revision: 0n, type: 'DriverBound', data });
    } catch (e) {
      error = e;
    }
    expect(isValidationError(error)).toBe(true);
    expect((error as Error).message).toMatch(/esdb host-node-a@0\.data\.device/);
  });

  it('given a record whose ESDB id differs from the event id, when read, then it is rejected', () => {
    expect(() =>
      fromEsdbRecord({ streamId: 'host-node-a', id: '00000000-0000-7000-8000-000000000000', revision: 0n, type: 'DriverBound', data: JSON.parse(JSON.stringify(event)) }),
    ).toThrow(/does not match the event id/);
  });

  it('given index keys, when linking, then link ids are deterministic per event and index stream', () => {
    const s = indexStream('node-a', 'g:7');
    expect(linkEventId(event.id, s)).toBe(linkEventId(event.id, s));
    expect(linkEventId(event.id, s)).not.toBe(linkEventId(event.id, indexStream('node-a', 'g:8')));
  });

  it('given system, internal and user records, when filtering $all, then only user records pass', () => {
    expect(isUserRecord('host-a', 'DriverBound')).toBe(true);
    expect(isUserRecord('$stats-0', 'x')).toBe(false);
    expect(isUserRecord('host-a', '$metadata')).toBe(false);
    expect(isUserRecord(indexStream('a', 'g:1'), '$>')).toBe(false);
  });
});
