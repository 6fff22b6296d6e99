// dash3 (issue 23): the dashboard's full load (summary + the page's 6 panels at once, as bench/figures/analytics.bench.ts
// makes it) on a prebuilt analytics database, this worktree beside BEFORE (default /work/wt/base, main 6230ada), same
// process and client, rounds alternating; each load on a fresh queries object (the compliance cache missed, as at a
// p99), after one warm-up round. Beside it SELECT count() FROM events (the figure's reference). Wall and CPU
// (process.cpuUsage: chdb runs in the process) per load.
// usage: DB=<path> OUT=bench/results/x.json npx tsx bench/scratch/dash3Measure.mts <rounds>
import { writeFileSync } from 'node:fs';
import { createAnalyticsQueries, type TableName } from '../../services/serve/analytics/analyticsQueries.js';
import { createAnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { migrate } from '../../services/serve/analytics/migrate.js';

type Make = typeof createAnalyticsQueries;
const before = process.env.BEFORE ?? '/work/wt/base';
const { createAnalyticsQueries: baseQueries } = (await import(`${before}/services/serve/analytics/analyticsQueries.ts`)) as { createAnalyticsQueries: Make };
const rounds = Number(process.argv[2] ?? 5);
const db = process.env.DB ?? '/tmp/dash3-db-10000-20000';
const ac = createAnalyticsClient({ target: { kind: 'embedded', path: db }, database: 'iommutrail' });
await migrate(ac);
const PANELS: readonly { readonly name: TableName; readonly limit?: number }[] = [
  { name: 'open-by-rule' }, { name: 'trends' }, { name: 'compliance' }, { name: 'host-compliance', limit: 500 }, { name: 'hosts', limit: 500 }, { name: 'violations', limit: 500 },
];
const q = async (sql: string) => (await ac.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
const load = (make: Make) => {
  const b = make(ac);
  return Promise.all([b.summary({}), ...PANELS.map((p) => b.page(p.name, p.limit === undefined ? {} : { limit: p.limit }))]);
};
const sides: Record<string, () => Promise<unknown>> = { count: () => q('SELECT count() FROM iommutrail.events'), before: () => load(baseQueries), after: () => load(createAnalyticsQueries) };
const wall: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
for (let r = 0; r <= rounds; r++) {
  for (const [k, f] of Object.entries(sides)) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await f();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    if (r > 0) {
      (wall[k] ??= []).push(ms);
      (cpu[k] ??= []).push((c.user + c.system) / 1e3);
    }
  }
}
const qt = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? 0;
};
const [shape] = await q('SELECT count() AS events, (SELECT uniqExact(host) FROM iommutrail.compliance_daily) AS hosts, (SELECT count() FROM iommutrail.violations) AS violations, (SELECT count() FROM iommutrail.group_states) AS group_states FROM iommutrail.events');
const figure = (k: string) => ({ wallMedianMs: qt(wall[k] ?? [], 0.5), wallP99Ms: qt(wall[k] ?? [], 0.99), cpuMedianMs: qt(cpu[k] ?? [], 0.5), cpuP99Ms: qt(cpu[k] ?? [], 0.99) });
const result = {
  figure: 'dashboard full load (summary + 6 panels at once), fresh queries object per load',
  db, rounds, shape, before, at: new Date().toISOString(),
  reference: figure('count'), before_: figure('before'), after: figure('after'),
  ratios: {
    wallMedian: qt(wall.after ?? [], 0.5) / qt(wall.before ?? [], 0.5),
    wallP99: qt(wall.after ?? [], 0.99) / qt(wall.before ?? [], 0.99),
    cpuMedian: qt(cpu.after ?? [], 0.5) / qt(cpu.before ?? [], 0.5),
  },
  samples: { wall, cpu },
};
console.log(JSON.stringify({ ...result, samples: undefined }, null, 1));
if (process.env.OUT) writeFileSync(process.env.OUT, `${JSON.stringify(result, null, 1)}\n`);
process.exit(0);
