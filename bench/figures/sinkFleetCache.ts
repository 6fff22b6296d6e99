import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { IommuEvent } from '../../schemas/index.js';
import { writeJsonLines } from '../../services/simulator/sinks.js';
import { fleetOf } from './analytics.bench.js';

/**
 * Issue 23: the sink figure's history generated once and kept (JSON lines, one event each) under
 * ~/.cache/iommutrail/bench/, so a 1e7 run reads its events instead of simulating them for an hour. The file's
 * name carries the size, the hosts and a digest of the simulator's sources: a changed simulator makes a new file.
 */
const simulatorDir = join(dirname(fileURLToPath(import.meta.url)), '../../services/simulator');

const simulatorDigest = (): string => {
  const hash = createHash('sha256');
  for (const f of readdirSync(simulatorDir).filter((n) => n.endsWith('.ts') && !n.includes('.spec.')).sort()) hash.update(f).update(readFileSync(join(simulatorDir, f)));
  return hash.digest('hex').slice(0, 16);
};

export const fleetCacheFile = (size: number, hosts: number): string =>
  join(process.env.IOMMUTRAIL_BENCH_CACHE ?? join(homedir(), '.cache/iommutrail/bench'), `sink-fleet-${size}-${hosts}-${simulatorDigest()}.jsonl`);

/** writes the fleet of `size` events over `hosts` hosts to its cache file (complete or absent: written aside, then renamed) */
export const writeFleetCache = async (size: number, hosts: number): Promise<string> => {
  const file = fleetCacheFile(size, hosts);
  if (existsSync(file)) return file;
  mkdirSync(dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  const out = createWriteStream(partial);
  await writeJsonLines(fleetOf(size, hosts), out);
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  renameSync(partial, file);
  return file;
};

/**
 * the first `limit` events (all by default) of a JSON lines file the simulator wrote: valid by construction, so
 * parsed without the catalogue's validation (readHistoryFile's), which would be what the figures measure
 */
export async function* eventLines(file: string, limit = Infinity): AsyncGenerator<IommuEvent> {
  const lines = createInterface({ input: createReadStream(file, { highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    if (n >= limit) break;
    if (line.length === 0) continue;
    n++;
    yield JSON.parse(line) as IommuEvent;
  }
  lines.close();
}

/** the fleet's events, read from its cache file (made first when absent) */
export async function* cachedFleet(size: number, hosts: number): AsyncGenerator<IommuEvent> {
  yield* eventLines(await writeFleetCache(size, hosts));
}

// `tsx bench/figures/sinkFleetCache.ts <size> <hosts>`: makes a cache file ahead of a run
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [size, hosts] = process.argv.slice(2).map(Number);
  if (size === undefined || hosts === undefined || !(size > 0) || !(hosts > 0)) {
    process.stderr.write('usage: sinkFleetCache.ts <size> <hosts>\n');
    process.exit(2);
  }
  process.stdout.write(`${await writeFleetCache(size, hosts)}\n`);
}
