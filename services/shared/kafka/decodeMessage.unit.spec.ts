import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../../schemas/index.js';
import { decodeMessageValue } from './decodeMessage.js';

const b = createEventBuilder({ host: 'h1' });
const where = 'iommu.events[0]@7';

describe('Kafka > decodeMessageValue', () => {
  it('given the catalogue JSON of an event, when decoded, then it is that JSON (the ingest pipeline judges it)', () => {
    const event = b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' });
    expect(decodeMessageValue(Buffer.from(JSON.stringify(event)), where)).toEqual({ ok: true, value: JSON.parse(JSON.stringify(event)) });
  });

  it.each([
    ['no value', null, /empty message/],
    ['bytes that are not UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), /not valid UTF-8/],
    ['truncated JSON', Buffer.from('{"type":'), /not valid JSON/],
  ])('given %s, when decoded, then it is undecodable and says why', (_, value, error) => {
    const r = decodeMessageValue(value, where);
    expect(r).toMatchObject({ ok: false, reason: 'undecodable' });
    expect(!r.ok && r.error).toMatch(error);
    expect(!r.ok && r.error).toContain(where);
  });
});
