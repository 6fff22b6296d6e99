import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createFleetProjection } from '../../projections/index.js';
import type { IommuEvent, RecordedEvent } from '../../schemas/index.js';
import { DEFAULT_BATCH_SIZE } from '../../services/serve/analytics/analyticsProjector.js';
import type { SinkBatch } from '../../services/serve/analytics/analyticsSink.js';
import { getClickHouseAnalyticsSink } from '../../services/serve/analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient } from '../../services/serve/analytics/clickhouseClient.js';
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

/** builds (once) the analytics data of the fleet's first `events` events; returns its folder */
export const buildFleetData = async (events: number, log: (line: string) => void = () => undefined): Promise<string> => {
  const dir = fleetDataDir(events);
  if (existsSync(dir)) return dir;
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
