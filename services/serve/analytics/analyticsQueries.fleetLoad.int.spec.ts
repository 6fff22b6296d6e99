import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFleetProjection } from '../../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../../schemas/index.js';
import { simulateFleet } from '../../simulator/simulateFleet.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries, type AnalyticsFilters, type AnalyticsQueries, type TableName, type TableParams, type TableRow } from './analyticsQueries.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { DAY_NS } from './compliance.js';
import { createFleetAnalyzer } from './fleetAnalyzer.js';
import { defaultMigrationsDir, migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';
import { recordingClient } from './testing/recordingClient.js';

const D0 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z
const HOUR = 3_600_000_000_000n;

/** a simulated fleet (violations and all) stretched over three days, its order kept */
const fleet = (): RecordedEvent[] => {
  const simulated = [...simulateFleet({ events: 900, hosts: 40, seed: 7, mistakeRate: 0.3, hostPrefix: 'f-' })] as unknown as IommuEvent[];
  const t0 = BigInt(simulated[0]?.time ?? '0');
  const run = Number(BigInt(simulated.at(-1)?.time ?? '1') - t0) || 1;
  return simulated.map((e, i) => ({
    event: { ...e, time: (D0 + HOUR + (BigInt(Math.round((Number(BigInt(e.time) - t0) / run) * 1e6)) * (3n * DAY_NS - 2n * HOUR)) / 1_000_000n).toString() } as IommuEvent,
    streamName: `host-${e.host}`,
    streamPosition: BigInt(i),
    globalPosition: BigInt(i + 1),
  }));
};

/** the events through the analyzer and the sink in batches of 100 (`twice`: every batch written again, as a replay does) */
const writeFleet = async (ac: AnalyticsClient, analyzer: ReturnType<typeof createFleetAnalyzer>, events: readonly RecordedEvent[], twice = false): Promise<void> => {
  const sink = getClickHouseAnalyticsSink(ac);
  for (let i = 0; i < events.length; i += 100) {
    const out = analyzer.apply(events.slice(i, i + 100));
    const batch = { ...out, checkpoint: { subscriber: 'test', position: analyzer.position() } };
    await sink.write(batch);
    if (twice) await sink.write(batch);
  }
};

/** every row of a table read a page of `size` at a time from offset 0 past its end, each page with the same total */
const inPages = async (q: AnalyticsQueries, name: TableName, p: TableParams, size: number, total: number): Promise<TableRow[]> => {
  const rows: TableRow[] = [];
  for (let offset = 0; offset < total + size; offset += size) {
    const got = await q.page(name, { ...p, limit: size, offset });
    expect(got.total).toBe(total);
    rows.push(...got.rows);
  }
  return rows;
};

describeWithEngine('chdb', chdbAvailability(), 'Analytics > a dashboard load over many hosts reads each figure once and pages by host (issue 23)', () => {
  let dir: string;
  let ac: AnalyticsClient;
  let hosts: string[];
  /** the SQL text of every statement the queries object sent */
  const sent: string[] = [];
  let q: AnalyticsQueries;
  const fresh = (): AnalyticsQueries => createAnalyticsQueries(ac);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-load-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: 'load' });
    await migrate(ac);
    const events = fleet();
    hosts = [...new Set(events.map((r) => r.event.host))].sort();
    await writeFleet(ac, createFleetAnalyzer(createFleetProjection()), events);
    q = createAnalyticsQueries(recordingClient(ac, sent));
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dash3 #23: given the per-host compliance table, when read in pages of any size from any offset, then the pages put together are the whole table, with its total', { timeout: 120_000 }, async () => {
    for (const f of [{}, { staleAfterNs: 6n * HOUR }, { fromNs: D0 + DAY_NS, toNs: D0 + 3n * DAY_NS - 1n }, { hosts: hosts.slice(3, 17) }] as AnalyticsFilters[]) {
      const whole = await fresh().page('host-compliance', { ...f, limit: 100_000 });
      expect(whole.rows.map((r) => r.host)).toEqual([...whole.rows.map((r) => String(r.host))].sort());
      expect(new Set(whole.rows.map((r) => r.status)).size, JSON.stringify(f, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).toBeGreaterThan(1);
      for (const size of [7, 16]) expect(await inPages(fresh(), 'host-compliance', f, size, whole.total)).toEqual(whole.rows);
    }
  });

  it('dash3 #23: given the events, when the summary counts the hosts tracked up to now (from the compliance\'s hosts in scope), then it is the hosts that reported, with host and rule filters too', async () => {
    const distinct = async (f: AnalyticsFilters): Promise<number> => {
      const rs = await ac.client.query({ query: 'SELECT uniqExact(host) AS n FROM load.events WHERE length({hosts:Array(String)}) = 0 OR host IN {hosts:Array(String)}', query_params: { hosts: f.hosts ?? [] }, format: 'JSONEachRow' });
      return Number((await rs.json<{ n: unknown }>())[0]?.n);
    };
    for (const f of [{}, { hosts: hosts.slice(0, 5) }, { hosts: ['no-such-host'] }, { rules: ['sequence-gap'] }, { fromNs: D0 + 2n * DAY_NS }] as AnalyticsFilters[]) {
      expect((await fresh().summary(f)).hostsTracked).toBe(await distinct(f));
    }
    // as of a moment, the hosts with an event up to it
    const at = D0 + DAY_NS;
    const rs = await ac.client.query({ query: `SELECT uniqExact(host) AS n FROM load.events WHERE time <= fromUnixTimestamp64Nano(${at.toString()})`, format: 'JSONEachRow' });
    expect((await fresh().summary({ toNs: at })).hostsTracked).toBe(Number((await rs.json<{ n: unknown }>())[0]?.n));
  });

  it('dash3 #23: given a page load (the summary and both compliance panels at once), when it runs, then the period\'s bounds are read once and the hosts are counted in no pass of their own', async () => {
    await q.summary({});
    sent.length = 0;
    await Promise.all([q.summary({}), q.page('compliance', {}), q.page('host-compliance', { limit: 500 })]);
    expect(sent.filter((s) => /min\(assumeNotNull\(first_event_at\)\)|assumeNotNull\(min\(first_event_at\)\)/.test(s))).toHaveLength(1);
    expect(sent.filter((s) => /SELECT DISTINCT host FROM load\.(compliance_daily|events)\s*\)/.test(s))).toEqual([]);
  });

  it('dash4 #23: given a fresh queries object (a restarted service), when a full page load (the summary and the six panels at once) runs, then whether the hosts × days table has its times and facts is read in one statement, not once per panel that needs it', async () => {
    const mine: string[] = [];
    const load = createAnalyticsQueries(recordingClient(ac, mine));
    await Promise.all([load.summary({}), ...(['open-by-rule', 'trends', 'compliance', 'host-compliance', 'hosts', 'violations'] as const).map((name) => load.page(name, { limit: 500 }))]);
    expect(mine.filter((s) => /countIf\((facts = 0 OR )?last_event_at IS NULL/.test(s))).toHaveLength(1);
  });

  it('dash4 #23: given a full page load (the summary and the six panels at once), when it runs, then no statement is sent twice (the summary\'s open violations by rule and the panel of the same name were)', async () => {
    const mine: string[] = [];
    const load = createAnalyticsQueries(recordingClient(ac, mine));
    await Promise.all([load.summary({}), ...(['open-by-rule', 'trends', 'compliance', 'host-compliance', 'hosts', 'violations'] as const).map((name) => load.page(name, { limit: 500 }))]);
    expect(mine.filter((s, i) => mine.indexOf(s) !== i)).toEqual([]);
  });

  it('dash9 #23: given a full page load (the summary and the six panels at once), when it runs, then the open violations\' pre-aggregate is read by three statements (one for the summary\'s counts, the open-by-rule panel and the violations panel\'s total; the hosts panel\'s candidates; its rows) the trends\' per-day pre-aggregate by one (the trends panel with the summary\'s time to close), and the findings\' copy of the violations by one, over FINAL (the violations panel)', async () => {
    const mine: string[] = [];
    const load = createAnalyticsQueries(recordingClient(ac, mine));
    const [summary, byRule, trends, , , , violations] = await Promise.all([
      load.summary({}),
      ...(['open-by-rule', 'trends', 'compliance', 'host-compliance', 'hosts', 'violations'] as const).map((name) => load.page(name, { limit: 500 })),
    ]);
    expect(mine.filter((s) => s.includes('load.host_rule_occurrences')).length).toBe(3);
    expect(mine.filter((s) => s.includes('load.violation_days')).length).toBe(1);
    expect(mine.filter((s) => s.includes('load.violation_findings FINAL')).length).toBe(1);
    expect(mine.filter((s) => s.includes('load.violations FINAL'))).toEqual([]);
    // the shared statements' extra rows and columns are not the panels'
    expect(byRule?.rows.map((r) => Object.keys(r).sort())).toEqual(byRule?.rows.map(() => ['hosts', 'open', 'rule', 'severity']));
    expect(byRule?.rows.map((r) => [r.rule, r.severity, Number(r.open)])).toEqual(summary.openByRuleAndSeverity.map((r) => [r.rule, r.severity, r.open]));
    expect(trends?.rows.every((r) => !('whole' in r) && !('max_close_ns' in r) && r.day !== '1970-01-01')).toBe(true);
    expect(trends?.rows.reduce((a, r) => a + Number(r.closed), 0)).toBe(summary.timeToClose.closed);
    expect(violations?.total).toBeGreaterThan(0);
  });

  it('dash6 #23: given a full page load (the summary and the six panels at once), when it runs, then the hosts panel\'s total is the compliance\'s hosts (no pass of its own over every host), and is the hosts that reported', async () => {
    const mine: string[] = [];
    const load = createAnalyticsQueries(recordingClient(ac, mine));
    const [summary, ...pages] = await Promise.all([load.summary({}), ...(['open-by-rule', 'trends', 'compliance', 'host-compliance', 'hosts', 'violations'] as const).map((name) => load.page(name, { limit: 500 }))]);
    expect(mine.filter((s) => /SELECT count\(\) AS total FROM \(SELECT DISTINCT host FROM load\.host_activity/.test(s))).toEqual([]);
    expect(pages[4]?.total).toBe(hosts.length);
    expect(summary.hostsTracked).toBe(hosts.length);
  });

  it('dash6 #23: given the violations, when the summary counts the open ones, their hosts and the time to close in one pass, then each is its figure alone (open: not closed as of the moment; closed: in the period; findings only), for the fleet, some hosts, a period and an as-of', async () => {
    const one = async (query: string, query_params: Record<string, unknown>): Promise<Record<string, unknown>> =>
      ((await (await ac.client.query({ query, query_params, format: 'JSONEachRow' })).json()) as Record<string, unknown>[])[0] ?? {};
    const some = hosts.slice(2, 15);
    const mid = D0 + DAY_NS + 7n * HOUR;
    // (from alone: up to now, the time to close of a period from the trends panel's statement, dash9)
    for (const f of [{}, { hosts: some }, { fromNs: D0 + DAY_NS, toNs: D0 + 2n * DAY_NS }, { toNs: mid }, { fromNs: D0 + DAY_NS }] as AnalyticsFilters[]) {
      const got = await fresh().summary(f);
      const scope = `severity != 'info'${f.hosts === undefined ? '' : ' AND host IN {hosts:Array(String)}'}`;
      const params = { hosts: f.hosts ?? [], at: String(f.toNs ?? 0n), from: String(f.fromNs ?? 0n), to: String(f.toNs ?? 0n) };
      const open = await one(
        `SELECT uniqExact(host) AS hosts, count() AS open FROM load.violations FINAL WHERE ${scope} AND ${
          f.toNs === undefined ? 'closed_at IS NULL' : 'opened_at <= fromUnixTimestamp64Nano({at:Int64}) AND (closed_at IS NULL OR closed_at > fromUnixTimestamp64Nano({at:Int64}))'
        }`,
        params,
      );
      const closed = await one(
        `SELECT count() AS closed, toString(toUInt64(quantileExact(0.5)(duration_ns))) AS p50, toString(max(duration_ns)) AS max FROM load.violations FINAL WHERE ${scope} AND closed_at IS NOT NULL${
          f.fromNs === undefined ? '' : ' AND closed_at >= fromUnixTimestamp64Nano({from:Int64})'
        }${f.toNs === undefined ? '' : ' AND closed_at <= fromUnixTimestamp64Nano({to:Int64})'}`,
        params,
      );
      expect([got.openViolations, got.hostsWithOpenViolations]).toEqual([Number(open.open), Number(open.hosts)]);
      expect([got.timeToClose.closed, got.timeToClose.p50Ns, got.timeToClose.maxNs]).toEqual([Number(closed.closed), Number(closed.closed) === 0 ? null : closed.p50, Number(closed.closed) === 0 ? null : closed.max]);
    }
    expect((await fresh().summary({})).openViolations).toBeGreaterThan(0);
    expect((await fresh().summary({})).timeToClose.closed).toBeGreaterThan(0);
  });

  it('dash6 #23: given the hosts table up to now, when its first page is read, then its hosts without open violations come from the first rows of host_activity in host order (no host made distinct); with rows not merged yet (each host 8 times) too few hosts are among them and every host is made distinct: the pages are the whole table either way', { timeout: 120_000 }, async () => {
    const whole = await fresh().page('hosts', { limit: 100_000 });
    await ac.client.command({ query: 'OPTIMIZE TABLE load.host_activity FINAL' });
    const mine: string[] = [];
    const recorded = createAnalyticsQueries(recordingClient(ac, mine));
    const distinct = (): string[] => mine.filter((s) => /SELECT DISTINCT host FROM load\.host_activity WHERE last_event_at IS NOT NULL AND host NOT IN/.test(s));
    expect((await recorded.page('hosts', { limit: 7 })).rows).toEqual(whole.rows.slice(0, 7));
    expect(distinct()).toEqual([]);
    await ac.client.command({ query: 'SYSTEM STOP MERGES load.host_activity' });
    try {
      // the same rows again (a maximum and a minimum of the same values: nothing changes but their number)
      for (let i = 0; i < 3; i++) await ac.client.command({ query: 'INSERT INTO load.host_activity SELECT * FROM load.host_activity' });
      mine.length = 0;
      for (const size of [3, 7]) expect(await inPages(recorded, 'hosts', {}, size, whole.total)).toEqual(whole.rows);
      expect(distinct().length).toBeGreaterThan(0);
    } finally {
      await ac.client.command({ query: 'SYSTEM START MERGES load.host_activity' });
    }
  });

  it('dash3 #23: given the hosts table (most open violations first, then by host), when read in pages from any offset, then the pages put together are the whole table, and its total is its number of rows, up to now and as of a moment', { timeout: 120_000 }, async () => {
    for (const p of [{}, { atNs: D0 + DAY_NS }, { hosts: hosts.slice(0, 9) }, { rules: ['sequence-gap'] }]) {
      const whole = await fresh().page('hosts', { ...p, limit: 100_000 });
      expect(whole.total).toBe(whole.rows.length);
      const open = whole.rows.map((r) => Number(r.open_violations));
      // the order by its definition, over hosts with and without open violations
      expect(whole.rows.map((r) => `${String(1e6 - Number(r.open_violations)).padStart(7, '0')} ${String(r.host)}`)).toEqual(
        whole.rows.map((r) => `${String(1e6 - Number(r.open_violations)).padStart(7, '0')} ${String(r.host)}`).sort(),
      );
      if (p.rules === undefined) expect([open.some((o) => o > 0), open.some((o) => o === 0)]).toEqual([true, true]);
      for (const size of [3, 7]) expect(await inPages(fresh(), 'hosts', p, size, whole.total)).toEqual(whole.rows);
    }
  });
});

describeWithEngine('chdb', chdbAvailability(), 'Analytics > the groups tracked from the per-host pre-aggregate, backfilled at migration (issue 23)', () => {
  let dir: string;
  let ac: AnalyticsClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-groups-'));
    // a database made before migration 0007, holding half the fleet's group states (every batch twice)
    const old = join(dir, 'old-migrations');
    mkdirSync(join(old, 'single'), { recursive: true });
    for (const f of readdirSync(join(defaultMigrationsDir(), 'single')).filter((name) => name < '0006')) copyFileSync(join(defaultMigrationsDir(), 'single', f), join(old, 'single', f));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'ch') }, database: 'groups' });
    await migrate(ac, { dir: old });
    const events = fleet();
    const analyzer = createFleetAnalyzer(createFleetProjection());
    const half = Math.floor(events.length / 2);
    await writeFleet(ac, analyzer, events.slice(0, half), true);
    // then the migration (its backfill), and the rest of the history written after it
    expect((await migrate(ac)).applied).toEqual(['0007_host_groups.sql', '0009_host_compliance.sql', '0010_compliance_overview.sql', '0011_host_compliance_partitions.sql', '0012_host_rule_violations.sql', '0013_host_rule_occurrences.sql', '0014_host_rule_occurrences_opened.sql', '0015_host_string_keys.sql', '0016_violation_days.sql', '0017_violation_findings.sql', '0018_compliance_days.sql']);
    await writeFleet(ac, analyzer, events.slice(half));
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dash3 #23: given group states written before and after migration 0007, when the summary counts the groups tracked up to now, then it reads the per-host sets, not the group states, and equals the distinct (host, group) pairs, for the fleet and for some hosts', async () => {
    const pairs = async (hosts: readonly string[]): Promise<number> => {
      const rs = await ac.client.query({
        query: 'SELECT count() AS n FROM (SELECT DISTINCT host, group_id FROM groups.group_states WHERE length({hosts:Array(String)}) = 0 OR host IN {hosts:Array(String)})',
        query_params: { hosts },
        format: 'JSONEachRow',
      });
      return Number((await rs.json<{ n: unknown }>())[0]?.n);
    };
    const sent: string[] = [];
    const q = createAnalyticsQueries(recordingClient(ac, sent));
    const some = ['f-gpu-01', 'f-gpu-07', 'f-gpu-26', 'no-such-host'];
    for (const hosts of [[], some]) {
      sent.length = 0;
      const got = await q.summary(hosts.length === 0 ? {} : { hosts });
      expect(got.groupsTracked).toBe(await pairs(hosts));
      expect(sent.filter((s) => s.includes('groups.group_states'))).toEqual([]);
      expect(sent.filter((s) => s.includes('groups.host_groups'))).toHaveLength(1);
    }
    expect(await pairs(some)).toBeGreaterThan(0);
    expect(await pairs([])).toBeGreaterThan(await pairs(some));
    // as of a moment past the end, from the group states: the same figure
    expect((await q.summary({ toNs: D0 + 4n * DAY_NS })).groupsTracked).toBe(await pairs([]));
  });

  it('dash5 #23: given group states written before and after migration 0007, when the hosts table shows a page up to now, then its groups column reads the per-host sets, not the group states, and is each host\'s distinct groups; as of a moment, the same', async () => {
    const rs = await ac.client.query({ query: 'SELECT host, toString(uniqExact(group_id)) AS n FROM groups.group_states GROUP BY host', format: 'JSONEachRow' });
    const want = new Map((await rs.json<{ host: string; n: string }>()).map((r) => [r.host, r.n]));
    const sent: string[] = [];
    const q = createAnalyticsQueries(recordingClient(ac, sent));
    for (const at of [undefined, D0 + 4n * DAY_NS]) {
      sent.length = 0;
      const got = await q.page('hosts', at === undefined ? { limit: 500 } : { limit: 500, atNs: at });
      expect(got.rows.length).toBeGreaterThan(0);
      expect(got.rows.map((r) => [r.host, r.groups])).toEqual(got.rows.map((r) => [r.host, want.get(String(r.host)) ?? '0']));
      if (at === undefined) expect(sent.filter((s) => s.includes('groups.group_states'))).toEqual([]);
    }
  });
});
