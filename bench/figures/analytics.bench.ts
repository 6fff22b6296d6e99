import { join } from 'node:path';
import { createFleetProjection } from '../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../schemas/index.js';
import { createAnalyticsQueries, type TableName } from '../../services/serve/analytics/analyticsQueries.js';
import type { SinkBatch } from '../../services/serve/analytics/analyticsSink.js';
import { DEFAULT_BATCH_SIZE } from '../../services/serve/analytics/analyticsProjector.js';
import { getClickHouseAnalyticsSink } from '../../services/serve/analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient, INSERT_SETTINGS, type AnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { createFleetAnalyzer } from '../../services/serve/analytics/fleetAnalyzer.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { batchRows, positionalRows } from '../../services/serve/analytics/rows.js';
import { simulateFleet } from '../../services/simulator/simulateFleet.js';
import { defineFigure, type BenchContext, type Measurement } from '../harness.js';
import { threadCpu, type ThreadCpu } from '../threadCpu.js';

/**
 * Issues 8 and 23: the analytics sink into chdb (fold + row mapping + batched idempotent inserts into the four
 * tables + checkpoint) in rows/s, beside a raw `client.insert` of the very same rows (already mapped, outside the
 * timer) into identical tables in the same run. The history goes in segments of {@link SEGMENT} batches: each
 * segment through the sink as the projector writes a backfill (the next batch folded while the one before is
 * written, one write in flight), then the segment's rows through the raw insert (one table after the other, as a
 * plain client user does), so the ratio covers the whole history at every size and at most a segment is held
 * (memory stays bounded). The raw side sends JSONCompactEachRow, the faster of the client's two row formats
 * (JSONEachRow measured 0.80× of it); the sink sends a column document (JSONColumnsWithMetadata), which a raw insert of
 * the same rows in that format costs ~0.85× of JSONCompactEachRow's CPU (issue 23, sink3). Then a full load of the dashboard on the whole history as the
 * page makes it: the summary and each panel's page (rows and total) at once; median and p99 latency.
 */
const BATCH = DEFAULT_BATCH_SIZE;
/** batches per segment: written by the sink, then by the raw insert */
const SEGMENT = 4;
/** hosts per run of the simulator (its memory grows with the hosts of one run): a larger fleet is made of several */
const HOSTS_PER_RUN = 2_000;
const QUERY_ROUNDS = 15;
/** the dashboard page's panels and the rows per page it asks for (dashboard.js: PANELS, pageSize() default 500) */
export const DASHBOARD_PANELS: readonly { readonly name: TableName; readonly limit?: number }[] = [
  { name: 'open-by-rule' },
  { name: 'trends' },
  { name: 'compliance' },
  { name: 'host-compliance', limit: 500 },
  { name: 'hosts', limit: 500 },
  { name: 'violations', limit: 500 },
];
const DASHBOARD_TABLES_IN_TURN: readonly TableName[] = ['open-by-rule', 'trends', 'compliance', 'hosts', 'violations'];

const rowsOf = (b: SinkBatch): number => b.events.length + b.violations.length + b.groupStates.length + b.compliance.length + 1;

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;

/** a page load's median and p99 (sorted samples, ms), each beside the same quantile of `SELECT count()` */
const latencyMeasurements = (label: string, what: string, sorted: readonly number[], countSorted: readonly number[]): Measurement[] =>
  ([[0.5, 'median'], [0.99, 'p99']] as const).map(([q, name]) => ({
    label: name === 'median' ? `${label}, median (${what})` : `${label}, p99`,
    value: quantile(sorted, q),
    unit: 'ms',
    higherIsBetter: false,
    reference: { label: `SELECT count() FROM events, ${name}`, value: quantile(countSorted, q), kind: 'raw-limit' },
  }));

/** the simulated fleet of `hosts` (runs of at most HOSTS_PER_RUN hosts, each named apart), `size` events in all */
export function* fleetOf(size: number, hosts: number): Generator<IommuEvent> {
  const runs = Math.ceil(hosts / HOSTS_PER_RUN);
  for (let run = 0; run < runs; run++) {
    const runHosts = Math.min(HOSTS_PER_RUN, hosts - run * HOSTS_PER_RUN);
    const events = Math.round((size * (run + 1)) / runs) - Math.round((size * run) / runs);
    const hostPrefix = runs === 1 ? 'sim-' : `sim${run}-`;
    // the simulator's events are valid by construction: no parse in a benchmark loop
    for (const input of simulateFleet({ events, hosts: runHosts, seed: 42 + run, mistakeRate: 0.1, hostPrefix })) yield input as unknown as IommuEvent;
  }
}

/** a side's CPU (ms) split by thread: the JS thread, the engine's merges, and the rest (the engine's inserts, V8's helpers) */
export interface CpuParts {
  readonly main: number;
  readonly merges: number;
  readonly other: number;
}

/**
 * The history through the sink and, segment by segment, the same rows through the raw insert. Its own function so
 * that the fold's states (every host's, held by the analyzer) are garbage before the dashboard is measured: the
 * service's dashboard does not run beside a backfill's fold of the whole fleet
 */
export const writeHistory = async (
  ac: AnalyticsClient,
  raw: AnalyticsClient,
  size: number,
  hosts: number,
  /** the history's events (the simulated fleet of `hosts` by default; the sink figure reads a cached generation of it) */
  events: Iterable<IommuEvent> | AsyncIterable<IommuEvent> = fleetOf(size, hosts),
): Promise<{ sinkRate: number; rawRate: number; sinkCpuRate: number; rawCpuRate: number; sinkRows: number; heldDays: number; sinkCpu: CpuParts | undefined; rawCpu: CpuParts | undefined }> => {
  const sink = getClickHouseAnalyticsSink(ac);
  const analyzer = createFleetAnalyzer(createFleetProjection());
  let position = 0n;
  let sinkNs = 0n;
  let rawNs = 0n;
  // CPU of the whole process (the engine's threads and the GC's included), the steadier measure on a shared machine
  let sinkCpuMs = 0;
  let rawCpuMs = 0;
  const cpuMs = (): number => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1e3;
  };
  // the same CPU by thread, where /proc tells it (issue 23: the JS thread's share is ours, the merges' the engine's)
  const perThread = threadCpu() !== undefined;
  const sinkCpu = { main: 0, merges: 0 };
  const rawCpu = { main: 0, merges: 0 };
  const addParts = (to: { main: number; merges: number }, from: ThreadCpu | undefined, until: ThreadCpu | undefined): void => {
    if (from === undefined || until === undefined) return;
    to.main += until.main - from.main;
    to.merges += until.merges - from.merges;
  };
  let sinkRows = 0;
  let segment: RecordedEvent[][] = [];
  let batch: RecordedEvent[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length > 0) segment.push(batch);
    batch = [];
    if (segment.length === 0) return;
    // the sink: each batch folded while the one before is written (the projector's backfill)
    const written: SinkBatch[] = [];
    const p0 = threadCpu();
    const c0 = cpuMs();
    const t0 = process.hrtime.bigint();
    let inFlight: Promise<unknown> = Promise.resolve();
    for (const events of segment) {
      const out = analyzer.apply(events);
      const b: SinkBatch = { ...out, checkpoint: { subscriber: 'bench', position: analyzer.position() } };
      written.push(b);
      await inFlight;
      inFlight = sink.write(b);
    }
    await inFlight;
    sinkNs += process.hrtime.bigint() - t0;
    sinkCpuMs += cpuMs() - c0;
    addParts(sinkCpu, p0, threadCpu());
    segment = [];
    // raw: the same rows, mapped outside the timer, one insert per table, one after the other
    const tables = written.map((b) => batchRows(b, Date.now()).tables.map((t) => ({ table: t.table, columns: t.columns, values: positionalRows(t) })));
    const p1 = threadCpu();
    const c1 = cpuMs();
    const t1 = process.hrtime.bigint();
    for (const t of tables.flat()) {
      await raw.client.insert({
        table: `${raw.database}.${t.table}`,
        format: 'JSONCompactEachRow',
        columns: t.columns as [string, ...string[]],
        values: t.values,
        clickhouse_settings: INSERT_SETTINGS,
      });
    }
    rawNs += process.hrtime.bigint() - t1;
    rawCpuMs += cpuMs() - c1;
    addParts(rawCpu, p1, threadCpu());
    for (const b of written) sinkRows += rowsOf(b);
  };
  for await (const event of events) {
    position++;
    batch.push({ event, streamName: `host-${event.host}`, streamPosition: position, globalPosition: position });
    if (batch.length >= BATCH) {
      segment.push(batch);
      batch = [];
      if (segment.length >= SEGMENT) await flush();
    }
  }
  await flush();

  const heldDays = analyzer.heldDays();
  const sinkRate = sinkRows / (Number(sinkNs) / 1e9);
  const rawRate = sinkRows / (Number(rawNs) / 1e9);
  const parts = (p: { main: number; merges: number }, total: number): CpuParts | undefined => (perThread ? { ...p, other: total - p.main - p.merges } : undefined);
  return {
    sinkRate,
    rawRate,
    sinkCpuRate: sinkRows / (sinkCpuMs / 1e3),
    rawCpuRate: sinkRows / (rawCpuMs / 1e3),
    sinkRows,
    heldDays,
    sinkCpu: parts(sinkCpu, sinkCpuMs),
    rawCpu: parts(rawCpu, rawCpuMs),
  };
};

/** the sink, the raw insert and the dashboard at `size` events over `hosts` hosts */
export const measureAnalytics = async (size: number, hosts: number, ctx: BenchContext): Promise<Measurement[]> => {
  const ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(ctx.tmpDir, 'clickhouse') }, database: 'iommutrail' });
  const raw = { ...ac, database: 'iommutrail_raw' };
  try {
    await migrate(ac);
    await migrate(raw);
    const { sinkRate, rawRate, sinkRows, heldDays } = await writeHistory(ac, raw, size, hosts);
    // the fold's states (every host's) go before the dashboard is measured
    (globalThis as { gc?: () => void }).gc?.();

    // dashboard queries on the whole history (first round warms caches and is not counted)
    const q = createAnalyticsQueries(ac);
    // the load issue 23 was first measured with (summary, then five tables of 1000 rows in turn), on its own
    // queries object so neither load answers from the other's compliance cache
    const inTurn = createAnalyticsQueries(ac);
    const latencies: number[] = [];
    const inTurnLatencies: number[] = [];
    const countLatencies: number[] = [];
    for (let round = 0; round <= QUERY_ROUNDS; round++) {
      const t0 = process.hrtime.bigint();
      await ac.client.query({ query: `SELECT count() FROM ${ac.database}.events`, format: 'JSONEachRow' }).then((r) => r.json());
      const t1 = process.hrtime.bigint();
      await Promise.all([q.summary({}), ...DASHBOARD_PANELS.map((p) => q.page(p.name, p.limit === undefined ? {} : { limit: p.limit }))]);
      const t2 = process.hrtime.bigint();
      await inTurn.summary({});
      for (const name of DASHBOARD_TABLES_IN_TURN) await inTurn.table(name, {});
      const t3 = process.hrtime.bigint();
      if (round > 0) {
        countLatencies.push(Number(t1 - t0) / 1e6);
        latencies.push(Number(t2 - t1) / 1e6);
        inTurnLatencies.push(Number(t3 - t2) / 1e6);
      }
    }
    latencies.sort((a, b) => a - b);
    inTurnLatencies.sort((a, b) => a - b);
    countLatencies.sort((a, b) => a - b);
    const summary = await q.summary({});
    ctx.log(
      `${size} events, ${hosts} hosts: sink ${Math.round(sinkRate).toLocaleString('en')} rows/s vs raw insert ${Math.round(rawRate).toLocaleString('en')} rows/s ` +
        `(${sinkRows} rows, ${heldDays} day accumulators held at the end); dashboard load (summary + ${DASHBOARD_PANELS.length} panels at once) ` +
        `median ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms; in turn (summary + 5 tables) ` +
        `median ${quantile(inTurnLatencies, 0.5).toFixed(1)} ms, p99 ${quantile(inTurnLatencies, 0.99).toFixed(1)} ms; ` +
        `${summary.openViolations} open violations on ${summary.hostsTracked} hosts`,
    );
    const measurements: Measurement[] = [
      {
        label: 'sink into chdb (fold + map + idempotent batched inserts)',
        value: sinkRate,
        unit: 'rows/s',
        higherIsBetter: true,
        reference: { label: 'raw client.insert of the same rows (JSONCompactEachRow)', value: rawRate, kind: 'raw-limit' },
      },
      ...latencyMeasurements('dashboard load', 'summary + 6 panels at once, as the page loads', latencies, countLatencies),
      ...latencyMeasurements('dashboard load in turn', 'summary + 5 tables of 1000 rows one after the other', inTurnLatencies, countLatencies),
    ];
    return measurements;
  } finally {
    await ac.close();
  }
};

export default defineFigure({
  name: 'analytics',
  issue: 8,
  sizes: { quick: [1e4], full: [1e5, 1e6, 1e7] },
  measure: (size, ctx) => measureAnalytics(size, Math.max(10, Math.min(200, Math.round(size / 50_000))), ctx),
});
