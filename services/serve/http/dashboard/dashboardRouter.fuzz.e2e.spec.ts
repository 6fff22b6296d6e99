import express from 'express';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createFleetProjection } from '../../../../projections/index.js';
import { createAnalyticsProjector, type AnalyticsProjector } from '../../analytics/analyticsProjector.js';
import { createAnalyticsQueries, TABLE_NAMES } from '../../analytics/analyticsQueries.js';
import { getClickHouseAnalyticsSink } from '../../analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from '../../analytics/clickhouseClient.js';
import { loadDemoFleet } from '../../analytics/demoFleet.js';
import { migrate } from '../../analytics/migrate.js';
import { chdbAvailability } from '../../analytics/testing/chdbAvailability.js';
import { getSqliteEventStore, type SqliteEventStore } from '../../../shared/eventStore/sqlite/sqliteEventStore.js';
import { describeWithEngine } from '../../../shared/testing/engines.js';
import { problemMiddleware } from '../problem.js';
import { createDashboardRouter } from './dashboardRouter.js';

describeWithEngine('chdb', chdbAvailability(), 'Dashboard API > query-parameter fuzz of every /v1/analytics read route (chdb)', () => {
  let dir: string;
  let store: SqliteEventStore;
  let ac: AnalyticsClient;
  let projector: AnalyticsProjector;
  let server: Server;
  let base: string;
  let known: { hosts: string[]; rules: string[]; severities: string[]; violations: string[] };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-dashfuzz-'));
    store = getSqliteEventStore({ path: join(dir, 'events.db'), durability: 'normal', pollIntervalMs: 20 });
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'clickhouse') } });
    await migrate(ac);
    projector = createAnalyticsProjector({ store, sink: getClickHouseAnalyticsSink(ac), fold: createFleetProjection() });
    await projector.start();
    await loadDemoFleet(store, { events: 1500, hosts: 4 });
    const head = await store.headPosition();
    await vi.waitFor(
      () => {
        if (projector.position() !== head) throw new Error(`sink at ${projector.position()} of ${head}`);
      },
      { timeout: 120_000, interval: 50 },
    );

    const queries = createAnalyticsQueries(ac);
    const app = express();
    app.use(createDashboardRouter({ analytics: queries }));
    app.use(problemMiddleware);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const facets = await queries.facets();
    const violations = (await queries.table('violations', { limit: 20 })).map((r) => String(r.violation_key));
    known = { ...facets, violations };
    expect(violations.length).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await projector?.stop();
    await ac?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hardening #14: arbitrary query parameters on every analytics read route give no 5xx', async () => {
    // each parameter mostly well-formed (so a request gets past validation to the SQL), sometimes garbage
    const garbage = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
      fc.constantFrom('', '0', ',', '-1', '9223372036854775808', 'null'),
    );
    const some = (good: fc.Arbitrary<string>): fc.Arbitrary<string | string[]> =>
      fc.oneof({ arbitrary: good, weight: 4 }, { arbitrary: garbage, weight: 1 }, { arbitrary: fc.array(good, { minLength: 2, maxLength: 3 }), weight: 1 });
    const text = (values: readonly string[]) => fc.oneof(fc.constantFrom(...values), fc.string({ maxLength: 20 }));
    const time = fc.oneof(
      fc.date({ min: new Date('1970-01-01'), max: new Date('2262-04-01'), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.bigInt({ min: 0n, max: 9_223_372_036_854_775_807n }).map(String),
      fc.constantFrom('2024-11-24T00:00:00Z', '0', '9223372036854775807'),
    );
    const query = fc.record(
      {
        host: some(text(known.hosts)),
        rule: some(text(known.rules)),
        severity: some(text(['critical', 'warning', 'info', ...known.severities])),
        from: some(time),
        to: some(time),
        at: some(time),
        subject: some(text(known.hosts)),
        group: some(fc.integer({ min: 0, max: 4_294_967_295 }).map(String)),
        violation: some(text(known.violations)),
        limit: some(fc.integer({ min: 1, max: 100_000 }).map(String)),
        format: some(fc.constantFrom('json', 'csv')),
      },
      { requiredKeys: [] },
    );
    const route = fc.oneof(
      fc.constantFrom('summary', 'facets', 'status', ...TABLE_NAMES.map((t) => `tables/${t}`)),
      fc.string({ minLength: 1, maxLength: 12 }).map((s) => `tables/${encodeURIComponent(s)}`),
    );
    await fc.assert(
      fc.asyncProperty(route, query, async (r, q) => {
        const search = new URLSearchParams();
        for (const [k, v] of Object.entries(q)) for (const one of Array.isArray(v) ? v : [v]) search.append(k, one);
        const url = `${base}/v1/analytics/${r}?${search.toString()}`;
        const res = await fetch(url);
        const body = await res.text();
        expect(res.status, `${url}: ${body.slice(0, 300)}`).toBeLessThan(500);
      }),
      { numRuns: 600 },
    );
  });

  it('hardening #14: every table with each known filter value answers 200 (drill-down subjects included)', async () => {
    for (const name of TABLE_NAMES) {
      for (const [k, v] of [['host', known.hosts[0]], ['subject', known.hosts[0]], ['violation', known.violations[0]], ['from', '2024-01-01T00:00:00Z'], ['to', '2030-01-01T00:00:00Z'], ['group', '1']] as const) {
        const needs = { 'host-groups': ['subject'], 'group-timeline': ['subject', 'group'], 'violation-events': ['violation'] } as Record<string, string[]>;
        const q = new URLSearchParams({ [k]: v ?? '' });
        for (const n of needs[name] ?? []) if (n !== k) q.set(n, n === 'subject' ? (known.hosts[0] ?? '') : n === 'group' ? '1' : (known.violations[0] ?? ''));
        const res = await fetch(`${base}/v1/analytics/tables/${name}?${q.toString()}`);
        expect(res.status, `${name}?${q.toString()}: ${await res.text()}`).toBe(200);
      }
    }
  });
});
