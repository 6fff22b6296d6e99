/**
 * The fleet simulator: seeded, deterministic (same options → the same events, byte for byte), streaming with
 * bounded state from a few events to 100 million. Hosts run side by side and their events come out in time
 * order (a heap on each host's next step).
 *
 * Memory follows the hosts that have something in flight (issue 23), not the fleet: a host that has not started
 * holds its 4-byte seed; a quiet one (no episode, nothing open, no mistake under way) waits as a `ParkedHostLife`
 * record of a few hundred bytes once more than `residentQuiet` quiet hosts are in memory (the quiet host whose
 * next step comes last goes first), and is rebuilt from its seed and that record when its next step comes. Parking changes no event: the same options give the same bytes
 * whether hosts are parked at once or never.
 *
 * Activity (`activity`): a real fleet is mostly idle. `FLEET_ACTIVITY_MIX` draws each host's class by weight:
 * - idle (70%): no episodes at all; the agent's boot snapshot and its periodic sysfs read (a topology snapshot
 *   about once an hour, exponential gaps);
 * - busy (25%): at most 2 episodes at once (`concurrency` if lower) and pauses 20 times as long: a few VM
 *   launches, rebinds and hot swaps an hour;
 * - heavy (5%): `concurrency` episodes at once with the shortest pauses: the tail that makes most of the events.
 * Busy and heavy hosts get the hourly read too. Without `activity` every host is heavy and takes no periodic read
 * (the simulator as it was: the same bytes as before). Kernel releases come from `kernelMix`, topologies from the
 * host profiles (GPU groups with their functions, behind a root port without ACS a quarter of the time; SR-IOV
 * NICs with one group per VF, dual ports without ACS sharing one; NVMe singletons; hosts without an IOMMU).
 */
import type { MistakeLabel } from '../../projections/index.js';
import type { IommuEventInput } from '../../schemas/index.js';
import { ValidationError } from '../../schemas/index.js';
import { createHostLife, type HostLife, type ParkedHostLife } from './hostLife.js';
import { applyParkedGroups } from './kernelModel.js';
import { createRng, resumeRng } from './prng.js';
import { parseRelease } from '../../projections/kernel/releases.js';
import { createHostTopology, DEFAULT_KERNEL_MIX, type HostProfile, type KernelMix } from './topology.js';

export interface SimulateFleetOptions {
  /** @defaultValue 1 */
  readonly seed?: number | string;
  /** @defaultValue 10 */
  readonly hosts?: number;
  /** how many events in total @defaultValue 10_000 */
  readonly events?: number;
  /**
   * the fraction of VM launches that include an operator mistake (and of hosts set up with unsafe interrupts,
   * of legacy launches sharing a group between tenants) @defaultValue 0.05
   */
  readonly mistakeRate?: number;
  /**
   * the fraction of VM launches whose record is defective (a lost driver change, a tampered outcome), and,
   * scaled, of host steps with a sequence defect (a lost trace event, a reused seq, a swapped delivery):
   * what the rules about states upstream prevents, and the sequence rules, exist to catch @defaultValue 0
   */
  readonly defectRate?: number;
  /** emit iommu:* trace events (attach_device_to_domain per group device on every domain switch) @defaultValue true */
  readonly traces?: boolean;
  /** wall-clock ns of the fleet's start @defaultValue 2024-11-24T00:00:00Z */
  readonly startNs?: bigint;
  /** host names are `<prefix><profile>-<n>` @defaultValue 'sim-' */
  readonly hostPrefix?: string;
  /** concurrent episodes per host @defaultValue 6 */
  readonly concurrency?: number;
  /** the kernel releases hosts run, by weight (`[['6.1.0-28-amd64', 1], ['6.12.48', 3]]`) @defaultValue DEFAULT_KERNEL_MIX */
  readonly kernelMix?: KernelMix;
  /** how busy hosts are, by weight (`FLEET_ACTIVITY_MIX`); absent: every host heavy, without periodic reads */
  readonly activity?: ActivityMix | undefined;
  /**
   * how many quiet hosts stay in memory before the one that steps last is parked as a record: a working set that
   * saves rebuilding a host that steps again soon. 0 parks at once; Infinity never (the events are the same).
   * Small on purpose: a host in memory holds ~17 KB (its topology and the decider's state), which outlives the
   * young generation and is collected as old garbage; at 1e5 hosts a set of 32 took 0.52x the CPU of a set of
   * 1,024 and 0.40x the RSS, rebuilding 670 hosts where 1,024 rebuilt none (200k events)
   * @defaultValue 32
   */
  readonly residentQuiet?: number;
}

export type HostActivity = 'idle' | 'busy' | 'heavy';
export type ActivityMix = readonly (readonly [HostActivity, number])[];

/** most hosts idle, a quarter busy, a heavy tail of 5% (see the header) */
export const FLEET_ACTIVITY_MIX: ActivityMix = [
  ['idle', 70],
  ['busy', 25],
  ['heavy', 5],
];

/**
 * `--activity` of the CLI: `fleet` (FLEET_ACTIVITY_MIX), `heavy` (every host heavy: the default) or weights by
 * class, e.g. `idle=80,busy=15,heavy=5`; undefined for the default
 */
export const parseActivityMix = (text: string): ActivityMix | undefined => {
  if (text === 'fleet') return FLEET_ACTIVITY_MIX;
  if (text === 'heavy') return undefined;
  const mix = text.split(',').map((part): [HostActivity, number] => {
    const m = /^\s*(\w+)\s*=\s*([0-9.]+)\s*$/.exec(part);
    if (m === null) throw new ValidationError(`--activity: expected fleet, heavy or class=weight,... (idle, busy, heavy), got ${JSON.stringify(text)}`);
    return [m[1] as HostActivity, Number(m[2])];
  });
  return checkActivityMix(mix);
};

/** the agent's periodic sysfs read, on average once an hour (µs) */
const HEARTBEAT_US = 3_600 * 1_000_000;

const ACTIVITY: Readonly<Record<HostActivity, { readonly concurrency: (max: number) => number; readonly pause: number }>> = {
  idle: { concurrency: () => 0, pause: 1 },
  busy: { concurrency: (max) => Math.min(2, max), pause: 20 },
  heavy: { concurrency: (max) => max, pause: 1 },
};

const PROFILES: readonly (readonly [HostProfile, number])[] = [
  ['gpu', 40],
  ['nic', 30],
  ['storage', 12],
  ['workstation', 8],
  ['no-iommu', 10],
];

const check = (name: string, value: number, min: number, max: number, integer = true): number => {
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value)))
    throw new ValidationError(`${name}: expected ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${value}`);
  return value;
};

export const DEFAULT_START_NS = 1_732_406_400_000_000_000n;

/** an activity mix is a non-empty list of known classes with positive weights */
const checkActivityMix = (mix: ActivityMix): ActivityMix => {
  if (mix.length === 0) throw new ValidationError('activity: expected at least one host class');
  mix.forEach(([activity, weight], i) => {
    if (!Object.hasOwn(ACTIVITY, activity)) throw new ValidationError(`activity[${i}]: ${JSON.stringify(activity)} is not a host class (expected idle, busy or heavy)`);
    check(`activity[${i}] (${activity}) weight`, weight, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, false);
  });
  return mix;
};

/** a kernel mix is a non-empty list of `uname -r` releases with positive weights */
const checkKernelMix = (mix: KernelMix): KernelMix => {
  if (mix.length === 0) throw new ValidationError('kernelMix: expected at least one kernel release');
  mix.forEach(([release, weight], i) => {
    if (parseRelease(release) === null) throw new ValidationError(`kernelMix[${i}]: ${JSON.stringify(release)} is not a kernel release (expected e.g. 6.12.48 or 6.1.0-28-amd64)`);
    check(`kernelMix[${i}] (${release}) weight`, weight, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, false);
  });
  return mix;
};

/** a simulation whose events stream out of `events()`; `stateSize()` shows that nothing grows with the count */
export const createFleetSimulation = (options: SimulateFleetOptions = {}) => {
  const hostCount = check('hosts', options.hosts ?? 10, 1, 100_000);
  const total = check('events', options.events ?? 10_000, 0, Number.MAX_SAFE_INTEGER);
  const mistakeRate = check('mistakeRate', options.mistakeRate ?? 0.05, 0, 1, false);
  const defectRate = check('defectRate', options.defectRate ?? 0, 0, 1, false);
  const concurrency = check('concurrency', options.concurrency ?? 6, 1, 64);
  const prefix = options.hostPrefix ?? 'sim-';
  const kernels = checkKernelMix(options.kernelMix ?? DEFAULT_KERNEL_MIX);
  const activityMix = options.activity === undefined ? undefined : checkActivityMix(options.activity);
  const residentQuiet = options.residentQuiet === Infinity ? Infinity : check('residentQuiet', options.residentQuiet ?? 32, 0, Number.MAX_SAFE_INTEGER);
  const seed = options.seed ?? 1;
  const fleetStartNs = options.startNs ?? DEFAULT_START_NS;
  const width = String(hostCount).length;
  // each host's stream is forked from the root in host order: the 4-byte seed is all a host holds before it starts
  const root = createRng(seed);
  const seeds = new Uint32Array(hostCount);
  for (let i = 0; i < hostCount; i++) seeds[i] = root.forkSeed(`host-${i}`);

  /** the host's profile and name: its stream's first draw (the first hosts of a fleet have one of each) */
  const profileOf = (i: number, rng: ReturnType<typeof createRng>): HostProfile =>
    hostCount >= PROFILES.length && i < PROFILES.length ? PROFILES[i]![0] : rng.weighted(PROFILES);
  const nameOf = (i: number, profile: HostProfile) => `${prefix}${profile}-${String(i + 1).padStart(width, '0')}`;
  const activityOf = (i: number): HostActivity => {
    if (activityMix === undefined) return 'heavy';
    if (hostCount >= activityMix.length && i < activityMix.length) return activityMix[i]![0];
    return createRng(`${String(seed)}/activity/${i}`).weighted(activityMix);
  };

  /** a host from its seed: topology and start time drawn again, then started afresh or resumed from its record */
  const hostLife = (i: number, parked: ParkedHostLife | undefined): HostLife => {
    const rng = createRng(seeds[i]!);
    const profile = profileOf(i, rng);
    const topology = createHostTopology(rng, nameOf(i, profile), profile, kernels);
    // hosts' clocks start a little apart, as agents never start together
    const startNs = fleetStartNs + BigInt(rng.int(0, 5_000_000)) * 1000n;
    const activity = ACTIVITY[activityOf(i)];
    if (parked !== undefined) applyParkedGroups(topology, parked.kernel);
    return createHostLife(
      topology,
      parked === undefined ? rng : resumeRng(parked.rng),
      {
        mistakeRate,
        defectRate,
        // a stream of its own (not forked: the host's other draws stay what they were)
        defects: parked === undefined ? createRng(`${String(seed)}/defects/${i}`) : resumeRng(parked.defects),
        traces: options.traces ?? true,
        startNs,
        concurrency: activity.concurrency(concurrency),
        pause: activity.pause,
        ...(activityMix === undefined ? {} : { heartbeatUs: HEARTBEAT_US }),
      },
      parked,
    );
  };

  /** hosts in memory (stepping, or quiet in the working set) and parked ones, by index */
  const lives: (HostLife | undefined)[] = new Array<HostLife | undefined>(hostCount);
  const parkedHosts: (ParkedHostLife | undefined)[] = new Array<ParkedHostLife | undefined>(hostCount);
  /** each host's next step (µs since the fleet's start) */
  const nextAt = new Float64Array(hostCount);
  /**
   * Quiet hosts in memory, as a max-heap on their next step: the working set keeps the quiet hosts that step
   * soonest and parks the one that steps last (the fleet knows every host's next step: the cache's best choice).
   * `quietPos[i]` is host i's place in the heap, -1 when it is not in it.
   */
  const quietHeap = new Int32Array(hostCount);
  const quietPos = new Int32Array(hostCount).fill(-1);
  let quietCount = 0;
  const later = (a: number, b: number) => nextAt[a]! > nextAt[b]! || (nextAt[a] === nextAt[b] && a > b);
  const placeQuiet = (i: number, pos: number): void => {
    quietHeap[pos] = i;
    quietPos[i] = pos;
  };
  const quietUp = (pos: number): void => {
    const i = quietHeap[pos]!;
    while (pos > 0) {
      const up = (pos - 1) >> 1;
      if (!later(i, quietHeap[up]!)) break;
      placeQuiet(quietHeap[up]!, pos);
      pos = up;
    }
    placeQuiet(i, pos);
  };
  const quietDown = (pos: number): void => {
    const i = quietHeap[pos]!;
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= quietCount) break;
      const c = l + 1 < quietCount && later(quietHeap[l + 1]!, quietHeap[l]!) ? l + 1 : l;
      if (!later(quietHeap[c]!, i)) break;
      placeQuiet(quietHeap[c]!, pos);
      pos = c;
    }
    placeQuiet(i, pos);
  };
  const leaveQuiet = (i: number): void => {
    const pos = quietPos[i]!;
    if (pos < 0) return;
    quietPos[i] = -1;
    const last = quietHeap[--quietCount]!;
    if (last === i) return;
    placeQuiet(last, pos);
    quietUp(pos);
    quietDown(quietPos[last]!);
  };
  /** hosts built again from a parked record (each costs a topology draw and a sysfs read folded by the decider) */
  let rebuilds = 0;
  const lifeOf = (i: number): HostLife => {
    let life = lives[i];
    if (life === undefined) {
      const parked = parkedHosts[i];
      if (parked !== undefined) rebuilds += 1;
      life = lives[i] = hostLife(i, parked);
      parkedHosts[i] = undefined;
    }
    return life;
  };
  /** after host i stepped (its next step set): into the working set if quiet, and the quiet hosts that step last beyond it parked */
  const settle = (i: number): void => {
    leaveQuiet(i);
    if (residentQuiet === Infinity || !lives[i]!.quiet()) return;
    placeQuiet(i, quietCount++);
    quietUp(quietCount - 1);
    while (quietCount > residentQuiet) {
      const j = quietHeap[0]!;
      leaveQuiet(j);
      const record = lives[j]!.park();
      if (record === null) continue;
      parkedHosts[j] = record;
      lives[j] = undefined;
    }
  };

  // min-heap of hosts by their next step time; ties broken by host index for determinism
  const heap = new Int32Array(hostCount);
  for (let i = 0; i < hostCount; i++) heap[i] = i;
  const less = (a: number, b: number) => {
    const ka = nextAt[a]!;
    const kb = nextAt[b]!;
    return ka < kb || (ka === kb && a < b);
  };
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1;
      const r = l + 1;
      let m = pos;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === pos) return;
      const t = heap[pos]!;
      heap[pos] = heap[m]!;
      heap[m] = t;
      pos = m;
    }
  };

  let emitted = 0;
  // the seq of the last event of each host that came out: a label counts only for events that did
  const lastOut = new Float64Array(hostCount);
  const labelsOut: MistakeLabel[] = [];
  /** keeps a host's finished labels whose first event came out (cut at the end of the stream) */
  const collectLabels = (i: number, host: HostLife): void => {
    for (const l of host.drainLabels()) {
      if (l.from.seq > lastOut[i]!) continue;
      labelsOut.push(l.until !== null && l.until.seq > lastOut[i]! ? { ...l, until: null } : l);
    }
  };
  function* events(): Generator<IommuEventInput, void, void> {
    while (emitted < total) {
      const i = heap[0]!;
      const host = lifeOf(i);
      host.step();
      for (const e of host.drain()) {
        if (emitted >= total) break;
        emitted += 1;
        // a repeated or late record has a lower seq than one already out
        lastOut[i] = Math.max(lastOut[i]!, (e as { seq: number }).seq);
        yield e;
      }
      collectLabels(i, host);
      nextAt[i] = host.nextAt();
      settle(i);
      siftDown(0);
    }
  }
  const resident = (): HostLife[] => lives.filter((h): h is HostLife => h !== undefined);

  return {
    events,
    /** the hosts' names (each drawn again from its seed: for a summary, not a loop) */
    hosts: () => Array.from({ length: hostCount }, (_, i) => nameOf(i, profileOf(i, createRng(seeds[i]!)))),
    /** each host's activity class, by name (drawn again: for a summary) */
    activities: (): Map<string, HostActivity> => new Map(Array.from({ length: hostCount }, (_, i) => [nameOf(i, profileOf(i, createRng(seeds[i]!))), activityOf(i)])),
    /**
     * The ground truth of the events that came out so far: one label per injected mistake (the rule that must
     * fire, host, group, device, first and last event; `until` null while the mistake lasts at the end). Grows
     * with the number of mistakes, not of events.
     */
    labels: (): MistakeLabel[] => [
      ...labelsOut,
      // a parked host has no label under way
      ...lives.flatMap((h, i) => (h === undefined ? [] : h.pendingLabels().filter((l) => l.from.seq <= lastOut[i]!))),
    ],
    /** the largest per-host state right now (devices, groups, open fds, episodes): bounded by topology */
    stateSize: () => {
      const sizes = resident().map((h) => h.stateSize());
      const max: Record<string, number> = {};
      for (const s of sizes) for (const [k, v] of Object.entries(s)) max[k] = Math.max(max[k] ?? 0, v);
      return max;
    },
    /**
     * What the fleet holds, as counts: host lives in memory, those with something in flight (live), parked
     * records, and the most entries any parked record holds (changed devices and cdevs: bounded by hardware)
     */
    residency: () => {
      let parked = 0;
      let largestParkedRecord = 0;
      let soonestParked = Infinity;
      let latestQuiet = -Infinity;
      for (const [i, p] of parkedHosts.entries()) {
        if (p === undefined) continue;
        parked += 1;
        largestParkedRecord = Math.max(largestParkedRecord, p.slots.length + p.kernel.changed.length + p.kernel.cdevs.length);
        soonestParked = Math.min(soonestParked, nextAt[i]!);
      }
      for (const [i, h] of lives.entries()) if (h !== undefined && h.quiet()) latestQuiet = Math.max(latestQuiet, nextAt[i]!);
      const inMemory = resident();
      return {
        hosts: hostCount,
        resident: inMemory.length,
        live: inMemory.filter((h) => !h.quiet()).length,
        parked,
        largestParkedRecord,
        rebuilds,
        /** the next step (µs) of the parked host that steps first, and of the quiet host in memory that steps last */
        soonestParked,
        latestQuiet,
      };
    },
  };
};

/** the events of a simulated fleet, as an iterable (for benchmarks, tests, the demo loader) */
export const simulateFleet = (options: SimulateFleetOptions = {}): Iterable<IommuEventInput> => createFleetSimulation(options).events();

/** a small, lively fleet for demos and the dashboard: 8 hosts, 20k events, a visible share of mistakes */
export const DEMO_FLEET_OPTIONS: Required<Omit<SimulateFleetOptions, 'startNs' | 'activity' | 'residentQuiet'>> = {
  seed: 2021,
  hosts: 8,
  events: 20_000,
  mistakeRate: 0.15,
  defectRate: 0,
  traces: true,
  hostPrefix: 'demo-',
  concurrency: 4,
  kernelMix: DEFAULT_KERNEL_MIX,
};

export const simulateDemoFleet = (overrides: SimulateFleetOptions = {}): Iterable<IommuEventInput> =>
  simulateFleet({ ...DEMO_FLEET_OPTIONS, ...overrides });
