// dash6 (issue 23, one-off A/B, dash5's; usage: DB=<copy of a cached fleet db> NEW=100 [BEFORE=<a checkout of the reference commit>] [OUT=x.json] npx tsx bench/scratch/dash6Measure.mts <rounds>): the dashboard's full load (summary + 6 panels at once) on a prebuilt database, AFTER (this worktree) beside
// BEFORE (default /work/main), same process and client, rounds alternating, each load on a fresh queries object; before
// each round (with NEW=n) n hosts get a new day row version and the sink checkpoint moves (what a sink batch writes)
import { writeFileSync } from 'node:fs';
import { createAnalyticsQueries, type TableName } from '../../services/serve/analytics/analyticsQueries.js';
import { createAnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
type Make = typeof createAnalyticsQueries;
const before = process.env.BEFORE ?? '/work/main';
const { createAnalyticsQueries: baseQueries } = (await import(`${before}/services/serve/analytics/analyticsQueries.ts`)) as { createAnalyticsQueries: Make };
const rounds = Number(process.argv[2] ?? 5);
const fresh = Number(process.env.NEW ?? 0);
const ac = createAnalyticsClient({ target: { kind: 'embedded', path: process.env.DB! }, database: 'iommutrail' });
const t0m = Date.now(); console.log('migrate', (await migrate(ac)).applied, Date.now() - t0m, 'ms');
const PANELS: { name: TableName; limit?: number }[] = [
  { name: 'open-by-rule' }, { name: 'trends' }, { name: 'compliance' }, { name: 'host-compliance', limit: 500 }, { name: 'hosts', limit: 500 }, { name: 'violations', limit: 500 },
];
const q = async (sql: string) => (await ac.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
const load = (make: Make) => { const b = make(ac); return Promise.all([b.summary({}), ...PANELS.map((p) => b.page(p.name, p.limit === undefined ? {} : { limit: p.limit }))]); };
const newBatch = async () => {
  if (fresh === 0) return;
  // n hosts' latest day row again, one second later, as the sink's next batch would write it, then its checkpoint
  await ac.client.command({ query: `INSERT INTO iommutrail.compliance_daily SELECT host, day, opened, closed, max_open, open_at_end, events + 1, first_event_at,
      addSeconds(last_event_at, 1), snapshot_at, snapshot_iommu, facts, (SELECT max(position) FROM iommutrail.sink_checkpoints) + 1
    FROM iommutrail.compliance_daily FINAL WHERE host IN (SELECT host FROM (SELECT DISTINCT host FROM iommutrail.compliance_daily) ORDER BY rand() LIMIT ${fresh}) ORDER BY day DESC LIMIT 1 BY host` });
  await ac.client.command({ query: `INSERT INTO iommutrail.sink_checkpoints SELECT 'bench', max(position) + 1, now64(3) FROM iommutrail.sink_checkpoints` });
};
const sides: Record<string, () => Promise<unknown>> = { count: () => q('SELECT count() FROM iommutrail.events'), before: () => load(baseQueries), warm: () => load(createAnalyticsQueries), after: () => load(createAnalyticsQueries) };
// warm: an unmeasured load of this worktree's code before its measured one, so that it starts from its own stored overview (the before side's loads store none)
const wall: Record<string, number[]> = {}; const cpu: Record<string, number[]> = {};
for (let r = 0; r <= rounds; r++) {
  for (const [k, f] of Object.entries(sides)) {
    if (k !== 'count') await newBatch();
    const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
    await f();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6; const c = process.cpuUsage(c0);
    if (r > 0) { (wall[k] ??= []).push(ms); (cpu[k] ??= []).push((c.user + c.system) / 1e3); }
  }
}
const qt = (xs: readonly number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? 0; };
const [shape] = await q('SELECT count() AS events, (SELECT uniqExact(host) FROM iommutrail.compliance_daily) AS hosts, (SELECT count() FROM iommutrail.violations) AS violations FROM iommutrail.events');
const figure = (k: string) => ({ wallMedianMs: qt(wall[k] ?? [], 0.5), wallP99Ms: qt(wall[k] ?? [], 0.99), cpuMedianMs: qt(cpu[k] ?? [], 0.5), cpuP99Ms: qt(cpu[k] ?? [], 0.99) });
const result = { figure: 'dashboard full load (summary + 6 panels at once), fresh queries object per load', db: process.env.DB, rounds, newHostsPerLoad: fresh, shape, before, at: new Date().toISOString(),
  reference: figure('count'), before_: figure('before'), after: figure('after'),
  ratios: { wallMedian: qt(wall.after!, 0.5) / qt(wall.before!, 0.5), wallP99: qt(wall.after!, 0.99) / qt(wall.before!, 0.99), cpuMedian: qt(cpu.after!, 0.5) / qt(cpu.before!, 0.5), cpuP99: qt(cpu.after!, 0.99) / qt(cpu.before!, 0.99) },
  samples: { wall, cpu } };
console.log(JSON.stringify({ ...result, samples: undefined }, null, 1));
if (process.env.OUT) writeFileSync(process.env.OUT, `${JSON.stringify(result, null, 1)}\n`);
process.exit(0);
