import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries } from './analyticsQueries.js';
import type { DailyCompliance, ViolationRecord } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';
import { RULES_OF_EVERY_SEVERITY, violationLoads } from './testing/violationLoads.js';

const SECOND = 1_000_000_000n;
const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z
const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];
const RULES = RULES_OF_EVERY_SEVERITY;
const LOADS = 9;
const STEPS_PER_LOAD = 40;
/** each host reports a day, so that it is a row of the hosts table */
const DAYS: DailyCompliance[] = HOSTS.map((host, i) => ({ host, day: '2024-11-24', opened: 0, closed: 0, maxOpen: 0, openAtEnd: 0, events: 1n, firstNs: D1, lastNs: D1 + BigInt(LOADS * STEPS_PER_LOAD + i) * SECOND, snapshot: { timeNs: D1, iommu: true }, version: 1n }));

const generate = (): ViolationRecord[][] => violationLoads({ seed: 23, hosts: HOSTS, rules: RULES, loads: LOADS, stepsPerLoad: STEPS_PER_LOAD, startNs: D1 });

describeWithEngine('chdb', chdbAvailability(), 'Analytics > the open violations from their pre-aggregate (issue 23, dash8)', () => {
  let dir: string;
  let ac: AnalyticsClient;
  const db = 'openviolations';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-openv-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: db });
    await migrate(ac);
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const query = async <T>(sql: string): Promise<T[]> => (await ac.client.query({ query: sql, format: 'JSONEachRow' })).json<T>();
  /** the open violations per host, rule and severity counted over every violation's latest version, once the pre-aggregate's (asserted) equal them */
  const openOfFinalAndStored = async (c: AnalyticsClient): Promise<{ host: string; rule: string; severity: string; open: string }[]> => {
    const of = async (sql: string) => (await c.client.query({ query: sql, format: 'JSONEachRow' })).json<{ host: string; rule: string; severity: string; open: string }>();
    const finalOpen = await of(
      `SELECT host, rule, severity, toString(count()) AS open FROM ${c.database}.violations FINAL WHERE closed_at IS NULL GROUP BY host, rule, severity ORDER BY host, rule, severity`,
    );
    const stored = await of(
      `SELECT host, rule, severity, toString(uniqExactMerge(seen) - uniqExactMerge(closed)) AS open FROM ${c.database}.host_rule_occurrences GROUP BY host, rule, severity HAVING open != '0' ORDER BY host, rule, severity`,
    );
    expect(stored).toEqual(finalOpen);
    return finalOpen;
  };

  /** the hosts table's open violations per host (count, critical, since when (whole seconds here), rules) equal those counted over violations FINAL */
  const expectHostsPageOfFinal = async (c: AnalyticsClient): Promise<void> => {
    const perHost = await (
      await c.client.query({
        query: `SELECT host, toString(count()) AS open, toString(countIf(severity = 'critical')) AS critical, concat(formatDateTime(min(opened_at), '%Y-%m-%dT%H:%i:%S', 'UTC'), 'Z') AS since, arraySort(groupUniqArray(rule)) AS rules
          FROM ${c.database}.violations FINAL WHERE severity != 'info' AND closed_at IS NULL GROUP BY host`,
        format: 'JSONEachRow',
      })
    ).json<{ host: string; open: string; critical: string; since: string; rules: string[] }>();
    const hosts = await createAnalyticsQueries(c).page('hosts', { limit: 100 });
    expect(hosts.rows.map((r) => r.host).sort()).toEqual(HOSTS);
    for (const row of hosts.rows) {
      const want = perHost.find((r) => r.host === row.host);
      expect([row.host, Number(row.open_violations), Number(row.open_critical), row.open_since_utc ?? null, row.open_rules]).toEqual([
        row.host,
        Number(want?.open ?? 0),
        Number(want?.critical ?? 0),
        want?.since ?? null,
        want?.rules ?? [],
      ]);
    }
  };

  it('dash8 #23: given loads of violations opening, closing, opening again, written again after a restart (also an open row after its closed row) and merged by force, when the dashboard counts the open ones up to now (and the violations panel its total, the trends their days, the compliance each violation’s span), then its figures and the pre-aggregate equal a count over violations FINAL', async () => {
    const sink = getClickHouseAnalyticsSink(ac);
    const loads = generate();
    await sink.write({ events: [], violations: [], groupStates: [], compliance: DAYS, checkpoint: { subscriber: 'test', position: 0n } });
    let written = 0;
    for (const [i, rows] of loads.entries()) {
      const checkpoint = { subscriber: 'test', position: rows.at(-1)?.version ?? 0n };
      // in two batches, then, every third load, the two written again as one (a restart replaying from an older
      // checkpoint, cut at other boundaries): the second half's closed rows are then older than the first half's
      // open rows written again
      const half = Math.floor(rows.length / 2);
      await sink.write({ events: [], violations: rows.slice(0, half), groupStates: [], compliance: [], checkpoint });
      await sink.write({ events: [], violations: rows.slice(half), groupStates: [], compliance: [], checkpoint });
      written += rows.length;
      if (i % 3 === 1) {
        await sink.write({ events: [], violations: rows, groupStates: [], compliance: [], checkpoint });
        written += rows.length;
      }
      if (i % 4 === 3) {
        await ac.client.command({ query: `OPTIMIZE TABLE ${db}.violations FINAL` });
        await ac.client.command({ query: `OPTIMIZE TABLE ${db}.host_rule_occurrences FINAL` });
      }

      const finalOpen = await openOfFinalAndStored(ac);

      const q = createAnalyticsQueries(ac);
      const findings = finalOpen.filter((r) => r.severity !== 'info');
      const sum = (rs: readonly { open: string }[]): number => rs.reduce((a, r) => a + Number(r.open), 0);
      const byRule = (rs: typeof finalOpen) =>
        [...new Set(rs.map((r) => `${r.rule}/${r.severity}`))].map((k) => {
          const of = rs.filter((r) => `${r.rule}/${r.severity}` === k);
          return { rule: of[0]?.rule, severity: of[0]?.severity, open: sum(of) };
        });
      const order = (xs: readonly { rule?: string | undefined; severity?: string | undefined; open: number }[]) =>
        [...xs].sort((a, b) => b.open - a.open || String(a.rule).localeCompare(String(b.rule)) || String(a.severity).localeCompare(String(b.severity)));

      const summary = await q.summary({});
      expect(summary.openViolations).toBe(sum(findings));
      expect(summary.hostsWithOpenViolations).toBe(new Set(findings.map((r) => r.host)).size);
      expect(order(summary.openByRuleAndSeverity)).toEqual(order(byRule(findings)));
      const withInfo = await q.summary({ includeInfo: true });
      expect(withInfo.openViolations).toBe(sum(finalOpen));
      expect(order(withInfo.openByRuleAndSeverity)).toEqual(order(byRule(finalOpen)));
      const some = await q.summary({ hosts: ['h2', 'h4'], rules: ['tenant-mixing', 'unsafe-interrupts'] });
      expect(some.openViolations).toBe(sum(findings.filter((r) => ['h2', 'h4'].includes(r.host) && ['tenant-mixing', 'unsafe-interrupts'].includes(r.rule))));
      // the open-by-rule panel: the hosts of each rule and severity too
      const panel = await q.table('open-by-rule', {});
      expect(panel.map((r) => [r.rule, r.severity, Number(r.open), Number(r.hosts)]).sort()).toEqual(
        byRule(findings)
          .map((r) => [r.rule, r.severity, r.open, new Set(findings.filter((f) => f.rule === r.rule && f.severity === r.severity).map((f) => f.host)).size])
          .sort(),
      );

      // the violations panel's total: every occurrence in scope, open or closed
      const occurrences = async (where: string): Promise<number> => Number((await query<{ n: string }>(`SELECT toString(count()) AS n FROM ${db}.violations FINAL WHERE ${where}`))[0]?.n);
      expect((await q.page('violations', { limit: 5 })).total).toBe(await occurrences("severity != 'info'"));
      expect((await q.page('violations', { limit: 5, includeInfo: true, host: 'h3' })).total).toBe(await occurrences("host = 'h3'"));
      expect((await q.page('violations', { limit: 5, rules: ['tenant-mixing'], openOnly: true })).total).toBe(await occurrences("rule = 'tenant-mixing' AND closed_at IS NULL"));

      // the time to close over the closed violations' latest versions
      const [closed] = await query<{ closed: string; p50: string; p90: string; max: string }>(
        `SELECT toString(count()) AS closed, toString(toUInt64(quantileExact(0.5)(duration_ns))) AS p50, toString(toUInt64(quantileExact(0.9)(duration_ns))) AS p90, toString(max(duration_ns)) AS max
          FROM ${db}.violations FINAL WHERE severity != 'info' AND closed_at IS NOT NULL`,
      );
      expect([summary.timeToClose.closed, summary.timeToClose.p50Ns, summary.timeToClose.p90Ns, summary.timeToClose.maxNs]).toEqual(
        Number(closed?.closed) === 0 ? [0, null, null, null] : [Number(closed?.closed), closed?.p50, closed?.p90, closed?.max],
      );

      // the trends panel (every violation on one day here): opened, closed and the time to close of that day
      const [day] = await query<{ d: string; opened: string; closed: string; median: string; p90: string }>(
        `SELECT toString(toDate(opened_at)) AS d, toString(count()) AS opened, toString(countIf(closed_at IS NOT NULL)) AS closed,
            toString(toUInt64(ifNull(toFloat64(quantileExactIf(0.5)(duration_ns, closed_at IS NOT NULL)), 0.))) AS median, toString(toUInt64(ifNull(toFloat64(quantileExactIf(0.9)(duration_ns, closed_at IS NOT NULL)), 0.))) AS p90
          FROM ${db}.violations FINAL WHERE severity != 'info' GROUP BY d`,
      );
      const trends = await q.table('trends', {});
      expect(trends.map((r) => [r.day, Number(r.opened), Number(r.closed), r.median_close_ns, r.p90_close_ns])).toEqual([[day?.d, Number(day?.opened), Number(day?.closed), day?.median, day?.p90]]);

      await expectHostsPageOfFinal(ac);
    }
    // the loads held what they are said to: closes, reopened conditions, occurrences closed by their opening event
    const all = loads.flat();
    expect(all.filter((v) => v.closed !== undefined).length).toBeGreaterThan(50);
    expect(all.filter((v) => v.closed !== undefined && v.closed.eventId === v.opened.eventId).length).toBeGreaterThan(5);
    const conditions = new Map<string, Set<string>>();
    for (const v of all) conditions.set(v.message, (conditions.get(v.message) ?? new Set()).add(v.key));
    expect([...conditions.values()].filter((keys) => keys.size > 1).length).toBeGreaterThan(5);
    expect(written).toBeGreaterThan(all.length);
  });

  it('dash9 #23: given loads written as the sink writes them (checkpoint after each load; a restart replays a load from the checkpoint before it, an open row after its closed row) and the pre-aggregate compacted now and then (after half a load too), when the dashboard counts, then its figures equal counts over violations FINAL, and the sets keep only the occurrences open or closed after the last compaction\'s checkpoint', async () => {
    const cdb = 'compacted';
    // another database of the same engine (one data directory per process)
    const cac: AnalyticsClient = { ...ac, database: cdb };
    {
      await migrate(cac);
      const sink = getClickHouseAnalyticsSink(cac);
      const loads = generate();
      const cq = async <T>(sql: string): Promise<T[]> => (await cac.client.query({ query: sql, format: 'JSONEachRow' })).json<T>();
      let checkpoint = 0n;
      let compactedAt: bigint | undefined;
      await sink.write({ events: [], violations: [], groupStates: [], compliance: DAYS, checkpoint: { subscriber: 'test', position: 0n } });
      const write = (violations: ViolationRecord[]) => sink.write({ events: [], violations, groupStates: [], compliance: [], checkpoint: { subscriber: 'test', position: checkpoint } });
      for (const [i, rows] of loads.entries()) {
        const half = Math.floor(rows.length / 2);
        await write(rows.slice(0, half));
        // compacted half way through a load: its first half's rows are past the checkpoint
        if (i % 3 === 0) {
          await createAnalyticsQueries(cac).compactOccurrences();
          compactedAt = checkpoint;
        }
        await write(rows.slice(half));
        // a restart before the checkpoint: the load again from the checkpoint before it, as one batch (also after a
        // compaction half way through it: its closes past the checkpoint must not have been settled)
        if (i % 3 !== 2) await write(rows);
        checkpoint = rows.at(-1)?.version ?? checkpoint;
        await write([]);
        if (i % 3 === 2) {
          await createAnalyticsQueries(cac).compactOccurrences();
          compactedAt = checkpoint;
        }
        if (i % 4 === 3) await cac.client.command({ query: `OPTIMIZE TABLE ${cdb}.host_rule_occurrences FINAL` });

        const finalOpen = await openOfFinalAndStored(cac);
        const q = createAnalyticsQueries(cac);
        const summary = await q.summary({ includeInfo: true });
        expect(summary.openViolations).toBe(finalOpen.reduce((a, r) => a + Number(r.open), 0));
        const [all] = await cq<{ n: string }>(`SELECT toString(count()) AS n FROM ${cdb}.violations FINAL`);
        expect((await q.page('violations', { limit: 5, includeInfo: true })).total).toBe(Number(all?.n));
        // bounded: the sets hold the occurrences open or closed after the last compaction's checkpoint, not all
        const [kept] = await cq<{ n: string }>(`SELECT toString(sum(k)) AS n FROM (SELECT uniqExactMerge(seen) AS k FROM ${cdb}.host_rule_occurrences GROUP BY host, rule, severity)`);
        const [live] = await cq<{ n: string }>(
          `SELECT toString(count()) AS n FROM ${cdb}.violations FINAL WHERE closed_at IS NULL OR version > ${(compactedAt ?? 0n).toString()}`,
        );
        expect(Number(kept?.n)).toBe(Number(live?.n));
        // the openings (migration 0014) are kept as the sets are, and give each host's open since as FINAL does
        const [openings] = await cq<{ n: string }>(`SELECT toString(sum(length(o))) AS n FROM (SELECT groupUniqArrayMerge(opened) AS o FROM ${cdb}.host_rule_occurrences GROUP BY host, rule, severity)`);
        expect(Number(openings?.n)).toBe(Number(live?.n));
        await expectHostsPageOfFinal(cac);
      }
      // the compactions took something out: fewer kept than ever seen
      const [[kept], [all]] = await Promise.all([
        cq<{ n: string }>(`SELECT toString(sum(k)) AS n FROM (SELECT uniqExactMerge(seen) AS k FROM ${cdb}.host_rule_occurrences GROUP BY host, rule, severity)`),
        cq<{ n: string }>(`SELECT toString(count()) AS n FROM ${cdb}.violations FINAL`),
      ]);
      expect(Number(kept?.n)).toBeLessThan(Number(all?.n) / 2);
    }
  });
});
