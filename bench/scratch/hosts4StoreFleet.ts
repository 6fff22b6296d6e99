/**
 * hosts4's one-off A/B of the store alone (issue 23): \`npx tsx bench/scratch/hosts4StoreFleet.ts <events> <hosts>\`
 * appends the fleet mix (parsed once, before the clock) through the SQLite store's appendToStreams, one call per
 * 1,000-event slice grouped by host, 4 in flight, as the ingest pipeline does; prints the process's CPU (both
 * threads) and wall time. Run in several trees one after another; results in bench/results/s12-hosts4-ab.txt.
 */
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { hostStreamName, parseEvent, type IommuEvent } from '../../schemas/index.js';
import { getSqliteEventStore } from '../../services/shared/eventStore/sqlite/sqliteEventStore.js';
import { fleetMixStream } from '../figures/ingestFleet.bench.js';
const [events, hosts] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(path.join(tmpdir(), 'storefleet-'));
const all: IommuEvent[] = [];
for (const raw of fleetMixStream(events!, hosts!)) { const r = parseEvent(raw); if (!r.ok) throw r.error; all.push(r.value); }
const store = getSqliteEventStore({ path: path.join(dir, 'events.sqlite') });
await store.ready?.();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const inFlight: Promise<unknown>[] = [];
for (let from = 0; from < all.length; from += 1000) {
  const slice = new Map<string, IommuEvent[]>();
  for (const e of all.slice(from, from + 1000)) { const l = slice.get(e.host); if (l) l.push(e); else slice.set(e.host, [e]); }
  inFlight.push(store.appendToStreams([...slice].map(([h, es]) => ({ streamName: hostStreamName(h), events: es, options: { expectedRevision: 'any' as const } }))));
  if (inFlight.length >= 4) await inFlight.shift();
  await new Promise<void>((r) => setImmediate(r));
}
await Promise.all(inFlight);
const cpu = process.cpuUsage(cpu0);
const seconds = (performance.now() - t0) / 1000;
await store.close();
console.log(JSON.stringify({ events, hosts, cpu: (cpu.user + cpu.system) / 1e6, seconds, rate: events! / seconds }));
rmSync(dir, { recursive: true, force: true });
