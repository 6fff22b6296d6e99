import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEventBuilder, type RecordedEvent } from '../../../schemas/index.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries } from './analyticsQueries.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { defaultMigrationsDir, migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';

const recorded = (n: number, actor?: { pid: number; comm: string; vm: string; tenant: string }): RecordedEvent => {
  const event = createEventBuilder({ host: 'h1' }).event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' }, { atNs: 1_732_406_400_000_000_000n + BigInt(n), ...(actor ? { actor } : {}) });
  return { event: { ...event, seq: n }, streamName: 'host-h1', streamPosition: BigInt(n), globalPosition: BigInt(n) };
};

describeWithEngine('chdb', chdbAvailability(), 'Analytics > migrations over an existing database (chdb)', () => {
  let dir: string;
  let ac: AnalyticsClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-migrate-'));
    // a database made by the first two migrations only, as before the actor's pid, holding a row
    const old = join(dir, 'old-migrations');
    mkdirSync(join(old, 'single'), { recursive: true });
    for (const f of ['0001_init.sql', '0002_sink_quarantine.sql']) copyFileSync(join(defaultMigrationsDir(), 'single', f), join(old, 'single', f));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'ch') }, database: 'migratetest' });
    await migrate(ac, { dir: old });
    await ac.client.insert({
      table: 'migratetest.events',
      format: 'JSONEachRow',
      values: [{ event_id: 'old-1', global_position: '1', stream_position: '1', host: 'h1', seq: '1', type: 'DriverBound', time: '2024-11-24 00:00:00.000000001', source: 'sysfs', actor_comm: 'qemu', labels: [], data: '{}' }],
    });
    await ac.client.insert({
      table: 'migratetest.compliance_daily',
      format: 'JSONEachRow',
      values: [{ host: 'h1', day: '2024-11-24', opened: 0, closed: 0, max_open: 0, open_at_end: 0, events: '1', version: '1' }],
    });
  });
  afterAll(async () => {
    await ac?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('issue 21 actors: an events table made before the actor’s pid gains the column, keeps its rows (pid NULL), and takes rows with a pid', async () => {
    const result = await migrate(ac);
    expect(result.applied).toEqual(['0003_event_actor_pid.sql', '0004_compliance_daily_times.sql', '0005_compliance_daily_facts.sql', '0007_host_groups.sql', '0009_host_compliance.sql', '0010_compliance_overview.sql', '0011_host_compliance_partitions.sql', '0012_host_rule_violations.sql', '0013_host_rule_occurrences.sql', '0014_host_rule_occurrences_opened.sql', '0015_host_string_keys.sql', '0016_violation_days.sql', '0017_violation_findings.sql', '0018_compliance_days.sql']);
    await getClickHouseAnalyticsSink(ac).write({
      events: [recorded(2, { pid: 4242, comm: 'qemu-system-x86', vm: 'vm-1', tenant: 'initech' })],
      eventGroups: [7],
      violations: [],
      groupStates: [],
      compliance: [],
      checkpoint: { subscriber: 'analytics', position: 2n },
    });
    const rows = await createAnalyticsQueries(ac).table('events', { host: 'h1' });
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    expect(byId.get('old-1')).toMatchObject({ actor_pid: null, actor_comm: 'qemu', group_id: null });
    expect([...byId.values()].find((r) => r.event_id !== 'old-1')).toMatchObject({ actor_pid: 4242, actor_comm: 'qemu-system-x86', actor_vm: 'vm-1', actor_tenant: 'initech', group_id: 7 });
    // issue 23: a day's row from before its times were kept: the hosts table and summary count from the events
    const [host] = await createAnalyticsQueries(ac).table('hosts', {});
    expect(host).toMatchObject({ host: 'h1', events: '2' });
    // run again: nothing left to apply
    expect((await migrate(ac)).applied).toEqual([]);
  });
});
