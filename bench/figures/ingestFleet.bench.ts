import path from 'node:path';
import { historyEvents } from '../../projections/testing/generateHistory.js';
import { createEventBuilder } from '../../schemas/index.js';
import { defineFigure, type Measurement } from '../harness.js';
import { ingestRun, REFERENCE_HOSTS } from './ingestHosts.bench.js';

/**
 * Issue 23's figure: a fleet with the fleet's realistic mix (the simulator's `--activity fleet`, made by the
 * fast generator, which the simulator is too slow for at these sizes) ingested at 100 events per host and
 * over 1e5 hosts, beside the same number of events over 20 hosts with the same mix, in the same run. The aim:
 * ≥ 0.8×. `ingest-hosts` keeps the worst case (one topology snapshot per host).
 *
 * The mix, per 20 hosts: 14 idle (their boot snapshot and the agent's periodic sysfs reads, each a topology
 * snapshot: a fifth of the events, spread evenly over them), 5 busy and 1 heavy (the ownership lifecycle of
 * `generateHistory`: VM launches, rebinds), a heavy host making 8 times a busy host's events. The share of the
 * idle hosts' reads is fixed, not their number per host, so the 20 hosts of the reference fold the same kinds
 * of events in the same proportions as the fleet (only the active hosts' first snapshots, 3% of the events at
 * 10 events per host, are more in the fleet): the ratio is the cost of the hosts, not of another mix. Each
 * host's events are spread evenly over the run, so new hosts keep arriving and every batch mixes hosts, as a
 * relay or a Kafka consumer delivers them.
 */
const HEAVY_WEIGHT = 8;
const IDLE_SHARE = 0.2;

type Activity = 'idle' | 'busy' | 'heavy';
const activityOf = (i: number): Activity => (i % 20 === 0 ? 'heavy' : i % 20 <= 5 ? 'busy' : 'idle');

/** an idle host: its boot snapshot and the agent's periodic reads (4 NIC groups and a GPU group) */
function* idleHost(host: string, count: number): Generator<Record<string, unknown>> {
  const b = createEventBuilder({ host, stepNs: 3_600_000_000_000n });
  const devices = [];
  const groups = [];
  for (let n = 0; n < 4; n++) {
    const dev = `0000:${(0x10 + n).toString(16)}:00.0`;
    devices.push({ device: dev, vendorId: '8086', deviceId: '1521', classCode: '020000', driver: 'ixgbe', group: 100 + n });
    groups.push({ group: 100 + n, devices: [dev] });
  }
  devices.push({ device: '0000:80:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'nvidia', group: 200 });
  groups.push({ group: 200, devices: ['0000:80:00.0'] });
  for (let k = 0; k < count; k++) yield b.raw('TopologySnapshotTaken', { capabilities: { iommu: true, interruptRemapping: true }, groups, devices });
}

/** an active host: `generateHistory`'s one-host lifecycle, renamed (its generator names hosts by index) */
function* activeHost(host: string, count: number): Generator<Record<string, unknown>> {
  for (const e of historyEvents({ events: count, hosts: 1, nicGroups: 4, gpuGroups: 1 })) yield { ...e, host };
}

/**
 * Each event's time and id as a live fleet's would be: times follow the store's order (1 ms apart), and the
 * UUIDv7 ids with them, so ids arrive in order as they do from collectors with synchronised clocks (the
 * generators' own clocks start every host at the same time, which would scatter the ids of many hosts).
 */
const T0_MS = 1_732_400_000_000;
const timed = (e: Record<string, unknown>, k: number): Record<string, unknown> => {
  const ms = (T0_MS + k).toString(16).padStart(12, '0');
  return { ...e, time: (BigInt(T0_MS + k) * 1_000_000n).toString(), id: `${ms.slice(0, 8)}-${ms.slice(8)}-7000-8000-${k.toString(16).padStart(12, '0')}` };
};

/** how many of `events` events each of `hosts` hosts makes with the fleet's mix */
const countsOf = (events: number, hosts: number): number[] => {
  const idleHosts = Array.from({ length: hosts }, (_, i) => activityOf(i)).filter((a) => a === 'idle').length;
  // every idle host has its boot snapshot; the reads beyond it go round the idle hosts
  const idleEvents = Math.max(idleHosts, Math.round(events * IDLE_SHARE));
  let idleRank = 0;
  const counts = Array.from({ length: hosts }, (_, i) => {
    if (activityOf(i) !== 'idle') return 0;
    const rank = idleRank++;
    return Math.floor(idleEvents / idleHosts) + (rank < idleEvents % idleHosts ? 1 : 0);
  });
  const weightOf = (i: number): number => ({ idle: 0, busy: 1, heavy: HEAVY_WEIGHT })[activityOf(i)];
  const idle = idleEvents;
  const weights = counts.map((_, i) => weightOf(i));
  const total = weights.reduce((a, b) => a + b, 0);
  let left = events - idle;
  counts.forEach((c, i) => {
    if (weights[i]! === 0) return;
    const n = Math.max(1, Math.floor(((events - idle) * weights[i]!) / total));
    counts[i] = c + Math.min(n, left);
    left -= counts[i]!;
  });
  // rounding: the rest goes to the heavy hosts, one each in turn
  for (let i = 0; left > 0; i = i + 20 < hosts ? i + 20 : 0) {
    counts[i]! += 1;
    left--;
  }
  return counts;
};

/** a host's next event: its place in the run (k-th of `count`, spread evenly; ties by host; past the end with none asked) and its generator */
interface HostCursor {
  at: number;
  k: number;
  readonly i: number;
  readonly count: number;
  readonly events: Iterator<Record<string, unknown>>;
}
const before = (a: HostCursor, b: HostCursor): boolean => a.at < b.at || (a.at === b.at && a.i < b.i);
const placeOf = (c: HostCursor): number => (c.k + 0.5) / c.count + c.i * 1e-12;

/**
 * `events` events over `hosts` hosts with the fleet's mix, in store order (each host's events spread over the
 * run), made as they are taken: the hosts' generators merged by the place of their next event (a heap of one
 * cursor per host), not every event of the run made, kept and sorted first (at 1e6 events that held GBs for
 * the whole ingest: RSS that is the bench's, not the service's). The same events in the same order as a sort.
 */
export function* fleetMixStream(events: number, hosts: number): Generator<Record<string, unknown>> {
  const heap: HostCursor[] = [];
  const down = (at: number): void => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let least = at;
      if (l < heap.length && before(heap[l]!, heap[least]!)) least = l;
      if (r < heap.length && before(heap[r]!, heap[least]!)) least = r;
      if (least === at) return;
      [heap[at], heap[least]] = [heap[least]!, heap[at]!];
      at = least;
    }
  };
  countsOf(events, hosts).forEach((count, i) => {
    const host = `fleet-${String(i).padStart(6, '0')}`;
    const cursor = { at: 0, k: 0, i, count, events: (activityOf(i) === 'idle' ? idleHost(host, count) : activeHost(host, count))[Symbol.iterator]() };
    cursor.at = placeOf(cursor);
    heap.push(cursor);
  });
  for (let at = Math.floor(heap.length / 2) - 1; at >= 0; at--) down(at);
  let k = 0;
  while (heap.length > 0) {
    const next = heap[0]!;
    const e = next.events.next();
    if (!e.done) yield timed(e.value, k++);
    next.k++;
    // a generator may make more than asked (an active host's first snapshot): they follow, as a sort put them
    if (e.done) {
      const last = heap.pop()!;
      if (heap.length === 0) break;
      heap[0] = last;
    } else next.at = placeOf(next);
    down(0);
  }
}

/** {@link fleetMixStream}'s events as an array */
export const fleetMix = (events: number, hosts: number): Record<string, unknown>[] => [...fleetMixStream(events, hosts)];

/**
 * The fleets measured at a size: 100 and 10 events per host (at most 1e5 hosts); `BENCH_FLEET_HOSTS=1e5` (a
 * comma-separated list) measures only those, e.g. one large fleet when a full run of both does not fit the time
 */
const hostsAt = (size: number): number[] => {
  const asked = process.env.BENCH_FLEET_HOSTS?.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  if (asked !== undefined && asked.length > 0) return asked;
  return [...new Set([Math.min(100_000, Math.max(REFERENCE_HOSTS, size / 100)), Math.min(100_000, size / 10)])];
};

export default defineFigure({
  name: 'ingest-fleet',
  issue: 23,
  sizes: { quick: [2e4], full: [1e6] },
  async measure(size, ctx) {
    const ref = await ingestRun(path.join(ctx.tmpDir, 'few'), () => fleetMixStream(size, REFERENCE_HOSTS));
    const measurements: Measurement[] = [];
    for (const hosts of ctx.mode === 'quick' ? [200] : hostsAt(size)) {
      const many = await ingestRun(path.join(ctx.tmpDir, `hosts-${hosts}`), () => fleetMixStream(size, hosts));
      ctx.log(
        `${size} events, fleet mix: over ${REFERENCE_HOSTS} hosts ${Math.round(ref.rate)} events/s (${ref.seconds.toFixed(1)} s), over ${many.known} hosts ${Math.round(many.rate)} events/s ` +
          `(${many.seconds.toFixed(1)} s, ${many.resident} resident); heap after ingest ${(many.heap / 2 ** 20).toFixed(0)} MiB (${REFERENCE_HOSTS} hosts: ${(ref.heap / 2 ** 20).toFixed(0)} MiB), ` +
          `${many.devices} live devices, RSS ${(many.rss / 2 ** 30).toFixed(2)} GiB; CPU ${many.cpuSeconds.toFixed(1)} s (${REFERENCE_HOSTS} hosts: ${ref.cpuSeconds.toFixed(1)} s); ` +
          `memory after (MiB) ${JSON.stringify(many.memory)}`,
      );
      const per = `${Math.round(size / hosts)} events per host`;
      measurements.push(
        {
          label: `in-process ingest, fleet mix, ${per}, durable`,
          value: many.rate,
          unit: 'events/s',
          higherIsBetter: true,
          reference: { label: `the same number of events over ${REFERENCE_HOSTS} hosts, the same mix`, value: ref.rate, kind: 'peer' },
          targetRatio: 0.8,
        },
        {
          label: `heap per host after ingest, fleet mix, ${per}`,
          value: many.heap / many.known,
          unit: 'bytes',
          higherIsBetter: false,
          reference: { label: `heap per host over ${REFERENCE_HOSTS} hosts (the same number of events)`, value: ref.heap / ref.known, kind: 'peer' },
        },
        {
          label: `heap per live device after ingest, fleet mix, ${per}`,
          value: many.heap / Math.max(1, many.devices),
          unit: 'bytes',
          higherIsBetter: false,
          reference: { label: `heap per live device over ${REFERENCE_HOSTS} hosts`, value: ref.heap / Math.max(1, ref.devices), kind: 'peer' },
        },
      );
    }
    return measurements;
  },
});
