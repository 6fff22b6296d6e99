import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEventBuilder, type RecordedEvent } from '../../../schemas/index.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries } from './analyticsQueries.js';
import type { GroupStateChange } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';

const HOUR = 3_600_000_000_000n;
const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z

// hosts sharing group numbers, several changes per group, a group first seen late: (host, group, hour of the change)
const CHANGES: readonly (readonly [string, number, number])[] = [
  ['h1', 1, 1], ['h1', 1, 2], ['h1', 2, 3], ['h1', 7, 20],
  ['h2', 1, 4], ['h2', 2, 5], ['h2', 2, 6], ['h2', 2, 21],
  ['h3', 9, 22],
];
const builders = new Map<string, ReturnType<typeof createEventBuilder>>();
const recorded: RecordedEvent[] = CHANGES.map(([host, , hour], i) => {
  const b = builders.get(host) ?? createEventBuilder({ host });
  builders.set(host, b);
  return { event: b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { atNs: D1 + BigInt(hour) * HOUR }), streamName: `host-${host}`, streamPosition: BigInt(i), globalPosition: BigInt(i + 1) };
});
const states: GroupStateChange[] = CHANGES.map(([host, group], i) => {
  const r = recorded[i] as RecordedEvent;
  return { host, group, at: { eventId: r.event.id, globalPosition: r.globalPosition, timeNs: BigInt(r.event.time) }, eventType: r.event.type, state: 'kernel-idle', owner: '', domain: 'default', ownerCount: 0, devices: [], detail: '{}' };
});
/** the figure by its definition: distinct (host, group) pairs with a change up to `toNs`, on the hosts asked for */
const pairs = (toNs: bigint, hosts?: readonly string[]): number =>
  new Set(CHANGES.filter(([host, , hour]) => D1 + BigInt(hour) * HOUR <= toNs && (hosts === undefined || hosts.includes(host))).map(([h, g]) => `${h}/${g}`)).size;

describeWithEngine('chdb', chdbAvailability(), 'Analytics > the summary figures over group states (chdb)', () => {
  let dir: string;
  let ac: AnalyticsClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-sum-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: 'summarytest' });
    await migrate(ac);
    const sink = getClickHouseAnalyticsSink(ac);
    // two batches in two parts (not merged): the second repeats some of the first's changes, as a refold does
    await sink.write({ events: recorded.slice(0, 6), violations: [], groupStates: states.slice(0, 6), compliance: [], checkpoint: { subscriber: 'test', position: 6n } });
    await sink.write({ events: recorded.slice(3), violations: [], groupStates: states.slice(3), compliance: [], checkpoint: { subscriber: 'test', position: 9n } });
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dash2 #23: given hosts sharing group numbers and repeated changes, when counting groups per host and summing, then groupsTracked is the distinct (host, group) pairs, at the end, as of a moment and for some hosts', async () => {
    const q = createAnalyticsQueries(ac);
    const end = D1 + 23n * HOUR;
    const asOf = D1 + 5n * HOUR;
    expect(pairs(end)).toBe(6);
    expect((await q.summary({})).groupsTracked).toBe(pairs(end));
    expect(pairs(asOf)).toBe(4);
    expect((await q.summary({ toNs: asOf })).groupsTracked).toBe(pairs(asOf));
    expect((await q.summary({ hosts: ['h2', 'h3'] })).groupsTracked).toBe(pairs(end, ['h2', 'h3']));
    // the same pairs as the engine's own distinct count over the table
    const [row] = (await (await ac.client.query({ query: 'SELECT count() AS n FROM (SELECT DISTINCT host, group_id FROM summarytest.group_states)', format: 'JSONEachRow' })).json()) as { n: unknown }[];
    expect(Number(row?.n)).toBe(pairs(end));
  });

  it('dash2 #23: given no group states for a host filter, when asking the summary, then groupsTracked is 0', async () => {
    expect((await createAnalyticsQueries(ac).summary({ hosts: ['nobody'] })).groupsTracked).toBe(0);
  });
});
