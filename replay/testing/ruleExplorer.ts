import { evolveWithDecision } from '../../projections/kernel/decider.js';
import type { Observation, Operation, ProtocolDecider } from '../../projections/kernel/types.js';
import { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, ROOT_PORT, RMRR_USB, XHCI, topology } from './fixtures.js';

/**
 * Seeded random walks over a model: operations drawn from a small pool of handles on the reference
 * topology (protocol.md §3) in varied driver and capability settings, so most calls land on live objects.
 * Used to show that every rule a variant documents is reached by some operation sequence. Pure and
 * deterministic for a seed.
 */

/** mulberry32: a small seeded generator (tests only) */
const prng = (seed: number) => {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const DEVICES = [GPU, AUDIO, ROOT_PORT, XHCI, NIC, RMRR_USB, DEV_A, DEV_B, DEV_C] as const;
const GROUPS = [7, 9, 12, 15, 30] as const;
/** the group of each of DEVICES in the reference topology */
const GROUP_OF = [7, 7, 9, 9, 12, 15, 30, 30, 30] as const;
const DRIVERS = [null, 'vfio-pci', 'vfio-pci', 'vfio-pci', 'vfio-pci', 'mlx5-vfio-pci', 'pci-stub', 'igb', 'nouveau'] as const;

/** a topology snapshot with random drivers, PASID support, sub-groups and capabilities */
const randomTopology = (r: () => number): Observation => {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const allVfio = r() < 0.5;
  const drivers = Object.fromEntries(DEVICES.map((d) => [d, allVfio && r() < 0.9 ? 'vfio-pci' : pick(DRIVERS)]));
  const devices = Object.fromEntries(DEVICES.map((d) => [d, r() < 0.3 ? { maxPasids: 4, pasidAttach: r() < 0.8 } : {}]));
  const snap = topology({ drivers, devices, ...(r() < 0.5 ? { subGroups: { 7: [[GPU], [AUDIO]], 30: [[DEV_A], [DEV_B, DEV_C]] } } : {}) }) as Extract<Observation, { type: 'TopologySnapshotTaken' }>;
  const caps = { ...snap.data.capabilities };
  if (r() < 0.1) caps.interruptRemapping = false;
  if (r() < 0.05) caps.cacheCoherent = false;
  if (r() < 0.05) caps.allowUnsafeInterrupts = true;
  // a device outside any group (no IOMMU behind it)
  const loose = r() < 0.15 ? pick(DEVICES) : undefined;
  const groups = snap.data.groups.map((g) => ({ ...g, devices: g.devices.filter((d) => d !== loose), ...(g.subGroups ? { subGroups: g.subGroups.map((s) => s.filter((d) => d !== loose)) } : {}) }));
  const devs = snap.data.devices.map((d) => (d.device === loose ? { ...d, group: undefined } : d));
  return { ...snap, data: { ...snap.data, capabilities: caps, groups, devices: devs } } as Observation;
};

const randomOperation = (r: () => number): Operation => {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const device = pick(DEVICES);
  // each device has its own two fd names, so calls on one fd form coherent sequences
  const deviceFd = `${device}#${r() < 0.75 ? 0 : 1}`;
  const ictx = r() < 0.7 ? 'fdA' : pick(['fdB', 'c0']);
  const container = r() < 0.8 ? 'c0' : pick(['c1', 'fdA']);
  const group = pick(GROUPS);
  const groupFd = `g${group}`;
  const id = 1 + Math.floor(r() * 4);
  const odd = r() < 0.05;
  const page = BigInt(Math.floor(r() * 4)) * 0x1000n + (r() < 0.1 ? 1n : 0n);
  const length = r() < 0.1 ? 0n : BigInt(1 + Math.floor(r() * 3)) * 0x1000n;
  const ops: (() => Operation)[] = [
    () => ({ kind: 'bindDriver', device, driver: pick(['vfio-pci', 'vfio-pci', 'pci-stub', 'igb', 'snd_hda_intel']), via: r() < 0.2 ? 'drivers_probe' : 'bind' }),
    () => ({ kind: 'unbindDriver', device, driver: r() < 0.1 ? 'igb' : undefined }),
    () => ({ kind: 'openDevice', device, deviceFd }),
    () => ({ kind: 'openDevice', device, deviceFd }),
    () => ({ kind: 'accessDevice', device, deviceFd, access: 'mmap' }),
    () => ({
      kind: 'bindIommufd',
      device,
      deviceFd,
      ictx,
      ...(odd ? { badFd: pick(['negative', 'closed', 'not-iommufd'] as const) } : {}),
      ...(r() < 0.05 ? { args: { argsz: 8 } } : {}),
    }),
    () => ({ kind: 'bindIommufd', device, deviceFd, ictx }),
    () => ({ kind: 'attachPt', device, deviceFd, ptId: id }),
    () => ({ kind: 'attachPt', device, deviceFd, ptId: id, ...(r() < 0.15 ? { pasid: Math.floor(r() * 6) } : {}), ...(odd ? { args: { flags: 1 } } : {}) }),
    () => ({ kind: 'detachPt', device, deviceFd, ...(r() < 0.1 ? { pasid: Math.floor(r() * 6) } : {}), ...(odd ? { args: { argsz: 4 } } : {}) }),
    () => ({ kind: 'closeDevice', device, deviceFd }),
    () => ({ kind: 'openIommufd', ictx: pick(['fdA', 'fdB']) }),
    () => ({ kind: 'closeIommufd', ictx }),
    () => ({ kind: 'allocIoas', ictx }),
    () => ({ kind: 'allocIoas', ictx }),
    () => ({ kind: 'allocHwpt', ictx, devId: id, ptId: 1 + Math.floor(r() * 6), flags: odd ? 0x100 : 0 }),
    () => ({ kind: 'destroy', ictx, objectId: id }),
    () => ({ kind: 'mapIoas', ictx, ioasId: id, iova: page, length }),
    () => ({ kind: 'unmapIoas', ictx, ioasId: id, iova: page, length: r() < 0.5 ? length : length * 4n }),
    () => ({ kind: 'openGroup', group, groupFd }),
    () => ({ kind: 'closeGroup', group, groupFd }),
    () => ({ kind: 'groupStatus', group, groupFd }),
    () => ({ kind: 'setContainer', group, groupFd, container, containerKind: r() < 0.3 ? 'iommufd' : 'legacy' }),
    () => ({ kind: 'unsetContainer', group, groupFd }),
    () => ({ kind: 'getDeviceFd', group, groupFd, device, newFd: deviceFd }),
    () => ({ kind: 'openContainer', container: pick(['c0', 'c1']) }),
    () => ({ kind: 'setIommu', container, iommuType: 'type1v2' }),
    () => ({ kind: 'closeContainer', container }),
  ];
  return pick(ops)();
};

/** the rule ids a decider names over `walks` random walks of `steps` operations each */
export const exploreRules = (decider: ProtocolDecider, options: { seed: number; walks: number; steps: number }): Set<string> => {
  const seen = new Set<string>();
  const r = prng(options.seed);
  for (let w = 0; w < options.walks; w++) {
    const state = decider.initialState(randomTopology(r));
    // most walks start from a live iommufd with an IOAS and open device fds, as a VMM would
    // (or from the legacy group path: a container with its groups and device fds)
    const flavour = r();
    const prefix: Operation[] =
      flavour < 0.5
        ? [{ kind: 'openIommufd', ictx: 'fdA' }, { kind: 'allocIoas', ictx: 'fdA' }, ...DEVICES.map((device): Operation => ({ kind: 'openDevice', device, deviceFd: `${device}#0` }))]
        : flavour < 0.8
          ? [
              { kind: 'openContainer', container: 'c0' },
              ...GROUPS.flatMap((group): Operation[] => [
                { kind: 'openGroup', group, groupFd: `g${group}` },
                { kind: 'setContainer', group, groupFd: `g${group}`, container: 'c0', containerKind: 'legacy' },
              ]),
              { kind: 'setIommu', container: 'c0', iommuType: 'type1v2' },
              ...DEVICES.map((device, i): Operation => ({ kind: 'getDeviceFd', group: GROUP_OF[i]!, groupFd: `g${GROUP_OF[i]!}`, device, newFd: `${device}#0` })),
            ]
          : [];
    for (let s = 0; s < prefix.length + options.steps && state.crashed === null; s++) {
      const decision = decider.decide(prefix[s] ?? randomOperation(r), state);
      seen.add(decision.rule);
      evolveWithDecision(decider, state, decision);
    }
  }
  return seen;
};
