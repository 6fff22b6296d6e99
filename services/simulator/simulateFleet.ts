/**
 * The fleet simulator: seeded, deterministic (same options → the same events, byte for byte), streaming with
 * bounded state from a few events to 100 million. Hosts run side by side and their events come out in time
 * order (a heap on each host's next step).
 */
import type { MistakeLabel } from '../../projections/index.js';
import type { IommuEventInput } from '../../schemas/index.js';
import { ValidationError } from '../../schemas/index.js';
import { createHostLife, type HostLife } from './hostLife.js';
import { createRng } from './prng.js';
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
}

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
  const root = createRng(options.seed ?? 1);
  const width = String(hostCount).length;
  const hosts: HostLife[] = [];
  for (let i = 0; i < hostCount; i++) {
    const rng = root.fork(`host-${i}`);
    // a fleet with room for it has every kind of host at least once; the rest are drawn by weight
    const profile = hostCount >= PROFILES.length && i < PROFILES.length ? PROFILES[i]![0] : rng.weighted(PROFILES);
    const name = `${prefix}${profile}-${String(i + 1).padStart(width, '0')}`;
    hosts.push(
      createHostLife(createHostTopology(rng, name, profile, kernels), rng, {
        mistakeRate,
        defectRate,
        // a stream of its own (not forked: the host's other draws stay what they were)
        defects: createRng(`${String(options.seed ?? 1)}/defects/${i}`),
        traces: options.traces ?? true,
        // hosts' clocks start a little apart, as agents never start together
        startNs: (options.startNs ?? DEFAULT_START_NS) + BigInt(rng.int(0, 5_000_000)) * 1000n,
        concurrency,
      }),
    );
  }

  // min-heap of hosts by their next step time; ties broken by host index for determinism
  const heap: number[] = hosts.map((_, i) => i);
  const key = (i: number) => hosts[i]!.nextAt();
  const less = (a: number, b: number) => {
    const ka = key(a);
    const kb = key(b);
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
      [heap[pos], heap[m]] = [heap[m]!, heap[pos]!];
      pos = m;
    }
  };
  for (let i = Math.floor(heap.length / 2) - 1; i >= 0; i--) siftDown(i);

  let emitted = 0;
  // the seq of the last event of each host that came out: a label counts only for events that did
  const lastOut = new Array<number>(hosts.length).fill(0);
  const labelsOut: MistakeLabel[] = [];
  /** keeps a host's finished labels whose first event came out (cut at the end of the stream) */
  const collectLabels = (i: number): void => {
    for (const l of hosts[i]!.drainLabels()) {
      if (l.from.seq > lastOut[i]!) continue;
      labelsOut.push(l.until !== null && l.until.seq > lastOut[i]! ? { ...l, until: null } : l);
    }
  };
  function* events(): Generator<IommuEventInput, void, void> {
    while (emitted < total) {
      const i = heap[0]!;
      const host = hosts[i]!;
      host.step();
      for (const e of host.drain()) {
        if (emitted >= total) break;
        emitted += 1;
        // a repeated or late record has a lower seq than one already out
        lastOut[i] = Math.max(lastOut[i]!, (e as { seq: number }).seq);
        yield e;
      }
      collectLabels(i);
      siftDown(0);
    }
  }

  return {
    events,
    hosts: () => hosts.map((h) => h.name),
    /**
     * The ground truth of the events that came out so far: one label per injected mistake (the rule that must
     * fire, host, group, device, first and last event; `until` null while the mistake lasts at the end). Grows
     * with the number of mistakes, not of events.
     */
    labels: (): MistakeLabel[] => [
      ...labelsOut,
      ...hosts.flatMap((h, i) => h.pendingLabels().filter((l) => l.from.seq <= lastOut[i]!)),
    ],
    /** the largest per-host state right now (devices, groups, open fds, episodes): bounded by topology */
    stateSize: () => {
      const sizes = hosts.map((h) => h.stateSize());
      const max: Record<string, number> = {};
      for (const s of sizes) for (const [k, v] of Object.entries(s)) max[k] = Math.max(max[k] ?? 0, v);
      return max;
    },
  };
};

/** the events of a simulated fleet, as an iterable (for benchmarks, tests, the demo loader) */
export const simulateFleet = (options: SimulateFleetOptions = {}): Iterable<IommuEventInput> => createFleetSimulation(options).events();

/** a small, lively fleet for demos and the dashboard: 8 hosts, 20k events, a visible share of mistakes */
export const DEMO_FLEET_OPTIONS: Required<Omit<SimulateFleetOptions, 'startNs'>> = {
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
