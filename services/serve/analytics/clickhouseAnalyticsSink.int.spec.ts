import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEventBuilder, type IommuEvent, type RecordedEvent } from '../../../schemas/index.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries } from './analyticsQueries.js';
import type { EventPoint, GroupStateChange, SinkBatch, ViolationRecord } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, INSERT_SETTINGS, type AnalyticsClient } from './clickhouseClient.js';
import { batchRows, positionalRows } from './rows.js';
import { chdbAvailability } from './testing/chdbAvailability.js';
import { migrate } from './migrate.js';

// a hand-checked history: 3 hosts, 3 UTC days from 2024-11-24, 3 violations
const DAY = 86_400_000_000_000n;
const HOUR = 3_600_000_000_000n;
const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z

const builders = new Map<string, ReturnType<typeof createEventBuilder>>();
const recorded: RecordedEvent[] = [];
const at = (host: string, timeNs: bigint): RecordedEvent => {
  let b = builders.get(host);
  if (b === undefined) {
    b = createEventBuilder({ host });
    builders.set(host, b);
  }
  const event: IommuEvent = b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { atNs: timeNs });
  const r: RecordedEvent = { event, streamName: `host-${host}`, streamPosition: 0n, globalPosition: BigInt(recorded.length + 1) };
  recorded.push(r);
  return r;
};
const e1 = at('h1', D1 + 9n * HOUR);
const e2 = at('h1', D1 + 10n * HOUR);
const e3 = at('h2', D1 + 12n * HOUR);
const e4 = at('h3', D1 + 13n * HOUR);
const e5 = at('h1', D1 + DAY + 10n * HOUR);
const e6 = at('h1', D1 + DAY + 11n * HOUR);
const e7 = at('h1', D1 + 2n * DAY + 13n * HOUR);
at('h3', D1 + 2n * DAY + 14n * HOUR);

const point = (r: RecordedEvent): EventPoint => ({ eventId: r.event.id, globalPosition: r.globalPosition, timeNs: BigInt(r.event.time) });
const violation = (key: string, host: string, group: number, rule: string, severity: string, open: RecordedEvent, close?: RecordedEvent, extra: RecordedEvent[] = []): ViolationRecord => ({
  key,
  host,
  group,
  rule,
  severity,
  message: `${rule} on ${host}/${group}`,
  opened: point(open),
  ...(close !== undefined ? { closed: point(close) } : {}),
  evidence: [open.event.id, ...extra.map((r) => r.event.id), ...(close !== undefined ? [close.event.id] : [])],
  version: (close ?? open).globalPosition,
});
const groupState = (r: RecordedEvent, group: number, state: string): GroupStateChange => ({
  host: r.event.host,
  group,
  at: point(r),
  eventType: r.event.type,
  state,
  owner: state.startsWith('user') ? 'iommufd:fd7' : '',
  domain: state === 'user-attached' ? 'hwpt:2' : state === 'user-blocked' ? 'blocking' : 'default',
  ownerCount: 1,
  devices: ['0000:01:00.0'],
  detail: '{}',
});

const V1open = violation('v1', 'h1', 3, 'two-user-owners', 'critical', e2);
const V1closed = violation('v1', 'h1', 3, 'two-user-owners', 'critical', e2, e5, [e4]);
const V2open = violation('v2', 'h2', 7, 'kernel-driver-in-user-group', 'warning', e3);
const V3open = violation('v3', 'h1', 4, 'kernel-driver-in-user-group', 'warning', e6);
const V3closed = violation('v3', 'h1', 4, 'kernel-driver-in-user-group', 'warning', e6, e7);

const batchA: SinkBatch = {
  events: recorded.slice(0, 4),
  violations: [V1open, V2open],
  groupStates: [groupState(e1, 3, 'user-blocked'), groupState(e2, 3, 'user-attached'), groupState(e3, 7, 'kernel-dma')],
  compliance: [
    { host: 'h1', day: '2024-11-24', opened: 1, closed: 0, maxOpen: 1, openAtEnd: 1, events: 2n, version: 2n },
    { host: 'h2', day: '2024-11-24', opened: 1, closed: 0, maxOpen: 1, openAtEnd: 1, events: 1n, version: 3n },
    { host: 'h3', day: '2024-11-24', opened: 0, closed: 0, maxOpen: 0, openAtEnd: 0, events: 1n, version: 4n },
  ],
  checkpoint: { subscriber: 'test', position: 4n },
};
const batchB: SinkBatch = {
  events: recorded.slice(4),
  violations: [V1closed, V3open, V3closed],
  groupStates: [groupState(e5, 3, 'kernel-idle'), groupState(e6, 4, 'user-blocked')],
  compliance: [
    { host: 'h1', day: '2024-11-25', opened: 1, closed: 1, maxOpen: 1, openAtEnd: 1, events: 2n, version: 6n },
    { host: 'h1', day: '2024-11-26', opened: 0, closed: 1, maxOpen: 1, openAtEnd: 0, events: 1n, version: 7n },
    { host: 'h3', day: '2024-11-26', opened: 0, closed: 0, maxOpen: 0, openAtEnd: 0, events: 1n, version: 8n },
  ],
  checkpoint: { subscriber: 'test', position: 8n },
};

const countAll = async (ac: AnalyticsClient): Promise<Record<string, number>> => {
  const out: Record<string, number> = {};
  for (const table of ['events', 'violations', 'group_states', 'compliance_daily']) {
    const rs = await ac.client.query({ query: `SELECT count() AS n FROM ${ac.database}.${table} FINAL`, format: 'JSONEachRow' });
    out[table] = Number((await rs.json<{ n: string }>())[0]?.n);
  }
  return out;
};

const EXPECTED_COUNTS = { events: 8, violations: 3, group_states: 5, compliance_daily: 6 };

describeWithEngine('chdb', chdbAvailability(), 'Analytics > ClickHouse sink and queries (chdb)', () => {
  let dir: string;
  let ac: AnalyticsClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-ch-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: 'sinktest' });
    await migrate(ac);
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('given migrations applied, when migrating again, then nothing is re-applied', async () => {
    const again = await migrate(ac);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toEqual(['0001_init.sql', '0002_sink_quarantine.sql', '0003_event_actor_pid.sql', '0004_compliance_daily_times.sql', '0005_compliance_daily_facts.sql', '0007_host_groups.sql', '0009_host_compliance.sql', '0010_compliance_overview.sql', '0011_host_compliance_partitions.sql', '0012_host_rule_violations.sql', '0013_host_rule_occurrences.sql', '0014_host_rule_occurrences_opened.sql', '0015_host_string_keys.sql', '0016_violation_days.sql', '0017_violation_findings.sql', '0018_compliance_days.sql']);
  });

  it('given two batches, when written, then every table holds exactly the rows and 64-bit values stay exact', async () => {
    const sink = getClickHouseAnalyticsSink(ac);
    await sink.write(batchA);
    await sink.write(batchB);
    expect(await countAll(ac)).toEqual(EXPECTED_COUNTS);
    expect(await sink.readCheckpoint('test')).toBe(8n);
    expect(await sink.readCheckpoint('never-wrote')).toBe(0n);
    const events = await createAnalyticsQueries(ac).table('events', { host: 'h1' });
    expect(events.map((e) => e.time_ns)).toEqual([e7, e6, e5, e2, e1].map((r) => r.event.time));
  });

  it('given the batches written, when replayed after a "crash" cut at other boundaries, then nothing is duplicated', async () => {
    const sink = getClickHouseAnalyticsSink(ac, { maxRowsPerInsert: 2 });
    // a crash after batch B's tables but before its checkpoint: the replay re-sends A's tail and all of B
    await sink.write({ ...batchA, events: batchA.events.slice(2), checkpoint: { subscriber: 'test', position: 4n } });
    await sink.write(batchB);
    expect(await countAll(ac)).toEqual(EXPECTED_COUNTS);
  });

  it('given the data on disk, when the engine is reopened, then the counts and checkpoint survive exactly', async () => {
    await ac.close();
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: 'sinktest' });
    expect(await countAll(ac)).toEqual(EXPECTED_COUNTS);
    expect(await getClickHouseAnalyticsSink(ac).readCheckpoint('test')).toBe(8n);
  });

  it('scale #23: given daily rows written, when a resumed projector asks for some host/days, then it gets the current row of each one that exists, 64-bit values exact', async () => {
    const rows = await getClickHouseAnalyticsSink(ac).readCompliance!([
      { host: 'h1', day: '2024-11-25' },
      { host: 'h3', day: '2024-11-26' },
      // a pair of a host and a day that both have rows, but not together
      { host: 'h2', day: '2024-11-25' },
    ]);
    expect(rows.sort((a, b) => a.host.localeCompare(b.host))).toEqual([batchB.compliance[0], batchB.compliance[2]]);
  });

  it('given the history, when asking the summary at the end, then 1 violation is open on 1 of 3 hosts', async () => {
    const s = await createAnalyticsQueries(ac).summary({});
    expect(s).toMatchObject({ hostsTracked: 3, groupsTracked: 3, hostsWithOpenViolations: 1, openViolations: 1 });
    // the period (compliance.ts): h1 and h2 had findings; h3 was silent all of day 2 (stale after 24 h)
    expect(s.compliance).toMatchObject({ hosts: 3, compliant: 0, nonCompliant: 2, notAssessed: 1, notAssessedByReason: { stale: 1 } });
    expect(s.compliantShare).toBe(0);
    expect(s.openByRuleAndSeverity).toEqual([{ rule: 'kernel-driver-in-user-group', severity: 'warning', open: 1 }]);
  });

  it('given the history, when asking as of the end of day 1, then v1 and v2 are open on 2 hosts', async () => {
    const s = await createAnalyticsQueries(ac).summary({ toNs: D1 + 23n * HOUR });
    expect(s).toMatchObject({ hostsTracked: 3, hostsWithOpenViolations: 2, openViolations: 2 });
    expect(s.openByRuleAndSeverity).toEqual([
      { rule: 'kernel-driver-in-user-group', severity: 'warning', open: 1 },
      { rule: 'two-user-owners', severity: 'critical', open: 1 },
    ]);
  });

  it('given filters, when asking the summary, then only matching hosts and violations count', async () => {
    const q = createAnalyticsQueries(ac);
    expect(await q.summary({ toNs: D1 + 23n * HOUR, severities: ['critical'] })).toMatchObject({ hostsWithOpenViolations: 1, openViolations: 1 });
    const h3 = await q.summary({ hosts: ['h3'] });
    expect(h3).toMatchObject({ hostsTracked: 1, hostsWithOpenViolations: 0, compliantShare: null, compliantShareText: 'no data' });
    expect(await q.summary({ hosts: ['h3'], staleAfterNs: 2n * DAY })).toMatchObject({ compliantShare: 1, compliantShareText: '100.0%' });
  });

  it('given the history, when asking trends, then opened/closed per day and time to close match', async () => {
    const rows = await createAnalyticsQueries(ac).table('trends', {});
    expect(rows).toEqual([
      { day: '2024-11-24', opened: '2', closed: '0', median_close_s: 0, p90_close_s: 0, median_close_ns: '0', p90_close_ns: '0', median_close: '', p90_close: '' },
      { day: '2024-11-25', opened: '1', closed: '1', median_close_s: 86400, p90_close_s: 86400, median_close_ns: '86400000000000', p90_close_ns: '86400000000000', median_close: '1 d', p90_close: '1 d' },
      { day: '2024-11-26', opened: '0', closed: '1', median_close_s: 93600, p90_close_s: 93600, median_close_ns: '93600000000000', p90_close_ns: '93600000000000', median_close: '1.1 d', p90_close: '1.1 d' },
    ]);
  });

  it('given the history, when asking the compliance table, then each day counts compliant, non-compliant and not assessed hosts', async () => {
    const rows = await createAnalyticsQueries(ac).table('compliance', {});
    expect(rows.map((r) => [r.day, r.hosts_compliant, r.hosts_non_compliant, r.hosts_not_assessed, r.compliant])).toEqual([
      ['2024-11-24', 1, 2, 0, '33.3%'],
      ['2024-11-25', 0, 2, 1, '0.0%'],
      ['2024-11-26', 1, 2, 0, '33.3%'],
    ]);
  });

  it('given group states, when asking a host’s groups as of a moment, then each group shows its state then', async () => {
    const q = createAnalyticsQueries(ac);
    const before = await q.table('host-groups', { host: 'h1', atNs: D1 + 9n * HOUR + 30n * 60_000_000_000n });
    expect(before.map((g) => [g.group_id, g.state])).toEqual([[3, 'user-blocked']]);
    const later = await q.table('host-groups', { host: 'h1' });
    expect(later.map((g) => [g.group_id, g.state, Number(g.open_violations)])).toEqual([
      [3, 'kernel-idle', 0],
      [4, 'user-blocked', 0],
    ]);
    const timeline = await q.table('group-timeline', { host: 'h1', group: 3 });
    expect(timeline.map((t) => t.state)).toEqual(['user-blocked', 'user-attached', 'kernel-idle']);
  });

  it('given a closed violation, when asking its events, then the evidence events come back in order', async () => {
    const rows = await createAnalyticsQueries(ac).table('violation-events', { violationKey: 'v1' });
    expect(rows.map((r) => r.event_id)).toEqual([e2, e4, e5].map((r) => r.event.id));
  });

  it('given any table, when exported as CSV, then it has a header and one line per row', async () => {
    const q = createAnalyticsQueries(ac);
    const csv = await q.csv('violations', {});
    const lines = csv.trim().split('\n');
    expect(lines[0]).toContain('"violation_key"');
    expect(lines).toHaveLength(4);
  });

  it('sink2 #23: given event data sent once as a JSON object, when read back, then the data column holds exactly its JSON text', async () => {
    // given the engine reads a JSON object into a String column as its text (what the sink relies on)
    const setting = await ac.client.query({ query: `SELECT value FROM system.settings WHERE name = 'input_format_json_read_objects_as_strings'`, format: 'JSONEachRow' });
    expect(await setting.json()).toEqual([{ value: '1' }]);
    // and events whose data holds quotes, backslashes, control and non-ASCII characters, nesting and empty values
    const own = { ...ac, database: 'sinkdata' };
    await migrate(own);
    const b = createEventBuilder({ host: 'h-data' });
    const awkward = ['vfio"pci', 'a\\b', 'tab\tline\nend', 'é\u2028ü😀', '{"not":"an object"}', ''];
    const events = awkward.map((driver, i): RecordedEvent => ({
      // (as an older schema or a test may have written it: the sink takes the recorded data as it is)
      event: { ...b.event('DriverBound', { device: `0000:0${i}:00.0`, driver: 'vfio-pci' }), data: { device: `0000:0${i}:00.0`, driver, ...(i === 0 ? { nested: { list: [1, { z: null }], empty: {} } } : {}) } } as IommuEvent,
      streamName: 'host-h-data',
      streamPosition: BigInt(i + 1),
      globalPosition: BigInt(i + 1),
    }));
    // when written by the sink
    await getClickHouseAnalyticsSink(own).write({ events, violations: [], groupStates: [], compliance: [], checkpoint: { subscriber: 'data', position: 6n } });
    // then each row's data is the text JSON.stringify makes of the event's data, character for character
    const rs = await own.client.query({ query: `SELECT event_id, data FROM sinkdata.events ORDER BY global_position`, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual(events.map((r) => ({ event_id: r.event.id, data: JSON.stringify(r.event.data) })));
  });

  it('sink3 #23: given batches with awkward values, when the sink writes them as column documents, then every table holds what the row format (JSONCompactEachRow) writes', async () => {
    // given the hand-checked batches with quotes, backslashes, control and non-ASCII characters in strings and lists, nulls and objects
    const awkward = 'a"b\\c\td\ne é\u2028😀 \'q\'';
    const odd: SinkBatch = {
      ...batchA,
      violations: batchA.violations.map((v, i) => ({ ...v, message: `${v.message} ${awkward}`, ...(i === 0 ? { device: awkward } : {}), evidence: [...v.evidence, awkward, ''] })),
      groupStates: batchA.groupStates.map((g) => ({ ...g, owner: awkward, devices: [awkward, ''], detail: { text: awkward, list: [1, null, { z: {} }] } })),
    };
    const columns = { ...ac, database: 'sinkcols' };
    const rows = { ...ac, database: 'sinkrows' };
    await migrate(columns);
    await migrate(rows);
    // when the sink writes them, and the same rows go in as positional rows
    const sink = getClickHouseAnalyticsSink(columns);
    for (const batch of [odd, batchB]) {
      await sink.write(batch);
      for (const t of batchRows(batch, Date.now()).tables) {
        await rows.client.insert({ table: `sinkrows.${t.table}`, format: 'JSONCompactEachRow', columns: t.columns as [string, ...string[]], values: positionalRows(t), clickhouse_settings: INSERT_SETTINGS });
      }
    }
    // then each table reads back the same, value for value
    for (const table of ['events', 'violations', 'group_states', 'compliance_daily']) {
      const read = async (db: string) => (await ac.client.query({ query: `SELECT * FROM ${db}.${table} ORDER BY ALL`, format: 'JSONEachRow' })).json();
      const written = await read('sinkcols');
      expect(written.length).toBeGreaterThan(0);
      expect(written).toEqual(await read('sinkrows'));
    }
  });

  it('given parallel queries, when run at once on the embedded engine, then each gets its own answer', async () => {
    const q = createAnalyticsQueries(ac);
    const results = await Promise.all([q.summary({}), q.table('violations', {}), q.summary({ hosts: ['h3'] }), q.table('trends', {})]);
    expect(results[0].openViolations).toBe(1);
    expect(results[1]).toHaveLength(3);
    expect(results[2].hostsTracked).toBe(1);
    expect(results[3]).toHaveLength(3);
  });
});
