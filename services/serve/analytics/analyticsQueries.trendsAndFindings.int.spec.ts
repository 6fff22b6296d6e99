import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries, type AnalyticsFilters, type TableParams } from './analyticsQueries.js';
import type { ViolationRecord } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { defaultMigrationsDir, migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';
import { RULES_OF_EVERY_SEVERITY, violationLoads } from './testing/violationLoads.js';

const HOUR = 3_600_000_000_000n;
const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z
const HOSTS = ['h1', 'h2', 'h3', 'h4'];
const RULES = RULES_OF_EVERY_SEVERITY;
const LOADS = 8;
const STEPS_PER_LOAD = 30;

/** violations over about a month (one event every 1 to 6 hours): an occurrence often closes days after it opened */
const generate = (): ViolationRecord[][] =>
  violationLoads({ seed: 31, hosts: HOSTS, rules: RULES, loads: LOADS, stepsPerLoad: STEPS_PER_LOAD, startNs: D1, gapNs: (next) => BigInt(1 + Math.floor(next() * 6)) * HOUR });

type Day = { day: string; opened: number; closed: number; median: string; p90: string; max: string };

describeWithEngine('chdb', chdbAvailability(), 'Analytics > the trends from their per-day pre-aggregate, the violations page from the findings\' copy (issue 23, dash12)', () => {
  let dir: string;
  let ac: AnalyticsClient;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-trends-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'ch') }, database: 'trends' });
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** the trends of `where` (conditions on rule and severity) over every violation's latest version, the whole range's row first (day '') */
  const trendsOfFinal = async (c: AnalyticsClient, where: string): Promise<Day[]> => {
    const got = await (
      await c.client.query({
        query: `SELECT if(grouping(d) = 1, '', toString(d)) AS day, toString(countIf(k = 0)) AS opened, toString(countIf(k = 1)) AS closed,
            toString(toUInt64(ifNull(quantileExactIf(0.5)(duration_ns, k = 1), 0))) AS median, toString(toUInt64(ifNull(quantileExactIf(0.9)(duration_ns, k = 1), 0))) AS p90,
            toString(toUInt64(ifNull(maxIf(duration_ns, k = 1), 0))) AS max
          FROM (
            SELECT toDate(opened_at) AS d, 0 AS k, duration_ns FROM ${c.database}.violations FINAL WHERE ${where}
            UNION ALL
            SELECT toDate(assumeNotNull(closed_at)) AS d, 1 AS k, duration_ns FROM ${c.database}.violations FINAL WHERE ${where} AND closed_at IS NOT NULL
          ) GROUP BY GROUPING SETS ((d), ()) ORDER BY day`,
        format: 'JSONEachRow',
      })
    ).json<{ day: string; opened: string; closed: string; median: string; p90: string; max: string }>();
    return got.map((r) => ({ ...r, opened: Number(r.opened), closed: Number(r.closed) }));
  };

  /** the dashboard's trends panel and the summary's time to close under `f`, as the rows of {@link trendsOfFinal} */
  const trendsOfDashboard = async (c: AnalyticsClient, f: AnalyticsFilters): Promise<Day[]> => {
    const q = createAnalyticsQueries(c);
    const [panel, summary] = await Promise.all([q.table('trends', f), q.summary(f)]);
    const t = summary.timeToClose;
    return [
      { day: '', opened: -1, closed: t.closed, median: t.p50Ns ?? '0', p90: t.p90Ns ?? '0', max: t.maxNs ?? '0' },
      ...panel.map((r) => ({ day: String(r.day), opened: Number(r.opened), closed: Number(r.closed), median: String(r.median_close_ns), p90: String(r.p90_close_ns), max: '' })),
    ];
  };

  /** the two equal, but for what each side does not show (the summary's openings, the panel's longest close) */
  const expectEqual = (dashboard: Day[], final: Day[]): void => {
    const [whole, ...days] = final;
    expect(dashboard).toEqual([{ ...whole, opened: -1 }, ...days.map((d) => ({ ...d, max: '' }))]);
  };

  const FILTERS: readonly (readonly [AnalyticsFilters, string])[] = [
    [{}, "severity != 'info'"],
    [{ includeInfo: true }, 'true'],
    // (a rule filter without a severity one: findings only)
    [{ rules: ['tenant-mixing', 'translated-by-unattached-domain'] }, "rule IN ('tenant-mixing', 'translated-by-unattached-domain') AND severity != 'info'"],
    [{ rules: ['unsafe-interrupts'], includeInfo: true }, "rule = 'unsafe-interrupts'"],
    [{ severities: ['warning', 'info'] }, "severity IN ('warning', 'info')"],
  ];

  const PAGES: readonly (readonly [TableParams, string])[] = [
    [{}, "severity != 'info'"],
    [{ severities: ['critical'] }, "severity = 'critical'"],
    [{ host: 'h2', rules: ['unsafe-interrupts'] }, "host = 'h2' AND rule = 'unsafe-interrupts' AND severity != 'info'"],
    [{ openOnly: true }, "closed_at IS NULL AND severity != 'info'"],
    [{ includeInfo: true }, 'true'],
  ];

  it('dash12 #23: given violations over a month written as the sink writes them (replays from an older checkpoint, an open row after its closed row, merges by force, the open violations compacted), some before the pre-aggregate’s migration, when the dashboard shows the trends, the time to close and the violations page with and without filters, then they equal those read from violations FINAL, and so do the pre-aggregate’s own sets and the findings\' copy', async () => {
    // the migrations before this one first: the rows of the first loads are there before the pre-aggregate (its backfill)
    const before = join(dir, 'before-0016', 'single');
    mkdirSync(before, { recursive: true });
    for (const f of readdirSync(join(defaultMigrationsDir(), 'single')).filter((n) => n < '0016')) copyFileSync(join(defaultMigrationsDir(), 'single', f), join(before, f));
    await migrate(ac, { dir: join(dir, 'before-0016') });
    const sink = getClickHouseAnalyticsSink(ac);
    const loads = generate();
    const db = ac.database;
    for (const [i, rows] of loads.entries()) {
      if (i === 2) expect((await migrate(ac)).applied).toEqual(['0016_violation_days.sql', '0017_violation_findings.sql', '0018_compliance_days.sql']);
      const checkpoint = { subscriber: 'test', position: rows.at(-1)?.version ?? 0n };
      // in two batches, then every third load the two again as one (a restart replaying from an older checkpoint, cut at
      // other boundaries: the second half's closed rows are then older than the first half's open rows written again)
      const half = Math.floor(rows.length / 2);
      await sink.write({ events: [], violations: rows.slice(0, half), groupStates: [], compliance: [], checkpoint });
      await sink.write({ events: [], violations: rows.slice(half), groupStates: [], compliance: [], checkpoint });
      if (i % 3 === 1) await sink.write({ events: [], violations: rows, groupStates: [], compliance: [], checkpoint });
      if (i % 4 === 3) {
        await ac.client.command({ query: `OPTIMIZE TABLE ${db}.violations FINAL` });
        await ac.client.command({ query: `OPTIMIZE TABLE ${db}.violation_days FINAL` });
        await ac.client.command({ query: `OPTIMIZE TABLE ${db}.violation_findings FINAL` });
      }
      // the open violations' compaction (its own table) leaves these sets alone
      if (i % 3 === 2) await createAnalyticsQueries(ac).compactOccurrences();
      if (i < 2) continue;

      // the pre-aggregate itself, per day, rule and severity: the occurrences opened and closed, and the times to close
      const stored = await (
        await ac.client.query({
          query: `SELECT toString(day) AS day, rule, severity, toString(uniqExactMerge(opened)) AS opened, arraySort(arrayMap(x -> toString(x.2), groupUniqArrayMerge(closed))) AS closes
            FROM ${db}.violation_days GROUP BY day, rule, severity HAVING opened != '0' OR length(closes) > 0 ORDER BY day, rule, severity`,
          format: 'JSONEachRow',
        })
      ).json();
      const final = await (
        await ac.client.query({
          query: `SELECT toString(d) AS day, rule, severity, toString(countIf(k = 0)) AS opened, arraySort(groupArrayIf(toString(duration_ns), k = 1)) AS closes FROM (
              SELECT toDate(opened_at) AS d, rule, severity, 0 AS k, duration_ns FROM ${db}.violations FINAL
              UNION ALL
              SELECT toDate(assumeNotNull(closed_at)) AS d, rule, severity, 1 AS k, duration_ns FROM ${db}.violations FINAL WHERE closed_at IS NOT NULL
            ) GROUP BY d, rule, severity ORDER BY day, rule, severity`,
          format: 'JSONEachRow',
        })
      ).json();
      expect(stored).toEqual(final);
      for (const [f, where] of FILTERS) expectEqual(await trendsOfDashboard(ac, f), await trendsOfFinal(ac, where));
      // the violations page of findings (from their copy, migration 0017), in one statement over FINAL and in two
      // steps: every page as the violations' latest versions give it
      for (const twoStepFrom of [Number.MAX_SAFE_INTEGER, 0]) {
        const q = createAnalyticsQueries(ac, { violationsTwoStepFromRows: twoStepFrom });
        for (const [f, where] of PAGES) {
          const want = await (
            await ac.client.query({
              query: `SELECT violation_key, toString(version) AS version, closed_at IS NULL AS open FROM ${db}.violations FINAL WHERE ${where} ORDER BY opened_at DESC, violation_key`,
              format: 'JSONEachRow',
            })
          ).json<{ violation_key: string; version: string; open: unknown }>();
          for (const [offset, limit] of [[0, 5], [5, 9], [30, 100]] as const) {
            const got = await q.page('violations', { ...f, offset, limit });
            expect({ f, offset, rows: got.rows.map((r) => [r.violation_key, r.open === 'yes']), total: got.total }).toEqual({
              f,
              offset,
              rows: want.slice(offset, offset + limit).map((r) => [r.violation_key, Boolean(Number(r.open))]),
              total: want.length,
            });
          }
        }
      }
      // the copy itself: the findings' latest versions, column by column
      const copy = async (table: string): Promise<unknown[]> =>
        (
          await ac.client.query({
            query: `SELECT violation_key, host, group_id, device, rule, severity, message, opened_at, opened_event_id, opened_position, closed_at, closed_event_id, closed_position, duration_ns, version
              FROM ${db}.${table} FINAL WHERE severity != 'info' ORDER BY host, violation_key`,
            format: 'JSONEachRow',
          })
        ).json();
      expect(await copy('violation_findings')).toEqual(await copy('violations'));
    }
    // the history held what it is said to: several days, closes on a later day than the opening, rows written twice
    const days = await trendsOfFinal(ac, 'true');
    expect(days.length).toBeGreaterThan(10);
    const [later] = await (
      await ac.client.query({ query: `SELECT toString(count()) AS n FROM ${db}.violations FINAL WHERE closed_at IS NOT NULL AND toDate(assumeNotNull(closed_at)) > toDate(opened_at)`, format: 'JSONEachRow' })
    ).json<{ n: string }>();
    expect(Number(later?.n)).toBeGreaterThan(10);
    // with a host filter or a period, from the violations as before: the same figures
    const all = await trendsOfDashboard(ac, {});
    const withHosts = await createAnalyticsQueries(ac).table('trends', { hosts: HOSTS });
    expect(withHosts.map((r) => [r.day, Number(r.opened), Number(r.closed), r.median_close_ns, r.p90_close_ns])).toEqual(
      all.slice(1).map((d) => [d.day, d.opened, d.closed, d.median, d.p90]),
    );
  });
});
