import { join } from 'node:path';
import { createAnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { defineFigure } from '../harness.js';
import { writeHistory, type CpuParts } from './analytics.bench.js';
import { cachedFleet } from './sinkFleetCache.js';

/** a side's CPU by thread, in µs per event (the JS thread's share is the sink's own work: fold, rows, encoding) */
const cpuParts = (p: CpuParts, events: number): string =>
  `JS thread ${((p.main * 1e3) / events).toFixed(2)}, merges ${((p.merges * 1e3) / events).toFixed(2)}, other threads ${((p.other * 1e3) / events).toFixed(2)} (engine inserts, V8 helpers)`;

/**
 * Issue 23: the analytics sink alone (the `analytics` figure without its dashboard rounds, so 1e7 events fit in a
 * run): the history through the sink (fold + rows + batched idempotent inserts + checkpoint, the next batch folded
 * while one is written) beside a raw `client.insert` of the very same rows in the same run, segment by segment
 * (analytics.bench.ts `writeHistory`). Twice: in wall time, as the issue states it, and in CPU time of the whole
 * process (the engine's threads and the GC's included), which a machine shared with other work disturbs less.
 * The aim: ≥ 0.8× of the raw insert at every size, the cost per row flat (k ≤ 1.05). The events are simulated once per
 * size and read back from a cache file (sinkFleetCache.ts): a 1e7 run no longer spends an hour simulating them.
 */
export default defineFigure({
  name: 'sink',
  issue: 23,
  sizes: { quick: [1e4], full: [1e5, 1e6, 1e7] },
  measure: async (size, ctx) => {
    const hosts = Math.max(10, Math.min(200, Math.round(size / 50_000)));
    const ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(ctx.tmpDir, 'clickhouse') }, database: 'iommutrail' });
    const raw = { ...ac, database: 'iommutrail_raw' };
    try {
      await migrate(ac);
      await migrate(raw);
      const r = await writeHistory(ac, raw, size, hosts, cachedFleet(size, hosts));
      ctx.log(
        `${size} events, ${hosts} hosts, ${r.sinkRows} rows: sink ${Math.round(r.sinkRate).toLocaleString('en')} rows/s (${Math.round(r.sinkCpuRate).toLocaleString('en')} per CPU-s) ` +
          `vs raw insert ${Math.round(r.rawRate).toLocaleString('en')} rows/s (${Math.round(r.rawCpuRate).toLocaleString('en')} per CPU-s); ${r.heldDays} day accumulators held at the end`,
      );
      if (r.sinkCpu !== undefined && r.rawCpu !== undefined) ctx.log(`CPU µs per event by thread: sink ${cpuParts(r.sinkCpu, size)}; raw insert ${cpuParts(r.rawCpu, size)}`);
      const reference = { label: 'raw client.insert of the same rows (JSONCompactEachRow)', kind: 'raw-limit' } as const;
      return [
        { label: 'sink into chdb, wall time', value: r.sinkRate, unit: 'rows/s', higherIsBetter: true, targetRatio: 0.8, reference: { ...reference, value: r.rawRate } },
        { label: 'sink into chdb, CPU time (all threads)', value: r.sinkCpuRate, unit: 'rows/CPU-s', higherIsBetter: true, targetRatio: 0.8, reference: { ...reference, value: r.rawCpuRate } },
      ];
    } finally {
      await ac.close();
    }
  },
});
