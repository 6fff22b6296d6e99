import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../services/shared/config/config.js';
import { createLogger } from '../../services/shared/config/logger.js';
import { hashToken } from '../../services/shared/config/tokens.js';
import { loadExtensions } from '../../services/serve/extensions.js';
import { startService, type ServiceExtension } from '../../services/serve/server.js';
import { simulateFleet } from '../../services/simulator/simulateFleet.js';
import { defineFigure } from '../harness.js';

/**
 * Issue 16: serve's total CPU (every thread of the process: the ingest pipeline, the store's writer, the live
 * projection, the analytics sink and chdb) per 1e6 ingested events with analytics on, beside the same run with
 * analytics off (the reference): the ratio is what analytics costs on top of ingest and the live fold. Events go
 * through the service's ingest pipeline in deliveries of 1000 (the HTTP parse is the ingest figure's); the clock
 * stops when the live projection and the analytics sink have both reached the store's head.
 */
const DELIVERY = 1000;

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const runServe = async (dir: string, analytics: boolean, deliveries: readonly unknown[][]): Promise<number> => {
  mkdirSync(dir, { recursive: true });
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      logLevel: 'silent',
      analytics: { enabled: analytics },
      http: { port: 0 },
      store: { durability: 'normal' },
      auth: { tokens: [{ name: 'bench', sha256: hashToken('bench-token'), roles: ['admin'] }] },
    },
  });
  let extensions: readonly ServiceExtension[] = [];
  const service = await startService(config, {
    logger: createLogger({ level: 'silent' }),
    extensions: async (core) => (extensions = await loadExtensions(core)),
  });
  try {
    const t0 = cpuSeconds();
    for (const d of deliveries) await service.ingest.ingest(d);
    for (;;) {
      const head = await service.store.headPosition();
      let behind = head > service.live.position();
      for (const e of extensions) if (e.lag && (await e.lag()) > 0n) behind = true;
      if (!behind) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return cpuSeconds() - t0;
  } finally {
    await service.shutdown('bench done');
  }
};

export default defineFigure({
  name: 'serve-cpu',
  issue: 16,
  // Not 1e7: the simulated events are made before the clock starts and held in memory (about 10 GiB at 1e7), and
  // two ingests with analytics of 1e7 events take hours on this shared machine
  sizes: { quick: [2e4], full: [1e5, 1e6] },
  async measure(size, ctx) {
    const hosts = Math.max(10, Math.min(200, Math.round(size / 5_000)));
    const all = [...simulateFleet({ seed: 16, hosts, events: size })];
    const deliveries: unknown[][] = [];
    for (let i = 0; i < all.length; i += DELIVERY) deliveries.push(all.slice(i, i + DELIVERY));
    const off = await runServe(join(ctx.tmpDir, 'off'), false, deliveries);
    const on = await runServe(join(ctx.tmpDir, 'on'), true, deliveries);
    const per = (s: number): number => (s / all.length) * 1e6;
    ctx.log(`serve-cpu: ${all.length} events from ${hosts} hosts: ${on.toFixed(2)} CPU-s with analytics, ${off.toFixed(2)} without`);
    return [
      {
        label: 'serve CPU-seconds per 1e6 ingested events, analytics on',
        value: per(on),
        unit: 'CPU-s/1e6 events',
        higherIsBetter: false,
        reference: { label: 'the same, analytics off', value: per(off), kind: 'peer' },
      },
    ];
  },
});
