import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getSqliteEventStore } from '../../services/shared/eventStore/index.js';
import { createLiveProjection } from '../../services/serve/query/liveProjection.js';
import { openSnapshotStore } from '../../services/serve/query/snapshotStore.js';
import { historyStore } from '../fleetStore.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 23: a host's state `?at=` a position (the live projection's hostStateAt: its newest snapshot at or
 * before it, then a fold of its own stream), median and p99 over random hosts and positions on a store of N
 * events over 20 hosts, with the defaults (a snapshot every 500 events of a host, up to 2,000 kept per host)
 * beside, in the same run, the previous defaults (every 10,000, 32 kept and thinned). The fold reads the host's
 * range from its snapshot up to the position in one bounded read. The aim: p99 ≤ 20 ms at 1e7 events, not
 * growing with history. The store is written as the history is generated (1e7 events never in memory) and, in
 * full mode, kept in the bench cache between runs (bench/fleetStore.ts), opened read-only here. The
 * fold's read is bounded by the host's next snapshot (a count), not by the position alone: SQLite scanned the
 * rest of the host's stream for that. CPU time per query is a figure of its own: on a shared machine the wall
 * clock's tail is mostly time spent waiting for a core.
 */
const HOSTS = 20;
const QUERIES = 400;

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

export default defineFigure({
  name: 'time-travel',
  issue: 23,
  sizes: { quick: [10_000], full: [100_000, 1_000_000, 10_000_000] },
  async measure(size, ctx) {
    const { storeFile, events } = await historyStore(ctx, { events: size, hosts: HOSTS }, 'read');
    const store = getSqliteEventStore({ path: storeFile, readOnly: true, keyDir: false });
    const head = await store.headPosition();
    // the same queries for both: a deterministic walk over hosts and positions
    let seed = 7;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const queries = Array.from({ length: QUERIES }, () => ({ host: `node-${String(Math.floor(next() * HOSTS)).padStart(3, '0')}`, position: 1n + BigInt(Math.floor(next() * Number(head))) }));

    const latencies = async (name: string, snapshotEvery: number, keepPerHost: number) => {
      const dir = join(ctx.tmpDir, name);
      mkdirSync(dir, { recursive: true });
      const snapshots = openSnapshotStore(dir, { keepPerHost });
      const live = createLiveProjection({ store, snapshots, snapshotEvery, pollMs: 3_600_000 });
      await live.start();
      const ms: number[] = [];
      // CPU time too (this thread): on a shared machine the wall-clock tail is mostly time spent waiting for a core
      const cpu: number[] = [];
      for (const q of queries) {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        await live.hostStateAt(q.host, { position: q.position });
        const c = process.cpuUsage(c0);
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
        cpu.push((c.user + c.system) / 1e3);
      }
      await live.stop();
      snapshots.close();
      return { ms: ms.sort((a, b) => a - b), cpu: cpu.sort((a, b) => a - b) };
    };
    const { ms: now, cpu: nowCpu } = await latencies('now', 500, 2_000);
    const { ms: before, cpu: beforeCpu } = await latencies('before', 10_000, 32);
    await store.close();
    ctx.log(`${events} events over ${HOSTS} hosts, ${QUERIES} queries; now median ${quantile(now, 0.5).toFixed(1)} p99 ${quantile(now, 0.99).toFixed(1)} ms, before median ${quantile(before, 0.5).toFixed(1)} p99 ${quantile(before, 0.99).toFixed(1)} ms`);
    ctx.log(`CPU time per query: now median ${quantile(nowCpu, 0.5).toFixed(1)} p99 ${quantile(nowCpu, 0.99).toFixed(1)} ms, before median ${quantile(beforeCpu, 0.5).toFixed(1)} p99 ${quantile(beforeCpu, 0.99).toFixed(1)} ms`);
    // labels without the size: the runner prints each one's growth exponent across sizes (the aim: flat)
    const measurements: Measurement[] = (
      [
        ['median', 0.5, now, before, ''],
        ['p99', 0.99, now, before, ''],
        ['p99', 0.99, nowCpu, beforeCpu, ', CPU time'],
      ] as const
    ).map(([label, q, mine, theirs, what]) => ({
      label: `host state at a position, ${label}${what}`,
      value: quantile(mine, q),
      unit: 'ms',
      higherIsBetter: false,
      reference: { label: `the same with the previous snapshot defaults (every 10,000 events, 32 kept)`, value: quantile(theirs, q), kind: 'peer' as const },
      ...(label === 'p99' ? { targetRatio: 20 / quantile(theirs, q) } : {}),
    }));
    return measurements;
  },
});
