import { describe, expect, it } from 'vitest';
import { createEventBuilder, parseEvent } from './index.js';

const raw = () => createEventBuilder({ host: 'h12', source: 'collector' }).raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } });

const issuesOf = (input: unknown): { path: string; message: string }[] => {
  const r = parseEvent(input, 'events[0]');
  return r.ok ? [] : [...r.error.issues];
};

describe('integer bounds: every value fits every store (SQLite INTEGER, ClickHouse Int64/DateTime64(9))', () => {
  it.each([
    ['time', '9223372036854775808'],
    ['time', '99999999999999999999'],
    ['monoNs', '9223372036854775808'],
  ])('hardening #2: %s %s (above INT64_MAX) is rejected naming the field', (field, value) => {
    const issues = issuesOf({ ...raw(), [field]: value });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe(`events[0].${field}`);
    expect(issues[0]!.message).toMatch(/out of range/);
  });

  it.each([['0'], ['9223372036854775807'], ['1763870000000000000']])('hardening #2: time %s (0..INT64_MAX) is accepted', (value) => {
    expect(issuesOf({ ...raw(), time: value })).toEqual([]);
  });

  it('hardening #2: a pid beyond pid_t and a PASID count beyond 20 bits are rejected by name', () => {
    expect(issuesOf({ ...raw(), actor: { pid: 2 ** 31 } }).map((i) => i.path)).toEqual(['events[0].actor.pid']);
    const topo = createEventBuilder({ host: 'h12' }).raw('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true },
      groups: [{ group: 7, devices: ['0000:01:00.0'] }],
      devices: [{ device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: null, group: 7, maxPasids: 2 ** 20 + 1 }],
    });
    expect(issuesOf(topo).map((i) => i.path)).toEqual(['events[0].data.devices[0].maxPasids']);
  });
});
