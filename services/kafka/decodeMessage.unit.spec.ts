import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../schemas/index.js';
import { decodeMessage, groupByHost } from './decodeMessage.js';

const b = createEventBuilder({ host: 'h1' });
const where = 'iommu.events[0]@7';

describe('Kafka > decodeMessage', () => {
  it('given the catalogue JSON of an event, when decoded, then it is that event', () => {
    const event = b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' });
    expect(decodeMessage(Buffer.from(JSON.stringify(event)), where)).toEqual({ ok: true, event });
  });

  it.each([
    ['no value', null, /empty message/],
    ['bytes that are not UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), /not valid UTF-8/],
    ['truncated JSON', Buffer.from('{"type":'), /not valid JSON/],
  ])('given %s, when decoded, then it is undecodable and says why', (_, value, error) => {
    const r = decodeMessage(value, where);
    expect(r).toMatchObject({ ok: false, reason: 'undecodable' });
    expect(!r.ok && r.error).toMatch(error);
    expect(!r.ok && r.error).toContain(where);
  });

  it('given an unknown type or a wrong field type, when decoded, then it is an invalid event naming the field', () => {
    const unknown = decodeMessage(Buffer.from(JSON.stringify({ ...b.raw('DriverUnbound', { device: '0000:03:00.0' }), type: 'Nope' })), where);
    expect(unknown).toMatchObject({ ok: false, reason: 'invalid-event' });
    expect(!unknown.ok && unknown.error).toMatch(/type: unknown event type "Nope"/);
    const wrong = decodeMessage(Buffer.from(JSON.stringify({ ...b.raw('DriverUnbound', { device: '0000:03:00.0' }), data: { device: 42 } })), where);
    expect(!wrong.ok && wrong.error).toMatch(/data\.device/);
  });
});

describe('Kafka > groupByHost', () => {
  it('given interleaved hosts, when grouped, then each host keeps its input order', () => {
    const x = createEventBuilder({ host: 'x' });
    const y = createEventBuilder({ host: 'y' });
    const events = [x, y, x, x, y].map((bb, i) => ({ i, event: bb.event('DriverUnbound', { device: '0000:03:00.0' }) }));
    const groups = groupByHost(events);
    expect([...groups.keys()]).toEqual(['x', 'y']);
    expect(groups.get('x')?.map((e) => e.i)).toEqual([0, 2, 3]);
    expect(groups.get('y')?.map((e) => e.i)).toEqual([1, 4]);
  });
});
