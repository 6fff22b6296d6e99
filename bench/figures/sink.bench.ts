import { join } from 'node:path';
import { createAnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
import { migrate } from '../../services/serve/analytics/migrate.js';
import { defineFigure } from '../harness.js';
import { writeHistory, type CpuParts } from './analytics.bench.js';
import { eventLines, writeFleetCache } from './sinkFleetCache.js';

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
 *
 * Both sides are measured warm (issue 23, sink5): first the fleet's first {@link WARM_UP} events go through both
 * ({@link WARM_UP_PASSES} times), into databases of their own that are then dropped (their merges end with them),
 * untimed; the first pass's figures are logged as the cold start. A process's first ~1e5 events cost the sink ~0.9
 * CPU-s more than later ones: V8 compiling the fold's and the rows' code on its helper threads
 * (`--no-concurrent-recompilation` moves it onto the JS thread, a single-threaded GC does not remove it;
 * s13-sink5-warmup.txt), once per process (and again for a second fold), while the raw side's path is the client's
 * insert that the sink has just compiled. A service pays it at start.
 */
/** events through both sides before the measured run: most of the start-up CPU comes in the first 1e5 (s13-sink5-warmup.txt) */
const WARM_UP = 100_000;
/**
 * passes of them, each with a new fold and sink: V8 optimizes the functions a fold makes (the projection's and the
 * analyzer's are closures made per instance) again for the second instance, not for the third (fold alone, 1e5 events:
 * 9.7, 7.2, then 3.6 µs/event of CPU; s13-sink5-warmup.txt). The measured run's is the third.
 */
const WARM_UP_PASSES = 2;

export default defineFigure({
  name: 'sink',
  issue: 23,
  sizes: { quick: [1e4], full: [1e5, 1e6, 1e7] },
  measure: async (size, ctx) => {
    const hosts = Math.max(10, Math.min(200, Math.round(size / 50_000)));
    const file = await writeFleetCache(size, hosts);
    const ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(ctx.tmpDir, 'clickhouse') }, database: 'iommutrail' });
    const raw = { ...ac, database: 'iommutrail_raw' };
    try {
      const warm = { ...ac, database: 'iommutrail_warm' };
      const warmRaw = { ...ac, database: 'iommutrail_warm_raw' };
      const warmEvents = Math.min(size, WARM_UP);
      for (let pass = 1; pass <= WARM_UP_PASSES; pass++) {
        await migrate(warm);
        await migrate(warmRaw);
        const w = await writeHistory(warm, warmRaw, warmEvents, hosts, eventLines(file, warmEvents));
        for (const db of [warm, warmRaw]) await ac.client.command({ query: `DROP DATABASE ${db.database} SYNC` });
        ctx.log(
          `${pass === 1 ? 'cold start' : `warm-up pass ${pass}`} (the first ${warmEvents} events, untimed): sink at ${(w.sinkCpuRate / w.rawCpuRate).toFixed(3)}× of the raw insert's CPU rate` +
            (w.sinkCpu !== undefined && w.rawCpu !== undefined ? `; CPU µs per event by thread: sink ${cpuParts(w.sinkCpu, warmEvents)}; raw insert ${cpuParts(w.rawCpu, warmEvents)}` : ''),
        );
      }
      await migrate(ac);
      await migrate(raw);
      const r = await writeHistory(ac, raw, size, hosts, eventLines(file));
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
