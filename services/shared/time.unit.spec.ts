import { describe, expect, it } from 'vitest';
import { formatTimeNs, parseTimeNs } from './time.js';

const NOW = Date.UTC(2024, 10, 24, 12, 30, 0); // 2024-11-24T12:30:00Z
const ns = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

describe('Times > one rule for the CLI, the API and the dashboard', () => {
  it('issue 21: a time without a zone is UTC, whatever the reader’s zone', () => {
    // given a calendar time without a zone, then it is read as UTC (T or a space, minutes or seconds)
    expect(parseTimeNs('2024-11-24 05:15', NOW)).toBe(ns('2024-11-24T05:15:00Z'));
    expect(parseTimeNs('2024-11-24T05:15:07', NOW)).toBe(ns('2024-11-24T05:15:07Z'));
    expect(parseTimeNs('2024-11-24', NOW)).toBe(ns('2024-11-24T00:00:00Z'));
  });

  it('issue 21: a zone when given is honoured (Z, UTC, ±HH:MM, ±HHMM), to the ns', () => {
    expect(parseTimeNs('2024-11-24T05:15:00-05:00', NOW)).toBe(ns('2024-11-24T10:15:00Z'));
    expect(parseTimeNs('2024-11-24 05:15 +0100', NOW)).toBe(ns('2024-11-24T04:15:00Z'));
    expect(parseTimeNs('2024-11-24 05:15 UTC', NOW)).toBe(ns('2024-11-24T05:15:00Z'));
    expect(parseTimeNs('2024-11-24T05:15:00.000000001Z', NOW)).toBe(ns('2024-11-24T05:15:00Z') + 1n);
    expect(parseTimeNs('1732425300000000000', NOW)).toBe(1_732_425_300_000_000_000n);
  });

  it('issue 21: relative times (-1h, -7d, now, today, yesterday 03:00) from now, in UTC', () => {
    expect(parseTimeNs('-1h', NOW)).toBe(ns('2024-11-24T11:30:00Z'));
    expect(parseTimeNs('now-30m', NOW)).toBe(ns('2024-11-24T12:00:00Z'));
    expect(parseTimeNs('-7d', NOW)).toBe(ns('2024-11-17T12:30:00Z'));
    expect(parseTimeNs('now', NOW)).toBe(ns('2024-11-24T12:30:00Z'));
    expect(parseTimeNs('yesterday 03:00', NOW)).toBe(ns('2024-11-23T03:00:00Z'));
    expect(parseTimeNs('today', NOW)).toBe(ns('2024-11-24T00:00:00Z'));
  });

  it('what is not a time is refused, not rolled over', () => {
    for (const bad of ['noon', '2024-02-30', '2024-11-24 25:00', '-1y', '', '99999999999999999999', 'yesterday 3pm']) expect(parseTimeNs(bad, NOW)).toBeUndefined();
  });

  it('times are written back one way: UTC ISO-8601 with Z, fraction only as needed', () => {
    expect(formatTimeNs(ns('2024-11-24T05:15:00Z'))).toBe('2024-11-24T05:15:00Z');
    expect(formatTimeNs(ns('2024-11-24T05:15:00Z') + 1_500_000n)).toBe('2024-11-24T05:15:00.0015Z');
  });
});
