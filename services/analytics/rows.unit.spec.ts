import { describe, expect, it } from 'vitest';
import { batchRows, COMPLIANCE_COLUMNS, toCompact } from './rows.js';

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

  it('given a batch with only compliance rows, when split per table, then the empty tables are left out and the checkpoint comes last', () => {
    const tables = batchRows(
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
    expect(toCompact(tables[0]?.rows ?? [], COMPLIANCE_COLUMNS)).toEqual([['h1', '2024-11-24', 1, 0, 1, 1, '7', '9']]);
    expect(tables[1]?.rows).toEqual([{ subscriber: 's', position: '9', updated_at: '1700000000123' }]);
  });
});
