import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createFleetProjection } from '../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../schemas/index.js';
import { DEFAULT_BATCH_SIZE } from '../../services/serve/analytics/analyticsProjector.js';
import type { SinkBatch } from '../../services/serve/analytics/analyticsSink.js';
import { getClickHouseAnalyticsSink } from '../../services/serve/analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { createFleetAnalyzer } from '../../services/serve/analytics/fleetAnalyzer.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { fleetOf } from './analytics.bench.js';
import { eventLines } from './sinkFleetCache.js';

/**
 * Issue 23: the analytics data of the simulated fleet of 1e5 hosts (`simulate --seed 42 --hosts 100000 --events
 * 10000000 --activity fleet`, generated once into ~/.cache/iommutrail/simulated/), its first `events` events folded
 * by the sink as the projector's backfill writes them (the next batch folded while the one before is written).
 * Built once per size into ~/.cache/iommutrail/analytics/ and kept: a dashboard run copies it and never rebuilds it
 * (the 1e7 history takes the sink an hour or more here). The copy is what a run migrates, so the cached data stays at
 * the schema it was built with and each run's migrations (their backfills included) run on it as on an old database.
 */
export const SIMULATED_FLEET = join(homedir(), '.cache/iommutrail/simulated/fleet-1e7-1e5-seed42.jsonl');
export const FLEET_HOSTS = 100_000;
const CACHE = join(homedir(), '.cache/iommutrail/analytics');

/**
 * the cached data folder of the fleet's first `events` events (complete once it exists); without the simulated file
 * (a CI runner), a fleet simulated on the spot of 1,000 hosts instead (analytics.bench.ts)
 */
export const fleetDataDir = (events: number): string =>
  join(CACHE, existsSync(SIMULATED_FLEET) ? `fleet-1e7-1e5-seed42-first-${events}` : `simulated-${events}-${SMALL_FLEET_HOSTS}`);
const SMALL_FLEET_HOSTS = 1_000;

/** the fleet's first `events` events, as the simulator wrote them (valid by construction: no parse) */
async function* firstEvents(events: number): AsyncGenerator<IommuEvent> {
  if (!existsSync(SIMULATED_FLEET)) {
    yield* fleetOf(events, SMALL_FLEET_HOSTS);
    return;
  }
  let n = 0;
  for await (const event of eventLines(SIMULATED_FLEET, events)) {
    n++;
    yield event;
  }
  if (n < events) throw new Error(`${SIMULATED_FLEET} holds ${n} events, fewer than ${events}`);
}

/**
 * Sizes built from a smaller one's rows rather than by the sink (issue 23, dash8): the sink builds the 1e5-host fleet's
 * data at ~1.6k events/s here, 1e7 events would take it two hours. 1e7 is the 1e6 data's rows ×10: nine copies of every
 * row after the original, on the same hosts (the fleet's 1e5), each copy `i` shifted later by i × (the data's time span
 * + 1 s) and by i × its last global position, its event ids, violation keys and evidence suffixed `~i`. Every copy's
 * rows are the sink's own rows of the 1e6 events, moved in time; each copy's violations are occurrences of their own
 * (a violation open at a copy's end stays open, as at the 1e6 data's end), and each host-day's row is rewritten to
 * agree with them (opened, closed and open at the end ×10, the most open at once 9 × open at the end + the original's
 * most, events ×10, last event and snapshot moved to the last copy's); the views' pre-aggregates and the host-days are
 * then merged. What it is not: the sink's fold of the copied events (a copy's events replayed after the one before
 * would meet the state that one left). The folder's BUILT file says how it was made; the dashboard figure logs it.
 */
const REPLICATED: Readonly<Record<number, { readonly from: number; readonly copies: number }>> = { 10_000_000: { from: 1_000_000, copies: 10 } };

/** builds (once) the analytics data of the fleet's first `events` events; returns its folder */
export const buildFleetData = async (events: number, log: (line: string) => void = () => undefined): Promise<string> => {
  const dir = fleetDataDir(events);
  if (existsSync(dir)) return dir;
  const replicated = REPLICATED[events];
  if (replicated !== undefined && existsSync(SIMULATED_FLEET)) return replicateFleetData(events, replicated.from, replicated.copies, log);
  const building = `${dir}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  const ac = createAnalyticsClient({ target: { kind: 'embedded', path: building }, database: 'iommutrail' });
  const t0 = Date.now();
  try {
    await migrate(ac);
    const sink = getClickHouseAnalyticsSink(ac);
    const analyzer = createFleetAnalyzer(createFleetProjection());
    let position = 0n;
    let batch: RecordedEvent[] = [];
    let inFlight: Promise<unknown> = Promise.resolve();
    const flush = async (): Promise<void> => {
      const out = analyzer.apply(batch);
      batch = [];
      const b: SinkBatch = { ...out, checkpoint: { subscriber: 'bench', position: analyzer.position() } };
      await inFlight;
      inFlight = sink.write(b);
    };
    for await (const event of firstEvents(events)) {
      position++;
      batch.push({ event, streamName: `host-${event.host}`, streamPosition: position, globalPosition: position });
      if (batch.length >= DEFAULT_BATCH_SIZE) await flush();
      if (position % 100_000n === 0n) log(`build ${events}: ${position} events in ${((Date.now() - t0) / 1e3).toFixed(0)} s`);
    }
    if (batch.length > 0) await flush();
    await inFlight;
  } finally {
    await ac.close();
  }
  await writeFile(join(building, 'BUILT'), `${events} events of ${SIMULATED_FLEET} in ${((Date.now() - t0) / 1e3).toFixed(0)} s, ${new Date().toISOString()}\n`);
  await rename(building, dir);
  log(`build ${events}: done in ${((Date.now() - t0) / 1e3).toFixed(0)} s`);
  return dir;
};

/** a working copy of the cached data (what a run migrates and reads) */
export const copyFleetData = async (events: number, to: string, log?: (line: string) => void): Promise<string> => {
  const from = await buildFleetData(events, log);
  await rm(to, { recursive: true, force: true });
  await cp(from, to, { recursive: true });
  return to;
};

/** waits until the engine has no merge running or to start (no merge and the same active parts for 10 s) */
const settle = async (ac: AnalyticsClient, log: (line: string) => void): Promise<void> => {
  const t0 = Date.now();
  let last = '';
  let quiet = 0;
  while (quiet < 2) {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const [state] = await (
      await ac.client.query({
        query: `SELECT (SELECT count() FROM system.merges) AS merges, (SELECT groupArray((table, n)) FROM (SELECT table, count() AS n FROM system.parts WHERE database = '${ac.database}' AND active GROUP BY table ORDER BY table)) AS parts`,
        format: 'JSONEachRow',
      })
    ).json<{ merges: unknown; parts: unknown }>();
    const parts = JSON.stringify(state?.parts);
    quiet = Number(state?.merges) === 0 && parts === last ? quiet + 1 : 0;
    last = parts;
  }
  log(`merges settled in ${((Date.now() - t0) / 1e3).toFixed(0)} s, active parts ${last}`);
};

/** {@link REPLICATED}: the `from` data's rows ×`copies`, built into the cache folder of `events` */
const replicateFleetData = async (events: number, from: number, copies: number, log: (line: string) => void): Promise<string> => {
  const source = await buildFleetData(from, log);
  const dir = fleetDataDir(events);
  const building = `${dir}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await cp(source, building, { recursive: true });
  const ac = createAnalyticsClient({ target: { kind: 'embedded', path: building }, database: 'iommutrail' });
  const t0 = Date.now();
  let built = '';
  try {
    const db = ac.database;
    const one = async <T>(query: string): Promise<T> => {
      const [row] = await (await ac.client.query({ query, format: 'JSONEachRow' })).json<T>();
      if (row === undefined) throw new Error(`no row from ${query}`);
      return row;
    };
    const span = await one<{ last: string; days: string; n: string }>(
      `SELECT toString(max(global_position)) AS last, toString(uniqExact(toDate(time))) AS days, toString(count()) AS n FROM ${db}.events`,
    );
    if (Number(span.n) !== from) throw new Error(`${source} holds ${span.n} events, not ${from}`);
    const spanNs = (await one<{ ns: string }>(`SELECT toString(toUnixTimestamp64Nano(max(time)) - toUnixTimestamp64Nano(min(time))) AS ns FROM ${db}.events`)).ns;
    // whole seconds past the span: the copies never overlap in time
    const shift = (BigInt(spanNs) / 1_000_000_000n + 1n) * 1_000_000_000n;
    const last = BigInt(span.last);
    const lastDay = await one<{ same: number }>(
      `SELECT toDate(addNanoseconds(max(time), ${(shift * BigInt(copies - 1)).toString()})) = toDate(min(time)) AS same FROM ${db}.events`,
    );
    // a host-day's row is rewritten for all copies at once: every copy must fall on the original's one day
    if (span.days !== '1' || Number(lastDay.same) !== 1) throw new Error(`the ${from} data's ${copies} copies would not fall on its one day (${span.days} days)`);
    const seqShift = (await one<{ s: string }>(`SELECT toString(max(seq)) AS s FROM ${db}.events`)).s;
    for (let i = 1; i < copies; i++) {
      const t = `addNanoseconds(%, ${(shift * BigInt(i)).toString()})`;
      const at = (c: string): string => t.replace('%', c);
      const p = (c: string): string => `${c} + ${(last * BigInt(i)).toString()}`;
      const id = (c: string): string => `concat(${c}, '~${i}')`;
      await ac.client.command({
        query: `INSERT INTO ${db}.events (event_id, global_position, stream_position, host, seq, type, time, source, group_id, device, outcome_ok, errno, actor_pid, actor_comm, actor_vm, actor_tenant, correlation_id, labels, data)
          SELECT ${id('event_id')}, ${p('global_position')}, ${p('stream_position')}, host, seq + ${seqShift} * ${i}, type, ${at('time')}, source, group_id, device, outcome_ok, errno, actor_pid, actor_comm, actor_vm, actor_tenant, correlation_id, labels, data
          FROM ${db}.events WHERE global_position <= ${last.toString()}`,
      });
      await ac.client.command({
        query: `INSERT INTO ${db}.violations (violation_key, host, group_id, device, rule, severity, message, opened_at, opened_event_id, opened_position, closed_at, closed_event_id, closed_position, duration_ns, evidence_event_ids, version)
          SELECT ${id('violation_key')}, host, group_id, device, rule, severity, message, ${at('opened_at')}, ${id('opened_event_id')}, ${p('opened_position')},
            if(closed_at IS NULL, NULL, ${at('assumeNotNull(closed_at)')}), if(closed_event_id IS NULL, NULL, ${id('assumeNotNull(closed_event_id)')}),
            if(closed_position IS NULL, NULL, ${p('assumeNotNull(closed_position)')}), duration_ns, arrayMap(e -> ${id('e')}, evidence_event_ids), ${p('version')}
          FROM ${db}.violations WHERE version <= ${last.toString()}`,
      });
      await ac.client.command({
        query: `INSERT INTO ${db}.group_states (host, group_id, global_position, event_id, event_type, time, state, owner, domain, owner_cnt, devices, detail)
          SELECT host, group_id, ${p('global_position')}, ${id('event_id')}, event_type, ${at('time')}, state, owner, domain, owner_cnt, devices, detail
          FROM ${db}.group_states WHERE global_position <= ${last.toString()}`,
      });
      log(`build ${events}: copy ${i} of ${copies - 1} in ${((Date.now() - t0) / 1e3).toFixed(0)} s`);
    }
    const lastShift = (shift * BigInt(copies - 1)).toString();
    await ac.client.command({
      query: `INSERT INTO ${db}.compliance_daily (host, day, opened, closed, max_open, open_at_end, events, first_event_at, last_event_at, snapshot_at, snapshot_iommu, facts, version)
        SELECT host, day, opened * ${copies}, closed * ${copies}, max_open + open_at_end * ${copies - 1}, open_at_end * ${copies}, events * ${copies}, first_event_at,
          if(last_event_at IS NULL, NULL, addNanoseconds(assumeNotNull(last_event_at), ${lastShift})), if(snapshot_at IS NULL, NULL, addNanoseconds(assumeNotNull(snapshot_at), ${lastShift})),
          snapshot_iommu, facts, version + ${(last * BigInt(copies - 1)).toString()}
        FROM ${db}.compliance_daily FINAL`,
    });
    await ac.client.command({ query: `INSERT INTO ${db}.sink_checkpoints SELECT subscriber, max(position) + ${(last * BigInt(copies - 1)).toString()}, now64(3) FROM ${db}.sink_checkpoints GROUP BY subscriber` });
    // each copy wrote every host's row of the views' pre-aggregates again, and each host-day's row was written once
    // more: merged, as the engine merges the sink's many small inserts while it folds (the 1e6 data's host_groups holds
    // ~1.05 rows per host), rather than left at ten unmerged rows per host
    const merged = ['host_groups', 'host_activity', 'compliance_daily'];
    for (const table of merged) await ac.client.command({ query: `OPTIMIZE TABLE ${db}.${table} FINAL` });
    // and the engine's own merges of the copies' parts (events, group states: ~0.3 s of CPU a second for minutes)
    // done here, not inside the figure's measured loads, as the sink's build leaves its data
    await settle(ac, (line) => log(`build ${events}: ${line}`));
    const n = await one<{ n: string }>(`SELECT toString(count()) AS n FROM ${db}.events`);
    if (Number(n.n) !== events) throw new Error(`replicated ${n.n} events, not ${events}`);
    built = `${events} events: the ${from}-event data (${source}) ×${copies}, time-shifted copies on the same hosts (dashboardData.ts REPLICATED), ${merged.join(', ')} merged (OPTIMIZE FINAL), the engine's merges settled, in ${((Date.now() - t0) / 1e3).toFixed(0)} s, ${new Date().toISOString()}\n`;
  } finally {
    await ac.close();
  }
  await writeFile(join(building, 'BUILT'), built);
  await rename(building, dir);
  log(`build ${events}: done in ${((Date.now() - t0) / 1e3).toFixed(0)} s`);
  return dir;
};
