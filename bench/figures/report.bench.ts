import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createFleetProjection } from '../../projections/index.js';
import { createAnalyticsProjector } from '../../services/serve/analytics/analyticsProjector.js';
import { createAnalyticsQueries } from '../../services/serve/analytics/analyticsQueries.js';
import { getClickHouseAnalyticsSink } from '../../services/serve/analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { FINDING_SEVERITIES } from '../../services/serve/analytics/compliance.js';
import { loadDemoFleet } from '../../services/serve/analytics/demoFleet.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { createApiClient } from '../../services/shared/client/apiClient.js';
import { gatherReport } from '../../services/cli/commands/report.js';
import { getSqliteEventStore } from '../../services/shared/eventStore/sqlite/sqliteEventStore.js';
import { createDashboardRouter } from '../../services/serve/http/dashboard/dashboardRouter.js';
import { problemMiddleware } from '../../services/serve/http/problem.js';
import { defineFigure } from '../harness.js';

/**
 * Issue 21: `iommutrail report`'s data on the demo fleet (compliance, trends, violations, every finding's
 * story with its evidence events) through the dashboard API, beside the same rows read by raw SELECTs on the
 * same engine in the same run (the findings' violation rows and their evidence events: what the report cannot
 * do without). The stories come a page of thousands per request; the log also prints the stories asked one
 * per finding (the way before), measured in the same run. No signed log here: the proofs are left out of both.
 */
const ROUNDS = 3;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

export default defineFigure({
  name: 'report',
  issue: 21,
  sizes: { quick: [4_000], full: [20_000] },
  async measure(size, ctx) {
    const store = getSqliteEventStore({ path: join(ctx.tmpDir, 'events.db'), durability: 'normal', pollIntervalMs: 20 });
    const ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(ctx.tmpDir, 'clickhouse') } });
    const projector = createAnalyticsProjector({ store, sink: getClickHouseAnalyticsSink(ac), fold: createFleetProjection() });
    let server: Server | undefined;
    try {
      await migrate(ac);
      await projector.start();
      await loadDemoFleet(store, { events: size });
      const head = await store.headPosition();
      while (projector.position() < head) await new Promise((resolve) => setTimeout(resolve, 100));
      const app = express();
      app.use(createDashboardRouter({ analytics: createAnalyticsQueries(ac) }));
      app.use(problemMiddleware);
      server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      const api = createApiClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 'bench' });
      const db = ac.database;

      const report: number[] = [];
      const raw: number[] = [];
      const oneByOne: number[] = [];
      let findings = 0;
      let evidence = 0;
      for (let round = 0; round <= ROUNDS; round++) {
        let t0 = process.hrtime.bigint();
        const data = await gatherReport(api, { hosts: [], service: 'bench', trust: { keySource: 'none (bench)' } });
        const tReport = ms(t0);
        findings = data.findings.length;
        evidence = data.findings.reduce((n, f) => n + f.events.length, 0);

        // the same rows by raw SELECTs: the findings' violations, then their evidence events
        t0 = process.hrtime.bigint();
        const rs = await ac.client.query({
          query: `SELECT * FROM ${db}.violations FINAL WHERE severity IN {s:Array(String)} ORDER BY opened_at DESC`,
          query_params: { s: FINDING_SEVERITIES },
          format: 'JSONEachRow',
        });
        const violations = await rs.json<{ opened_event_id: string; closed_event_id: string | null; evidence_event_ids: string[] }>();
        const ids = [...new Set(violations.flatMap((v) => [v.opened_event_id, ...v.evidence_event_ids, ...(v.closed_event_id ? [v.closed_event_id] : [])]))];
        await (await ac.client.query({ query: `SELECT * FROM ${db}.events FINAL WHERE event_id IN {ids:Array(String)}`, query_params: { ids }, format: 'JSONEachRow' })).json();
        const tRaw = ms(t0);

        // the way before: one story request per finding, four at a time
        t0 = process.hrtime.bigint();
        const keys = data.findings.map((f) => String(f.violation.violation_key));
        for (let i = 0; i < keys.length; i += 4) {
          await Promise.all(keys.slice(i, i + 4).map((k) => api.get(`/v1/analytics/violations/${encodeURIComponent(k)}/story`)));
        }
        const tOne = ms(t0);
        if (round > 0) {
          report.push(tReport);
          raw.push(tRaw);
          oneByOne.push(tOne);
        }
      }
      ctx.log(
        `${size} demo events, ${findings} findings, ${evidence} evidence events: report data median ${median(report).toFixed(0)} ms ` +
          `(stories one per finding, as before: ${median(oneByOne).toFixed(0)} ms for the stories alone) vs raw SELECTs ${median(raw).toFixed(0)} ms`,
      );
      return [
        {
          label: 'report data (compliance, trends, violations, every finding’s story, paged), median',
          value: median(report),
          unit: 'ms',
          higherIsBetter: false,
          reference: { label: 'raw SELECT of the findings’ violations and evidence events, median', value: median(raw), kind: 'raw-limit' },
        },
        {
          label: 'findings’ stories one request per finding (before), median',
          value: median(oneByOne),
          unit: 'ms',
          higherIsBetter: false,
          reference: { label: 'raw SELECT of the findings’ violations and evidence events, median', value: median(raw), kind: 'raw-limit' },
        },
      ];
    } finally {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await projector.stop();
      await ac.close();
      await store.close();
    }
  },
});
