import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createFleetProjection } from '../../../projections/index.js';
import { createEventBuilder } from '../../../schemas/index.js';
import { getSqliteEventStore, type SqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsProjector, type AnalyticsProjector } from './analyticsProjector.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { loadDemoFleet } from './demoFleet.js';
import { migrate } from './migrate.js';
import type { QuarantinedRow } from './rows.js';
import { chdbAvailability } from './testing/chdbAvailability.js';
import { engineError, faultyClient } from './testing/faultyClient.js';

const scalar = async (ac: AnalyticsClient, query: string): Promise<string[]> => {
  const rs = await ac.client.query({ query, format: 'JSONEachRow' });
  return (await rs.json<{ v: string }>()).map((r) => String(r.v));
};

describeWithEngine('chdb', chdbAvailability(), 'Analytics > projector under hostile input and a failing engine (chdb)', () => {
  let dir: string;
  let ac: AnalyticsClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-projhard-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'clickhouse') }, database: 'hardtest' });
    await migrate(ac);
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('unusual event times', () => {
    let store: SqliteEventStore;
    let projector: AnalyticsProjector;
    // a host without a real-time clock (~1e11 ns), and every digit count the engine used to guess at
    const TIMES = ['0', '123456789012', '12345678901', '100000000000000000', '1732406400123456', '1732406400123456789', '9223372036854775807'];

    beforeAll(async () => {
      store = getSqliteEventStore({ path: join(dir, 'times.db'), durability: 'normal', pollIntervalMs: 20 });
      const b = createEventBuilder({ host: 'rtc-less' });
      const events = TIMES.map((t) => b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { atNs: BigInt(t) }));
      await store.appendToStream('host-rtc-less', events);
      projector = createAnalyticsProjector({ store, sink: getClickHouseAnalyticsSink(ac), fold: createFleetProjection() }, { subscriberName: 'times', batchSize: 3 });
      await projector.start();
      await projector.caughtUp();
    });
    afterAll(async () => {
      await projector.stop();
      await store.close();
    });

    it('hardening #3: times of 0, 11, 12, 16 and 18 digits reach ClickHouse as the exact instant and the sink keeps going', async () => {
      expect(projector.position()).toBe(await store.headPosition());
      const stored = await scalar(ac, `SELECT toString(toUnixTimestamp64Nano(time)) AS v FROM hardtest.events FINAL WHERE host = 'rtc-less' ORDER BY seq`);
      expect(stored).toEqual(TIMES);
      const groups = await scalar(ac, `SELECT toString(toUnixTimestamp64Nano(time)) AS v FROM hardtest.group_states FINAL WHERE host = 'rtc-less' ORDER BY global_position`);
      for (const t of groups) expect(TIMES).toContain(t);
    });

    it('hardening #3: a time no DateTime64(9) can hold is quarantined with the reason; its neighbours are written', async () => {
      const b = createEventBuilder({ host: 'far-future' });
      // the schema now refuses such a time (hardening #2); a row stored before that bound still reaches the sink,
      // so the event is built valid and its time set afterwards, as an old store would hand it over
      const events = ['1', '9223372036854775808', '2'].map((t, i) => ({
        event: { ...b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { atNs: BigInt(i + 1) }), time: t },
        streamName: 'host-far-future',
        streamPosition: BigInt(i),
        globalPosition: 1_000_000n + BigInt(i),
      }));
      const result = await getClickHouseAnalyticsSink(ac).write({ events, violations: [], groupStates: [], compliance: [], checkpoint: { subscriber: 'far', position: 1_000_002n } });
      expect(result.quarantined.map((q) => [q.table, q.key])).toEqual([['events', events[1]?.event.id]]);
      expect(await scalar(ac, `SELECT toString(toUnixTimestamp64Nano(time)) AS v FROM hardtest.events FINAL WHERE host = 'far-future' ORDER BY seq`)).toEqual(['1', '2']);
      const reasons = await scalar(ac, `SELECT reason AS v FROM hardtest.sink_quarantine FINAL WHERE table_name = 'events' AND row_key = '${events[1]?.event.id}'`);
      expect(reasons).toEqual(['time 9223372036854775808 ns is outside DateTime64(9) (1970-01-01 to 2262-04-11 23:47:16.854775807 UTC)']);
    });
  });

  describe('a row the engine refuses', () => {
    it('hardening #3: the refused row goes to quarantine, the rows after it are written, and it is reported', async () => {
      const store = getSqliteEventStore({ path: join(dir, 'poison.db'), durability: 'normal', pollIntervalMs: 20 });
      const b = createEventBuilder({ host: 'poisoned' });
      const events = ['a', 'b', 'poison', 'c', 'd', 'e'].map((comm) => b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { actor: { comm } }));
      await store.appendToStream('host-poisoned', events);
      const refusing = faultyClient(ac, ({ table, values }) => (table.endsWith('.events') && JSON.stringify(values).includes('"poison"') ? engineError('27', 'Cannot parse input: expected something else') : undefined));
      const quarantined: QuarantinedRow[] = [];
      const projector = createAnalyticsProjector(
        { store, sink: getClickHouseAnalyticsSink(refusing), fold: createFleetProjection(), hooks: { onQuarantined: (rows) => quarantined.push(...rows) } },
        { subscriberName: 'poison' },
      );
      await projector.start();
      await projector.caughtUp();
      await projector.stop();
      expect(projector.position()).toBe(await store.headPosition());
      expect(await scalar(ac, `SELECT actor_comm AS v FROM hardtest.events FINAL WHERE host = 'poisoned' ORDER BY seq`)).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(quarantined.map((q) => [q.table, q.key])).toEqual([['events', events[2]?.id]]);
      expect(quarantined[0]?.reason).toMatch(/code 27, Cannot parse input/);
      expect(await scalar(ac, `SELECT row_key AS v FROM hardtest.sink_quarantine FINAL WHERE table_name = 'events' AND row LIKE '%poison%'`)).toEqual([events[2]?.id]);
      await store.close();
    });
  });

  describe('disk full', () => {
    it('hardening #8: while the engine refuses writes the sink retries with backoff and says so; it recovers by itself, nothing lost', async () => {
      const store = getSqliteEventStore({ path: join(dir, 'full.db'), durability: 'normal', pollIntervalMs: 20 });
      await loadDemoFleet(store, { events: 600, hosts: 2, seed: 3, hostPrefix: 'full-' });
      let full = false;
      let refused = 0;
      const filling = faultyClient(ac, () => (full ? (refused++, engineError('243', 'Cannot reserve 1.00 MiB, not enough space')) : undefined));
      const failures: number[] = [];
      let recoveredAfter = 0;
      const projector = createAnalyticsProjector(
        { store, sink: getClickHouseAnalyticsSink(filling), fold: createFleetProjection(), hooks: { onFailure: (_e, attempt) => failures.push(attempt), onRecovered: (n) => (recoveredAfter = n) } },
        { subscriberName: 'full', batchSize: 200, retry: { initialMs: 5, maxMs: 40 } },
      );
      await projector.start();
      await projector.caughtUp();
      expect(projector.status().state).toBe('ok');

      full = true;
      await loadDemoFleet(store, { events: 400, hosts: 2, seed: 4, hostPrefix: 'fuller-' });
      await vi.waitFor(() => expect(failures.length).toBeGreaterThanOrEqual(3), { timeout: 30_000, interval: 10 });
      const during = projector.status();
      expect(during).toMatchObject({ state: 'retrying', lastError: expect.stringContaining('not enough space') as unknown });
      expect(during.consecutiveFailures).toBeGreaterThanOrEqual(3);
      expect(during.position).toBeLessThan(await store.headPosition());

      full = false;
      const head = await store.headPosition();
      await vi.waitFor(() => expect(projector.position()).toBe(head), { timeout: 30_000, interval: 10 });
      expect(projector.status()).toMatchObject({ state: 'ok', consecutiveFailures: 0, quarantinedRows: 0 });
      expect(recoveredAfter).toBeGreaterThanOrEqual(3);
      expect(refused).toBeGreaterThanOrEqual(3);
      await projector.stop();
      const [events] = await scalar(ac, `SELECT toString(count()) AS v FROM hardtest.events FINAL WHERE host LIKE 'full%'`);
      expect(Number(events)).toBe(1000);
      await store.close();
    });
  });
});
