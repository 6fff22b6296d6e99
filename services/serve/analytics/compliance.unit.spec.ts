import { describe, expect, it } from 'vitest';
import { assessCompliance, daysOf, type HostActivity, type ViolationSpan } from './compliance.js';
import { formatDuration, formatShare } from './humanize.js';

const H = 3_600_000_000_000n;
const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z
const host = (name: string, times: readonly bigint[], iommu: readonly [bigint, boolean][] = [[D1, true]]): HostActivity => {
  const lastEventByDay = new Map<string, bigint>();
  for (const t of times) {
    const day = new Date(Number(t / 1_000_000n)).toISOString().slice(0, 10);
    if ((lastEventByDay.get(day) ?? -1n) < t) lastEventByDay.set(day, t);
  }
  return { host: name, lastEventByDay, iommuSnapshots: iommu.map(([timeNs, i]) => ({ timeNs, iommu: i })) };
};
const v = (h: string, rule: string, severity: string, openedNs: bigint, closedNs: bigint | null): ViolationSpan => ({ host: h, rule, severity, openedNs, closedNs });
const period = { fromNs: D1, toNs: D1 + 47n * H };

describe('Compliance > one definition, per host and per day', () => {
  it('given a host with events and no finding, then it is compliant on each day of the period', () => {
    const r = assessCompliance([host('a', [D1 + H, D1 + 20n * H, D1 + 30n * H, D1 + 46n * H])], [], period);
    expect(r.hostDays.map((d) => [d.day, d.status])).toEqual([['2024-11-24', 'compliant'], ['2024-11-25', 'compliant']]);
    expect(r.headline).toMatchObject({ hosts: 1, compliant: 1, nonCompliant: 0, notAssessed: 0, compliantShare: 1, noData: false });
  });

  it('given a warning open during day 2 only, then day 1 is compliant, day 2 and the host are not', () => {
    const r = assessCompliance([host('a', [D1 + H, D1 + 20n * H, D1 + 30n * H, D1 + 46n * H])], [v('a', 'split-domain', 'critical', D1 + 30n * H, D1 + 31n * H)], period);
    expect(r.hostDays.map((d) => d.status)).toEqual(['compliant', 'non-compliant']);
    expect(r.hosts[0]).toMatchObject({ status: 'non-compliant', findings: 1, daysCompliant: 1, daysNonCompliant: 1 });
    expect(r.days.map((d) => d.compliantShare)).toEqual([1, 0]);
  });

  it('given an info violation, then it is no finding', () => {
    const r = assessCompliance([host('a', [D1 + H, D1 + 46n * H, D1 + 23n * H])], [v('a', 'sequence-late-arrival', 'info', D1 + 2n * H, D1 + 2n * H)], period);
    expect(r.hosts[0]?.status).toBe('compliant');
  });

  it('given a host without IOMMU, then it is not assessed (no-iommu), never compliant', () => {
    const r = assessCompliance([host('n', [D1 + H, D1 + 46n * H], [[D1, false]])], [], period);
    expect(r.hosts[0]).toMatchObject({ status: 'not-assessed', reasons: ['no-iommu'] });
    expect(r.headline).toMatchObject({ compliant: 0, notAssessed: 1, compliantShare: null });
    expect(formatShare(r.headline.compliantShare)).toBe('no data');
  });

  it('given a host whose first event is on day 2, then day 1 is not assessed (no-data)', () => {
    const r = assessCompliance([host('late', [D1 + 30n * H, D1 + 46n * H])], [], period);
    expect(r.hostDays.map((d) => d.reason)).toEqual(['no-data', null]);
    expect(r.hosts[0]).toMatchObject({ status: 'not-assessed', reasons: ['no-data'] });
  });

  it('given a collector silent longer than the stale limit, then its day is not assessed (stale)', () => {
    const r = assessCompliance([host('q', [D1 + H])], [], { ...period, staleAfterNs: 6n * H });
    expect(r.hostDays.map((d) => d.reason)).toEqual(['stale', 'stale']);
    const lenient = assessCompliance([host('q', [D1 + H])], [], { ...period, staleAfterNs: 48n * H });
    expect(lenient.hosts[0]?.status).toBe('compliant');
  });

  it('given a sequence gap open, then the day is uncertain: not assessed rather than compliant', () => {
    const r = assessCompliance([host('g', [D1 + H, D1 + 20n * H, D1 + 30n * H, D1 + 46n * H])], [v('g', 'sequence-gap', 'warning', D1 + 2n * H, D1 + 3n * H)], period);
    expect(r.hostDays.map((d) => d.reason)).toEqual(['uncertain', null]);
    expect(r.hosts[0]).toMatchObject({ status: 'not-assessed', reasons: ['uncertain'], findings: 0 });
  });

  it('given an empty scope, then the headline says no data', () => {
    const r = assessCompliance([], [], period);
    expect(r.headline).toMatchObject({ hosts: 0, noData: true, compliantShare: null });
    expect(r.days.every((d) => d.compliantShare === null)).toBe(true);
  });

  it('given a period inside one day, then that day only, cut at the period', () => {
    expect(daysOf(D1 + H, D1 + 2n * H)).toEqual(['2024-11-24']);
    expect(daysOf(D1 + 2n * H, D1 + H)).toEqual([]);
  });

  it('time-to-close reads with a unit that fits', () => {
    expect([32_000n, 1_500_000n, 12_000_000_000n, 252_000_000_000n, 3n * H].map(formatDuration)).toEqual(['32 µs', '1.5 ms', '12 s', '4.2 min', '3 h']);
  });
});
