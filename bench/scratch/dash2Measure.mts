// dash2 (issue 23): the summary's remaining costs at many hosts, this worktree beside /work/wt/base, same run.
// usage: npx tsx bench/scratch/dash2Measure.mts <hosts> <events> <rounds>
import { existsSync } from 'node:fs';
import { createFleetProjection } from '../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../schemas/index.js';
import { createAnalyticsQueries } from '../../services/serve/analytics/analyticsQueries.js';
import { getClickHouseAnalyticsSink } from '../../services/serve/analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { createFleetAnalyzer } from '../../services/serve/analytics/fleetAnalyzer.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { simulateFleet } from '../../services/simulator/simulateFleet.js';

// the before: main 9ece1e7's module (`git archive 9ece1e7 services schemas projections replay | tar -x -C $BEFORE`, with
// node_modules linked), loaded at run time so the type check does not follow it; the same client
const before = process.env.BEFORE ?? '/tmp/dash2-before';
const { createAnalyticsQueries: baseQueries } = (await import(`${before}/services/serve/analytics/analyticsQueries.js`)) as { createAnalyticsQueries: typeof createAnalyticsQueries };
const [hosts, events, rounds] = process.argv.slice(2).map(Number) as [number, number, number];
const path = `/tmp/dash2-db-${hosts}-${events}`;
const fresh = !existsSync(path);
const ac = createAnalyticsClient({ target: { kind: 'embedded', path }, database: 'iommutrail' });
await migrate(ac);
if (fresh) {
  const sink = getClickHouseAnalyticsSink(ac);
  const analyzer = createFleetAnalyzer(createFleetProjection());
  let position = 0n;
  let batch: RecordedEvent[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const out = analyzer.apply(batch);
    await sink.write({ ...out, checkpoint: { subscriber: 'bench', position: analyzer.position() } });
    batch = [];
  };
  const runs = Math.ceil(hosts / 2000);
  for (let run = 0; run < runs; run++) {
    const runHosts = Math.min(2000, hosts - run * 2000);
    const n = Math.round((events * (run + 1)) / runs) - Math.round((events * run) / runs);
    for (const input of simulateFleet({ events: n, hosts: runHosts, seed: 42 + run, mistakeRate: 0.1, hostPrefix: `sim${run}-` })) {
      position++;
      batch.push({ event: input as unknown as IommuEvent, streamName: `h`, streamPosition: position, globalPosition: position });
      if (batch.length >= 2000) await flush();
    }
  }
  await flush();
  console.log('built', path);
}
const q = async (sql: string) => (await ac.client.query({ query: sql, format: 'JSONEachRow' })).json();
const time = async (f: () => Promise<unknown>): Promise<number> => { const t = process.hrtime.bigint(); await f(); return Number(process.hrtime.bigint() - t) / 1e6; };
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cands: Record<string, () => Promise<unknown>> = {
  base: () => baseQueries(ac).summary({}),
  new: () => createAnalyticsQueries(ac).summary({}),
  baseLoad: () => { const b = baseQueries(ac); return Promise.all([b.summary({}), b.page('host-compliance', { limit: 500 }), b.page('compliance', {}), b.page('hosts', { limit: 500 })]); },
  newLoad: () => { const b = createAnalyticsQueries(ac); return Promise.all([b.summary({}), b.page('host-compliance', { limit: 500 }), b.page('compliance', {}), b.page('hosts', { limit: 500 })]); },
  groupsDistinct: () => q(`SELECT count() AS groups FROM (SELECT DISTINCT host, group_id FROM iommutrail.group_states)`),
  groupsDaily: () => q(`SELECT sum(groups) FROM iommutrail.compliance_daily`),
  select1: () => q('SELECT 1'),
  gA: () => q(`SELECT count() AS groups FROM (SELECT host, group_id FROM iommutrail.group_states GROUP BY host, group_id) SETTINGS optimize_aggregation_in_order = 1`),
  gB: () => q(`SELECT sum(n) AS groups FROM (SELECT host, uniqExact(group_id) AS n FROM iommutrail.group_states GROUP BY host) SETTINGS optimize_aggregation_in_order = 1`),
  gC: () => q(`SELECT count() AS groups FROM (SELECT DISTINCT host, group_id FROM iommutrail.group_states) SETTINGS optimize_distinct_in_order = 1`),
  gD: () => q(`SELECT count() AS groups FROM (SELECT DISTINCT host, group_id FROM iommutrail.group_states WHERE global_position > 0)`),
  groupsPerHost: () => q(`SELECT sum(n) AS groups FROM (SELECT uniqExact(group_id) AS n FROM iommutrail.group_states GROUP BY host)`),
};
const pick = (process.env.ONLY ?? Object.keys(cands).join(',')).split(',');
console.log('rows', await q('SELECT count() c, uniqExact(host) h FROM iommutrail.group_states'), await q('SELECT countIf(facts = 0) f, count() n, min(day), max(day) FROM iommutrail.compliance_daily'));
const times: Record<string, number[]> = {};
for (let r = 0; r <= rounds; r++) for (const k of pick) { const t = await time(cands[k]!); if (r > 0) (times[k] ??= []).push(t); }
for (const k of pick) if (times[k]) console.log(k.padEnd(16), 'median ms', med(times[k]!).toFixed(1));
if (times.base && times.new) console.log('summary new/base', (med(times.new) / med(times.base)).toFixed(3));
if (times.baseLoad && times.newLoad) console.log('load new/base', (med(times.newLoad) / med(times.baseLoad)).toFixed(3));
if (process.env.TRACE) {
  const orig = ac.client.query.bind(ac.client);
  const log: string[] = [];
  const seen: { query: string }[] = [];
  const t0 = process.hrtime.bigint();
  (ac.client as { query: unknown }).query = async (a: { query: string }) => { seen.push(a); const s = Number(process.hrtime.bigint() - t0) / 1e6; const r = await orig(a as never); const j = await r.json(); log.push(`${s.toFixed(0)}..${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ${a.query.replace(/\s+/g, ' ').slice(0, 110)}`); return { json: async () => j }; };
  await (process.env.TRACE === 'base' ? baseQueries(ac) : createAnalyticsQueries(ac)).summary({});
  console.log(log.join('\n'));
  if (process.env.SERIAL) {
    let total = 0;
    for (const a of seen) { const t = await time(async () => (await orig(a as never)).json()); total += t; console.log(t.toFixed(1).padStart(7), a.query.replace(/\s+/g, ' ').slice(0, 90)); }
    console.log('serial total', total.toFixed(0));
  }
}
process.exit(0);
