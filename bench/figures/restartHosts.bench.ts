import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig } from '../../services/shared/config/config.js';
import { createLogger } from '../../services/shared/config/logger.js';
import { hashToken } from '../../services/shared/config/tokens.js';
import { createLiveProjection } from '../../services/serve/query/liveProjection.js';
import { startService } from '../../services/serve/server.js';
import { openSnapshotStore } from '../../services/serve/query/snapshotStore.js';
import { getSqliteEventStore } from '../../services/shared/eventStore/index.js';
import { historyStore } from '../fleetStore.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 23: a fleet of many hosts (size = hosts, 10 events each). A restart of the live projection to ready
 * reads one small row per host (states are read when a host is first used), beside the raw read of those rows;
 * and the memory a host costs once its state is in memory (heap after every host was used, per host) beside
 * the bytes of its checkpoint on disk. And the service itself restarted on that data folder (`serve`'s start in
 * this process, analytics off: store open, projections restored, HTTP up) until `/readyz` answers 200, beside the
 * same start on an empty data folder (what a start costs whatever the fleet). The aim: ready in under 5 s at 1e5
 * hosts. Labels do not name the size, so the runner prints each figure's growth exponent across sizes.
 */
const EVENTS_PER_HOST = 10;

const msSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/**
 * The raw limit of a restart: what it reads of projections.sqlite (every host's name, the open violations of the
 * hosts with some), by plain better-sqlite3; and, for the log, the full index rows a restart read before (five
 * values per host).
 */
export const readCheckpointIndex = (file: string): { hosts: number; ms: number; fullRowsMs: number } => {
  const db = new Database(file, { readonly: true });
  db.defaultSafeIntegers(true);
  const t0 = process.hrtime.bigint();
  const hosts = db.prepare('SELECT host FROM host_checkpoints WHERE position <= ?').pluck().all(1n << 62n).length;
  db.prepare("SELECT host, open FROM host_checkpoints WHERE position <= ? AND open <> '{}'").raw().all(1n << 62n);
  const ms = msSince(t0);
  const t1 = process.hrtime.bigint();
  db.prepare('SELECT host, position, revision, time_ns, open FROM host_checkpoints').raw().all();
  const fullRowsMs = msSince(t1);
  db.close();
  return { hosts, ms, fullRowsMs };
};

/** `serve` started on `dataDir` (analytics off, an ephemeral port) until /readyz answers 200: its time, then stopped */
export const serviceReadyMs = async (dataDir: string): Promise<number> => {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      logLevel: 'silent',
      analytics: { enabled: false },
      http: { port: 0 },
      auth: { tokens: [{ name: 'bench', sha256: hashToken('bench-restart-token'), roles: ['admin'] }] },
    },
  });
  const t0 = process.hrtime.bigint();
  const service = await startService(config, { logger: createLogger({ level: 'silent' }) });
  for (;;) {
    const r = await fetch(`${service.url}/readyz`);
    if (r.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const ms = msSince(t0);
  await service.shutdown('bench');
  return ms;
};
const heapUsed = (): number => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
};

export default defineFigure({
  name: 'restart-hosts',
  issue: 23,
  // hosts (10 events each): 1e3 to the issue's 1e5, so the growth exponent prints over two decades
  sizes: { quick: [1_000], full: [1_000, 10_000, 100_000] },
  async measure(hosts, ctx) {
    // a copy of the cached store in the service's data folder: the live projection and the service write beside it
    const { storeFile, events } = await historyStore(ctx, { events: hosts * EVENTS_PER_HOST, hosts }, 'copy');
    const store = getSqliteEventStore({ path: storeFile, durability: 'normal', keyDir: false });
    const start = async () => {
      const snapshots = openSnapshotStore(ctx.tmpDir);
      const live = createLiveProjection({ store, snapshots, pollMs: 3_600_000 });
      const t0 = process.hrtime.bigint();
      await live.start();
      return { live, ms: msSince(t0), stop: async () => (await live.stop(), snapshots.close()) };
    };
    // each instance is let go of once stopped (held only inside its function): a restart, or the service after it,
    // measured while the cold fold's host states were still held ran in a heap a restarted process does not have
    // (at 1e5 hosts about 1 GiB to mark on every full collection)
    const cold = await (async () => {
      const first = await start();
      await first.stop();
      return { ms: first.ms };
    })();
    const warm = await (async () => {
      const before = heapUsed();
      const restarted = await start();
      const afterRestart = heapUsed();
      let used = 0;
      for (const name of restarted.live.hostNames()) if (restarted.live.host(name)) used++;
      const afterUse = heapUsed();
      await restarted.stop();
      return { ms: restarted.ms, used, perHostRestart: (afterRestart - before) / hosts, perHostUsed: (afterUse - before) / used };
    })();
    await store.close();
    // the service on the same folder (the checkpoints just written), and on an empty one
    const serviceMs = await serviceReadyMs(ctx.tmpDir);
    const empty = join(ctx.tmpDir, 'empty');
    mkdirSync(empty, { recursive: true });
    const emptyMs = await serviceReadyMs(empty);
    const file = join(ctx.tmpDir, 'projections.sqlite');
    const db = new Database(file, { readonly: true });
    const raw = readCheckpointIndex(file);
    const stateBytes = Number((db.prepare('SELECT sum(length(state)) AS n FROM host_states').get() as { n: number }).n);
    db.close();
    const { used, perHostRestart, perHostUsed } = warm;
    ctx.log(
      `${events} events of ${hosts} hosts; cold start ${cold.ms.toFixed(0)} ms, restart ${warm.ms.toFixed(0)} ms, raw read of ${raw.hosts} hosts' names and open violations ${raw.ms.toFixed(0)} ms (of the full index rows ${raw.fullRowsMs.toFixed(0)} ms); ` +
        `service restart to /readyz 200 ${serviceMs.toFixed(0)} ms (on an empty folder ${emptyMs.toFixed(0)} ms); ` +
        `heap per host ${perHostRestart.toFixed(0)} B after the restart, ${perHostUsed.toFixed(0)} B once all ${used} were used; ` +
        `checkpoint state ${(stateBytes / hosts).toFixed(0)} B per host, projections.sqlite ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB`,
    );
    const measurements: Measurement[] = [
      {
        label: 'restart of the live projection',
        value: warm.ms,
        unit: 'ms',
        higherIsBetter: false,
        reference: { label: 'reading what it reads (host names, open violations) with plain better-sqlite3', value: raw.ms, kind: 'raw-limit' },
      },
      {
        label: 'restart of the live projection, beside a cold start',
        value: warm.ms,
        unit: 'ms',
        higherIsBetter: false,
        reference: { label: 'cold start: folding every event', value: cold.ms, kind: 'peer' },
        targetRatio: 5_000 / cold.ms,
      },
      {
        label: 'service restart to /readyz 200',
        value: serviceMs,
        unit: 'ms',
        higherIsBetter: false,
        reference: { label: 'the same start on an empty data folder', value: emptyMs, kind: 'peer' },
      },
      {
        label: 'heap per host once used',
        value: perHostUsed,
        unit: 'bytes',
        higherIsBetter: false,
        reference: { label: 'its checkpoint state on disk (JSON)', value: stateBytes / hosts, kind: 'peer' },
      },
    ];
    return measurements;
  },
});
