import { describe, expect, it } from 'vitest';
import { createFleetProjection } from '../../../projections/index.js';
import { createEventBuilder, type IommuEvent } from '../../../schemas/index.js';
import { simulateFleet } from '../../simulator/simulateFleet.js';
import { createFleetAnalyzer } from './fleetAnalyzer.js';
import { batchRows, columnsDocument, EVENT_COLUMNS, positionalRows, rowAt, rowObjects, toCompact, toComplianceRow, toDateTime64, toEventRow, toGroupStateRow, toViolationRow } from './rows.js';

describe('Analytics > rows', () => {
  it('given rows and a column order, when made compact, then each row becomes its values in that order', () => {
    const rows = [
      { b: 2, a: 'x', c: null },
      { c: ['d'], a: 'y', b: 3 },
    ];
    expect(toCompact(rows, ['a', 'b', 'c'])).toEqual([
      ['x', 2, null],
      ['y', 3, ['d']],
    ]);
  });

  it('sink3 #23: given a table of rows, when made a column document, then each column holds its values in row order, a range of rows alone', () => {
    const t = { columns: ['a', 'b', 'c'], data: [['x', 'y', 'z'], [2, 3, 4], [null, ['d'], { o: 1 }]], length: 3 };
    expect(columnsDocument(t)).toEqual({ meta: [], data: { a: ['x', 'y', 'z'], b: [2, 3, 4], c: [null, ['d'], { o: 1 }] } });
    expect(columnsDocument(t, 1, 2)).toEqual({ meta: [], data: { a: ['y'], b: [3], c: [['d']] } });
  });

  it('sink3 #23: given a batch, when split per table, then each table holds its rows by column, the same values as row by row', () => {
    const b = createEventBuilder({ host: 'h1' });
    const events = [b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' }), b.event('DriverUnbound', { device: '0000:03:00.0', driver: 'vfio-pci' })];
    const { tables } = batchRows({ events: events.map((event, i) => ({ event, streamName: 'host-h1', streamPosition: BigInt(i + 1), globalPosition: BigInt(i + 1) })), violations: [], groupStates: [], compliance: [], checkpoint: { subscriber: 's', position: 2n } }, 0);
    const t = tables[0]!;
    expect(t.length).toBe(2);
    expect(t.data).toHaveLength(EVENT_COLUMNS.length);
    expect(t.data[EVENT_COLUMNS.indexOf('event_id')]).toEqual(events.map((e) => e.id));
    expect(positionalRows(t)).toEqual(events.map((e, i) => Object.values(toEventRow({ event: e, streamName: 'host-h1', streamPosition: BigInt(i + 1), globalPosition: BigInt(i + 1) })).map((v, j) => (j === EVENT_COLUMNS.indexOf('data') ? e.data : v))));
  });

  it('given a batch with only compliance rows, when split per table, then the empty tables are left out and the checkpoint comes last', () => {
    const { tables } = batchRows(
      {
        events: [],
        violations: [],
        groupStates: [],
        compliance: [{ host: 'h1', day: '2024-11-24', opened: 1, closed: 0, maxOpen: 1, openAtEnd: 1, events: 7n, version: 9n }],
        checkpoint: { subscriber: 's', position: 9n },
      },
      1_700_000_000_123,
    );
    expect(tables.map((t) => t.table)).toEqual(['compliance_daily', 'sink_checkpoints']);
    expect(positionalRows(tables[0]!)).toEqual([['h1', '2024-11-24', 1, 0, 1, 1, '7', null, null, null, null, 1, '9']]);
    expect(rowObjects(tables[1]!)).toEqual([{ subscriber: 's', position: '9', updated_at: '1700000000123' }]);
  });

  it.each([
    ['0', '1970-01-01 00:00:00.000000000'],
    ['123456789012', '1970-01-01 00:02:03.456789012'],
    ['1732406400123456', '1970-01-21 01:13:26.400123456'],
    ['100000000000000000', '1973-03-03 09:46:40.000000000'],
    ['1732406400123456789', '2024-11-24 00:00:00.123456789'],
    ['9223372036854775807', '2262-04-11 23:47:16.854775807'],
  ])('hardening #3: %s ns becomes the exact instant %s whatever its digit count', (ns, text) => {
    expect(toDateTime64(BigInt(ns))).toBe(text);
    expect(toDateTime64(ns)).toBe(text);
  });

  it.each(['9223372036854775808', '10000000000000000000', '-1', '01'])('hardening #3: %s ns is refused with the reason, never guessed', (ns) => {
    expect(() => toDateTime64(ns)).toThrow(/outside DateTime64\(9\)/);
  });

  it('issue 23: an event row built as its values holds each field in its column', () => {
    const b = createEventBuilder({ host: 'h1', startNs: 1_732_406_400_123_456_789n });
    const event = b.event('VfioDeviceOpened', { device: '0000:03:00.0', deviceFd: '4242:7', cdev: 'vfio0', outcome: { ok: true } }, { actor: { pid: 42, comm: 'qemu', vm: 'vm-1', tenant: 't' }, correlationId: 'c1', labels: ['l'] });
    expect(toEventRow({ event, streamName: 'host-h1', streamPosition: 3n, globalPosition: 9n }, 7)).toEqual({
      event_id: event.id,
      global_position: '9',
      stream_position: '3',
      host: 'h1',
      seq: '1',
      type: 'VfioDeviceOpened',
      time: '2024-11-24 00:00:00.123456789',
      source: event.source,
      group_id: 7,
      device: '0000:03:00.0',
      outcome_ok: 1,
      errno: null,
      actor_pid: 42,
      actor_comm: 'qemu',
      actor_vm: 'vm-1',
      actor_tenant: 't',
      correlation_id: 'c1',
      labels: ['l'],
      data: JSON.stringify(event.data),
    });
  });

  it('sink2 #23: an event row carries its data as the object itself, serialized once by the insert (not a string escaped again)', () => {
    const b = createEventBuilder({ host: 'h1' });
    const event = b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' });
    const { tables } = batchRows({ events: [{ event, streamName: 'host-h1', streamPosition: 1n, globalPosition: 1n }], violations: [], groupStates: [], compliance: [], checkpoint: { subscriber: 's', position: 1n } }, 0);
    const values = rowAt(tables[0]!, 0);
    expect(values[EVENT_COLUMNS.indexOf('data')]).toBe(event.data);
    // what a reader (or the quarantine) sees of the row is the column's text
    expect(rowObjects(tables[0]!)[0]?.data).toBe(JSON.stringify(event.data));
  });

  it('hardening #3: a row whose time or day no column holds is set aside with the reason, its neighbours kept', () => {
    const day = (d: string) => ({ host: 'h1', day: d, opened: 0, closed: 0, maxOpen: 0, openAtEnd: 0, events: 1n, version: 1n });
    const { tables, rejected } = batchRows({ events: [], violations: [], groupStates: [], compliance: [day('2024-11-24'), day('2200-01-01')], checkpoint: { subscriber: 's', position: 1n } }, 0);
    expect(tables[0]?.length).toBe(1);
    expect(rejected).toEqual([{ table: 'compliance_daily', key: 'h1/2200-01-01', position: 1n, reason: 'day 2200-01-01 is outside Date (1970-01-01 to 2149-06-06)', row: expect.stringContaining('"events":"1"') as unknown }]);
  });

  it('sink5 #23: given a simulated fleet folded into batches with every row kind, when split per table, then each table holds the row objects of its sources, in order', () => {
    // given: a fleet with mistakes (violations opened and closed), group changes and several days, in batches
    const events = [...simulateFleet({ events: 6000, hosts: 3, seed: 5, mistakeRate: 0.3 })] as unknown as IommuEvent[];
    const analyzer = createFleetAnalyzer(createFleetProjection());
    const seen = { events: 0, violations: 0, group_states: 0, compliance_daily: 0 };
    for (let from = 0; from < events.length; from += 1000) {
      const batch = events.slice(from, from + 1000).map((event, i) => ({ event, streamName: `host-${event.host}`, streamPosition: BigInt(from + i + 1), globalPosition: BigInt(from + i + 1) }));
      const out = { ...analyzer.apply(batch), checkpoint: { subscriber: 's', position: BigInt(from + batch.length) } };
      // when
      const { tables, rejected } = batchRows(out, 0);
      // then: each table's rows, read back as objects, are the row objects made one by one from the batch
      expect(rejected).toEqual([]);
      const expected: Record<string, unknown[]> = {
        events: out.events.map((r, i) => toEventRow(r, out.eventGroups?.[i] ?? null)),
        violations: out.violations.map(toViolationRow),
        group_states: out.groupStates.map(toGroupStateRow),
        compliance_daily: out.compliance.map(toComplianceRow),
      };
      for (const t of tables) {
        if (t.table === 'sink_checkpoints') continue;
        expect(rowObjects(t)).toEqual(expected[t.table]);
        seen[t.table as keyof typeof seen] += t.length;
      }
    }
    expect(Object.values(seen).every((n) => n > 0)).toBe(true);
  });
});

