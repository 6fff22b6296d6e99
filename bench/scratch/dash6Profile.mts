// dash6 (issue 23, one-off): where a full dashboard load spends its time, statement by statement. usage:
// DB=<copy of a cached fleet db> [NEW=100] npx tsx bench/scratch/dash6Profile.mts <rounds>
// Each statement of a load (summary + 6 panels at once, fresh queries object, after a sink batch of NEW hosts) is run
// alone (a lock in front of the client: chdb runs one statement at a time anyway), its wall and CPU noted.
import { createAnalyticsQueries } from '../../services/serve/analytics/analyticsQueries.js';
import { createAnalyticsClient, type AnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { DASHBOARD_PANELS } from '../figures/analytics.bench.js';
import { sinkBatch } from '../figures/dashboard.bench.js';

const rounds = Number(process.argv[2] ?? 5);
const fresh = Number(process.env.NEW ?? 100);
const ac = createAnalyticsClient({ target: { kind: 'embedded', path: process.env.DB! }, database: 'iommutrail' });
console.log('migrate', (await migrate(ac)).applied);
type Stat = { wall: number[]; cpu: number[]; n: number; rows: number; bytes: number; marks: number };
const stats = new Map<string, Stat>();
let lock: Promise<unknown> = Promise.resolve();
const short = (q: string): string => q.replace(/\s+/g, ' ').slice(0, 160);
// the engine's own counters (chdb has no query_log): rows, bytes and marks (granules) selected, read around each statement
const counters = async (): Promise<Record<string, number>> => {
  const r = await ac.client.query({ query: "SELECT event, value FROM system.events WHERE event IN ('SelectedRows', 'SelectedBytes', 'SelectedMarks')", format: 'JSONEachRow' });
  return Object.fromEntries((await r.json<{ event: string; value: string }>()).map((e) => [e.event, Number(e.value)]));
};
const profiled = (inner: AnalyticsClient): AnalyticsClient => {
  const client = new Proxy(inner.client, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (key === 'insert') {
        return (params: { table: string }) => {
          const run = lock.then(async () => {
            const c0 = process.cpuUsage();
            const t0 = process.hrtime.bigint();
            const r = await (value as (p: unknown) => Promise<unknown>).call(target, params);
            const c = process.cpuUsage(c0);
            const s = stats.get(`insert into ${params.table}`) ?? { wall: [], cpu: [], n: 0, rows: 0, bytes: 0, marks: 0 };
            s.wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
            s.cpu.push((c.user + c.system) / 1e3);
            s.n++;
            stats.set(`insert into ${params.table}`, s);
            return r;
          });
          lock = run.catch(() => undefined);
          return run;
        };
      }
      if (key === 'query' || key === 'command') {
        return (params: { query: string }) => {
          const run = lock.then(async () => {
            const e0 = await counters();
            const c0 = process.cpuUsage();
            const t0 = process.hrtime.bigint();
            // exec: the embedded engine's rows and bytes read come back in its summary (a query's result drops them)
            const r = (await target.exec({ ...params, query: key === 'query' ? `${params.query} FORMAT JSONEachRow` : params.query })) as unknown as { stream: NodeJS.ReadableStream; summary?: { read_rows: string; read_bytes: string; elapsed_ns: string } };
            const chunks: Buffer[] = [];
            for await (const c of r.stream) chunks.push(Buffer.from(c as Buffer));
            const data = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);
            const c = process.cpuUsage(c0);
            const e1 = await counters();
            const s = stats.get(short(params.query)) ?? { wall: [], cpu: [], n: 0, rows: 0, bytes: 0, marks: 0 };
            s.rows += (e1.SelectedRows ?? 0) - (e0.SelectedRows ?? 0);
            s.bytes += (e1.SelectedBytes ?? 0) - (e0.SelectedBytes ?? 0);
            s.marks += (e1.SelectedMarks ?? 0) - (e0.SelectedMarks ?? 0);
            s.wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
            s.cpu.push((c.user + c.system) / 1e3);
            s.n++;
            stats.set(short(params.query), s);
            roundLog.push(`${((c.user + c.system) / 1e3).toFixed(0)}ms ${short(params.query).slice(0, 70)}`);
            return { data, r };
          });
          lock = run.catch(() => undefined);
          return run.then(({ data, r }) => (key === 'query' ? { json: async () => data } : { summary: r.summary }));
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...inner, client };
};
const load = (c: AnalyticsClient) => {
  const q = createAnalyticsQueries(c);
  return Promise.all([q.summary({}), ...DASHBOARD_PANELS.map((p) => q.page(p.name, p.limit === undefined ? {} : { limit: p.limit }))]);
};
await load(ac);
const totals: number[] = [];
const roundLog: string[] = [];
for (let r = 0; r < rounds; r++) {
  await sinkBatch(ac, fresh);
  const c0 = process.cpuUsage();
  await load(profiled(ac));
  const c = process.cpuUsage(c0);
  totals.push((c.user + c.system) / 1e3);
  if (process.env.ROUNDS_LOG !== undefined) console.log(`round ${r}: ${((c.user + c.system) / 1e3).toFixed(0)} ms CPU; ${roundLog.filter((l) => parseInt(l, 10) >= 25).join(' | ')}`);
  roundLog.length = 0;
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const rowsOut = [...stats.entries()].map(([q, s]) => ({ q, n: s.n / rounds, cpu: med(s.cpu), wall: med(s.wall), sumCpu: s.cpu.reduce((a, b) => a + b, 0) / rounds, rows: s.rows / s.n, mb: s.bytes / s.n / 1e6, marks: s.marks / s.n })).sort((a, b) => b.sumCpu - a.sumCpu);
console.log(`load CPU median ${med(totals).toFixed(1)} ms (serialized); statements per load ${rowsOut.reduce((a, r) => a + r.n, 0)}`);
for (const r of rowsOut) console.log(`${r.sumCpu.toFixed(1).padStart(7)} ms/load CPU  (median ${r.cpu.toFixed(1)} cpu, ${r.wall.toFixed(1)} wall, ×${r.n}; selected ${r.rows.toFixed(0)} rows, ${r.marks.toFixed(0)} marks, ${r.mb.toFixed(1)} MB)  ${r.q}`);
await ac.close();
process.exit(0);
