import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createAnalyticsQueries } from '../../services/serve/analytics/analyticsQueries.js';
import { createAnalyticsClient, type AnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { defineFigure, type Measurement } from '../harness.js';
import { DASHBOARD_PANELS } from './analytics.bench.js';
import { copyFleetData, FLEET_HOSTS } from './dashboardData.js';

/**
 * Issue 23: the dashboard's full load (the summary and the page's six panels at once, as dashboard.js asks for them)
 * on the analytics data of the simulated fleet of 1e5 hosts (its first `size` events, built once by the sink and
 * cached; 1e7 from the 1e6 data's rows ×10, see dashboardData.ts), as the service meets it while the sink writes: before each load a sink batch's rows
 * for {@link CHANGED_HOSTS} hosts (each one's latest day row again, one second later, and the checkpoint after), and
 * each load on a fresh queries object (nothing cached in the process). Wall and CPU time (process.cpuUsage: the
 * embedded engine runs in the process) per load, median and p99, each beside the same quantile of `SELECT count()` on
 * the events measured in the same rounds. The first load of the period (every host worked out) is logged apart.
 */
const ROUNDS = 25;
const CHANGED_HOSTS = 100;

const quantile = (xs: readonly number[], q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
};

/** what the sink's next batch writes for `hosts` hosts: each one's latest day row again (one more event, a second later), then the checkpoint */
export const sinkBatch = async (ac: AnalyticsClient, hosts: number): Promise<void> => {
  const db = ac.database;
  await ac.client.command({
    query: `INSERT INTO ${db}.compliance_daily SELECT host, day, opened, closed, max_open, open_at_end, events + 1, first_event_at, addSeconds(last_event_at, 1),
        snapshot_at, snapshot_iommu, facts, (SELECT max(position) FROM ${db}.sink_checkpoints) + 1
      FROM ${db}.compliance_daily FINAL WHERE host IN (SELECT host FROM ${db}.host_activity ORDER BY rand() LIMIT ${hosts}) ORDER BY day DESC LIMIT 1 BY host`,
  });
  await ac.client.command({ query: `INSERT INTO ${db}.sink_checkpoints SELECT 'bench', max(position) + 1, now64(3) FROM ${db}.sink_checkpoints` });
};

const timed = async (f: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> => {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await f();
  const c = process.cpuUsage(c0);
  return { wall: Number(process.hrtime.bigint() - t0) / 1e6, cpu: (c.user + c.system) / 1e3 };
};

export default defineFigure({
  name: 'dashboard',
  issue: 23,
  sizes: { quick: [1e4], full: [2e5, 1e6, 1e7] },
  measure: async (size, ctx): Promise<Measurement[]> => {
    const path = await copyFleetData(size, join(ctx.tmpDir, 'clickhouse'), ctx.log);
    // how the data was made: by the sink, or (1e7) from the 1e6 data's rows (dashboardData.ts)
    if (existsSync(join(path, 'BUILT'))) ctx.log(`data: ${(await readFile(join(path, 'BUILT'), 'utf8')).trim()}`);
    const ac = createAnalyticsClient({ target: { kind: 'embedded', path }, database: 'iommutrail' });
    try {
      const migrated = await timed(() => migrate(ac));
      const load = () => {
        const q = createAnalyticsQueries(ac);
        return Promise.all([q.summary({}), ...DASHBOARD_PANELS.map((p) => q.page(p.name, p.limit === undefined ? {} : { limit: p.limit }))]);
      };
      const first = await timed(load);
      const count = { wall: [] as number[], cpu: [] as number[] };
      const full = { wall: [] as number[], cpu: [] as number[] };
      for (let round = 0; round < ROUNDS; round++) {
        const c = await timed(() => ac.client.query({ query: `SELECT count() FROM ${ac.database}.events`, format: 'JSONEachRow' }).then((r) => r.json()));
        count.wall.push(c.wall);
        count.cpu.push(c.cpu);
        await sinkBatch(ac, CHANGED_HOSTS);
        const l = await timed(load);
        full.wall.push(l.wall);
        full.cpu.push(l.cpu);
      }
      ctx.log(
        `${size} events over ${FLEET_HOSTS} hosts: migration ${migrated.wall.toFixed(0)} ms; first load of the period ${first.wall.toFixed(0)} ms wall, ${first.cpu.toFixed(0)} ms CPU; ` +
          `full load after a batch of ${CHANGED_HOSTS} hosts: wall p50 ${quantile(full.wall, 0.5).toFixed(1)} / p99 ${quantile(full.wall, 0.99).toFixed(1)} ms, ` +
          `CPU p50 ${quantile(full.cpu, 0.5).toFixed(1)} / p99 ${quantile(full.cpu, 0.99).toFixed(1)} ms; SELECT count() wall p50 ${quantile(count.wall, 0.5).toFixed(1)} ms, CPU p50 ${quantile(count.cpu, 0.5).toFixed(1)} ms`,
      );
      const figure = (what: 'wall' | 'cpu', q: number, name: string): Measurement => ({
        label: `dashboard full load (summary + ${DASHBOARD_PANELS.length} panels, fresh queries object, after a sink batch of ${CHANGED_HOSTS} hosts), ${what === 'wall' ? 'wall' : 'CPU'} ${name}`,
        value: quantile(full[what], q),
        unit: 'ms',
        higherIsBetter: false,
        reference: { label: `SELECT count() FROM events, ${what === 'wall' ? 'wall' : 'CPU'} ${name}`, value: quantile(count[what], q), kind: 'raw-limit' },
      });
      return [figure('wall', 0.5, 'p50'), figure('wall', 0.99, 'p99'), figure('cpu', 0.5, 'p50'), figure('cpu', 0.99, 'p99')];
    } finally {
      await ac.close();
    }
  },
});
