import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEventBuilder, type RecordedEvent } from '../../../schemas/index.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries, type AnalyticsQueries } from './analyticsQueries.js';
import type { ViolationRecord } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';

const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z
const MS = 1_000_000n;

const b = createEventBuilder({ host: 'h1', startNs: D1, stepNs: MS });
const recorded: RecordedEvent[] = Array.from({ length: 4 }, (_, i) => ({
  event: b.event('DriverBound', { device: `0000:0${i}:00.0`, driver: 'vfio-pci' }),
  streamName: 'host-h1',
  streamPosition: BigInt(i),
  globalPosition: BigInt(i + 1),
}));

/** one warning (closed after 2 ms) and one critical (open), beside three information records (one open) */
const violation = (key: string, rule: string, severity: string, openedMs: bigint, closedMs: bigint | null, group = 1): ViolationRecord => ({
  key,
  host: 'h1',
  group,
  rule,
  severity,
  message: `${rule} ${key}`,
  opened: { eventId: recorded[0]!.event.id, timeNs: D1 + openedMs * MS, globalPosition: 1n },
  ...(closedMs === null ? {} : { closed: { eventId: recorded[1]!.event.id, timeNs: D1 + closedMs * MS, globalPosition: 2n } }),
  evidence: [recorded[0]!.event.id],
  version: 1n,
});
const violations: ViolationRecord[] = [
  violation('w', 'access-before-bind', 'warning', 0n, 2n),
  violation('c', 'tenant-mixing', 'critical', 1n, null),
  violation('i1', 'translated-by-unattached-domain', 'info', 0n, 1n),
  violation('i2', 'translated-by-unattached-domain', 'info', 1n, null, 2),
  violation('i3', 'sequence-late-arrival', 'info', 2n, 2n),
];

describeWithEngine('chdb', chdbAvailability(), 'Analytics > findings only, information records on request (issue 18)', () => {
  let dir: string;
  let ac: AnalyticsClient;
  let q: AnalyticsQueries;
  let strict: AnalyticsQueries;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-findings-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: 'findingsonly' });
    await migrate(ac);
    await getClickHouseAnalyticsSink(ac).write({ events: recorded, violations, groupStates: [], compliance: [], checkpoint: { subscriber: 'test', position: 4n } });
    q = createAnalyticsQueries(ac);
    // a service configured with analytics.staleAfter 30m
    strict = createAnalyticsQueries(ac, { staleAfterNs: 30n * 60_000n * MS });
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trust #18: trends, the violations table, open-by-rule and the hosts table count findings only (severity info left out), so the trends\' "opened" is the report\'s "findings in the period"', async () => {
    // when the tables are read without a severity filter
    const [trends, table, openByRule, hosts, groups] = await Promise.all([
      q.table('trends', {}),
      q.table('violations', {}),
      q.table('open-by-rule', {}),
      q.table('hosts', {}),
      q.table('host-groups', { host: 'h1' }),
    ]);
    // then only the warning and the critical count
    expect(trends.map((r) => [r.day, Number(r.opened), Number(r.closed)])).toEqual([['2024-11-24', 2, 1]]);
    expect(table.map((r) => r.violation_key).sort()).toEqual(['c', 'w']);
    expect(openByRule.map((r) => [r.rule, Number(r.open)])).toEqual([['tenant-mixing', 1]]);
    expect(hosts.map((r) => [r.host, Number(r.open_violations), r.open_rules])).toEqual([['h1', 1, ['tenant-mixing']]]);
    expect(groups.map((r) => Number(r.open_violations))).toEqual([]);
    const summary = await q.summary({});
    expect([summary.openViolations, summary.hostsWithOpenViolations]).toEqual([1, 1]);
  });

  it('information records count when asked for: includeInfo, or a severity filter naming info; a drill-down by key finds an info record', async () => {
    const trends = await q.table('trends', { includeInfo: true });
    expect(trends.map((r) => Number(r.opened))).toEqual([5]);
    expect((await q.table('violations', { severities: ['info'] })).map((r) => r.violation_key).sort()).toEqual(['i1', 'i2', 'i3']);
    expect((await q.table('open-by-rule', { includeInfo: true })).map((r) => [r.rule, Number(r.open)]).sort()).toEqual([
      ['tenant-mixing', 1],
      ['translated-by-unattached-domain', 1],
    ]);
    expect((await q.table('violations', { violationKey: 'i1' })).map((r) => r.violation_key)).toEqual(['i1']);
  });

  it('issue 18: the stale-collector limit is a service setting (the queries\' default), and the query parameter still overrides it', async () => {
    const period = { fromNs: D1, toNs: D1 + 86_400_000n * MS - 1n };
    // then the assessment is made with the built-in 24 h, the service's 30 min, or a query's 2 d (the headline says which)
    expect((await q.summary(period)).compliance).toMatchObject({ staleAfter: '1 d' });
    expect((await strict.summary(period)).compliance).toMatchObject({ staleAfter: '30 min' });
    expect((await strict.summary({ ...period, staleAfterNs: 2n * 86_400_000n * MS })).compliance).toMatchObject({ staleAfter: '2 d' });
  });

  it('issue 18: the summary carries the time to close of the findings closed in the period (p50, p90, max, with units), info records left out', async () => {
    const { timeToClose } = await q.summary({});
    expect(timeToClose).toEqual({ closed: 1, p50Ns: '2000000', p90Ns: '2000000', maxNs: '2000000', p50: '2 ms', p90: '2 ms', max: '2 ms' });
    expect((await q.summary({ includeInfo: true })).timeToClose).toMatchObject({ closed: 3, maxNs: '2000000' });
    expect((await q.summary({ rules: ['tenant-mixing'] })).timeToClose).toEqual({ closed: 0, p50Ns: null, p90Ns: null, maxNs: null, p50: '', p90: '', max: '' });
  });
});
