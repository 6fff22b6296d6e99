import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createFleetProjection, foldEventsAsync } from '../../../projections/index.js';
import { getSqliteEventStore, type SqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import type { RecordedEvent } from '../../../schemas/index.js';
import { createAnalyticsProjector } from './analyticsProjector.js';
import { createAnalyticsQueries } from './analyticsQueries.js';
import type { AnalyticsSink } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { loadDemoFleet } from './demoFleet.js';
import { migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';
import { independentShare } from './testing/independentCompliance.js';
import { formatTime } from './humanize.js';

const count = async (ac: AnalyticsClient, table: string): Promise<number> => {
  const rs = await ac.client.query({ query: `SELECT count() AS n FROM ${ac.database}.${table} FINAL`, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: string }>())[0]?.n);
};

/** what the tables must hold: derived from the pure fold over the whole store, independently of the sink */
const expected = async (store: SqliteEventStore): Promise<{ events: number; violations: number; open: number; hostDays: number; groups: number }> => {
  const state = await foldEventsAsync(createFleetProjection(), store.readAll());
  const hostDays = new Set<string>();
  let events = 0;
  for await (const r of store.readAll()) {
    events++;
    hostDays.add(`${r.event.host}/${new Date(Number(BigInt(r.event.time) / 1_000_000n)).toISOString().slice(0, 10)}`);
  }
  const open = Object.keys(state.violations.open).length;
  const groups = Object.values(state.hosts).reduce((n, h) => n + Object.keys(h.groups).length, 0);
  return { events, violations: open + state.violations.closed.length + state.violations.closedDropped, open, hostDays: hostDays.size, groups };
};

/** a sink that "crashes" from its n-th write on, after the table inserts and before the checkpoint (until the process dies) */
const crashingSink = (inner: AnalyticsSink, crashFromWrite: number): AnalyticsSink => {
  let writes = 0;
  return {
    ...inner,
    write: async (batch) => {
      writes++;
      if (writes >= crashFromWrite) {
        await inner.write({ ...batch, checkpoint: { subscriber: 'scratch', position: 0n } });
        throw new Error('simulated crash between the table inserts and the checkpoint');
      }
      return inner.write(batch);
    },
  };
};

describeWithEngine('chdb', chdbAvailability(), 'Analytics > projector (SQLite store → fleet fold → chdb)', () => {
  let dir: string;
  let store: SqliteEventStore;
  let ac: AnalyticsClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-projector-'));
    store = getSqliteEventStore({ path: join(dir, 'events.db'), durability: 'normal', pollIntervalMs: 20 });
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'clickhouse') }, database: 'projtest' });
    await migrate(ac);
    await loadDemoFleet(store, { events: 3000, hosts: 4, seed: 7 });
  });
  afterAll(async () => {
    await ac.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('given a crash between inserts and checkpoint, when the projector restarts, then every table holds exactly the fold’s rows', async () => {
    const sink = getClickHouseAnalyticsSink(ac);
    const first = createAnalyticsProjector({ store, sink: crashingSink(sink, 3), fold: createFleetProjection() }, { batchSize: 500, retry: { initialMs: 60_000 } });
    await first.start();
    await vi.waitFor(() => expect(first.status()).toMatchObject({ state: 'retrying', lastError: expect.stringMatching(/simulated crash/) as unknown }), { timeout: 30_000 });
    await first.stop();
    expect(first.status().state).toBe('stopped');
    expect(await sink.readCheckpoint('analytics')).toBe(1000n);

    const second = createAnalyticsProjector({ store, sink, fold: createFleetProjection() }, { batchSize: 500 });
    await second.start();
    await second.caughtUp();
    await second.stop();

    const want = await expected(store);
    expect(want.violations).toBeGreaterThan(0);
    expect(await count(ac, 'events')).toBe(want.events);
    expect(await count(ac, 'violations')).toBe(want.violations);
    expect(await count(ac, 'compliance_daily')).toBe(want.hostDays);
    expect(await sink.readCheckpoint('analytics')).toBe(await store.headPosition());
  });

  it('given new events after a stop, when the projector restarts, then only they are added and the counts stay exact', async () => {
    await loadDemoFleet(store, { events: 3000, hosts: 6, seed: 8, hostPrefix: 'late-' });
    const sink = getClickHouseAnalyticsSink(ac);
    const projector = createAnalyticsProjector({ store, sink, fold: createFleetProjection() }, { batchSize: 400 });
    await projector.start();
    await projector.caughtUp();
    await projector.stop();

    const want = await expected(store);
    expect(await count(ac, 'events')).toBe(want.events);
    expect(await count(ac, 'violations')).toBe(want.violations);
    expect(await count(ac, 'compliance_daily')).toBe(want.hostDays);
    const groups = await ac.client.query({ query: `SELECT uniqExact(host, group_id) AS n FROM ${ac.database}.group_states`, format: 'JSONEachRow' });
    expect(Number((await groups.json<{ n: string }>())[0]?.n)).toBe(want.groups);
    const open = await ac.client.query({ query: `SELECT count() AS n FROM ${ac.database}.violations FINAL WHERE closed_at IS NULL`, format: 'JSONEachRow' });
    expect(Number((await open.json<{ n: string }>())[0]?.n)).toBe(want.open);
  });

  it('issue 23: the dashboard read from the hosts × days table agrees with a recount from the events: hosts, events and last event per host, the compliant share now and as of a moment inside a day', async () => {
    const events: RecordedEvent[] = [];
    for await (const r of store.readAll()) events.push(r);
    const perHost = new Map<string, { events: number; last: bigint }>();
    for (const r of events) {
      const h = perHost.get(r.event.host) ?? { events: 0, last: 0n };
      perHost.set(r.event.host, { events: h.events + 1, last: BigInt(r.event.time) > h.last ? BigInt(r.event.time) : h.last });
    }
    const q = createAnalyticsQueries(ac);
    const hosts = await q.table('hosts', { limit: 1000 });
    expect(new Map(hosts.map((h) => [h.host, { events: h.events, last: h.last_event_utc }]))).toEqual(
      new Map([...perHost].map(([host, h]) => [host, { events: String(h.events), last: formatTime(h.last) }])),
    );
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const summary = await q.summary({});
    expect(summary.hostsTracked).toBe(perHost.size);
    // a page of the hosts table counts every host (the total is counted from the per-host part alone)
    const firstTwo = await q.page('hosts', { limit: 2 });
    expect({ rows: firstTwo.rows.length, total: firstTwo.total }).toEqual({ rows: 2, total: perHost.size });
    const early = BigInt(events[0]!.event.time);
    expect((await q.page('hosts', { limit: 2, toNs: early })).total).toBe(new Set(events.filter((r) => BigInt(r.event.time) <= early).map((r) => r.event.host)).size);
    expect(summary.compliantShareText).toBe(independentShare(events, state, {}));
    // as of a moment inside a day: the days before from the table, that day from its events up to the moment
    const middle = BigInt(events[Math.floor(events.length / 2)]!.event.time) + 1n;
    expect((await q.summary({ toNs: middle })).compliantShareText).toBe(independentShare(events, state, { toNs: middle }));
    expect((await q.summary({ toNs: middle })).hostsTracked).toBe(new Set(events.filter((r) => BigInt(r.event.time) <= middle).map((r) => r.event.host)).size);
  });

  it('given the analytics tables lost while the store kept its checkpoint, when restarted, then the gap is read back from the store', async () => {
    for (const t of ['events', 'violations', 'group_states', 'compliance_daily', 'sink_checkpoints']) await ac.client.command({ query: `TRUNCATE TABLE ${ac.database}.${t}` });
    const sink = getClickHouseAnalyticsSink(ac);
    await loadDemoFleet(store, { events: 200, hosts: 1, seed: 9, hostPrefix: 'after-' });
    const projector = createAnalyticsProjector({ store, sink, fold: createFleetProjection() }, { batchSize: 500 });
    await projector.start();
    await projector.caughtUp();
    await projector.stop();

    const want = await expected(store);
    expect(await count(ac, 'events')).toBe(want.events);
    expect(await count(ac, 'violations')).toBe(want.violations);
  });
});
