import { describe, expect, it } from 'vitest';
import type { IommuEventInput } from '../../schemas/index.js';
import { createFleetSimulation, FLEET_ACTIVITY_MIX, parseActivityMix, type HostActivity } from './simulateFleet.js';
import { DEFAULT_KERNEL_MIX } from './topology.js';

type Snapshot = Extract<IommuEventInput, { type: 'TopologySnapshotTaken' }>;

/**
 * Issue 23: a simulated fleet looks like a real one. Most hosts are idle (the agent's boot snapshot and its
 * periodic reads only), a quarter are busy, and a heavy tail of 5% makes most of the events; kernel releases come
 * from the kernel mix; topologies include single-device groups, multi-function groups behind a bridge, SR-IOV
 * VFs in groups of their own and hosts without an IOMMU. Deterministic by seed.
 */
describe('simulator > a realistic fleet (issue 23)', () => {
  const sim = createFleetSimulation({ seed: 23, hosts: 400, events: 30_000, activity: FLEET_ACTIVITY_MIX, residentQuiet: 32 });
  const events = [...sim.events()];
  const activity = sim.activities();
  const byHost = new Map<string, IommuEventInput[]>();
  for (const e of events) byHost.set(e.host, [...(byHost.get(e.host) ?? []), e]);
  const hostsOf = (a: HostActivity) => [...activity].filter(([, c]) => c === a).map(([h]) => h);
  const eventsOf = (a: HostActivity) => hostsOf(a).reduce((n, h) => n + (byHost.get(h)?.length ?? 0), 0);

  it('simfleet #2: given the fleet mix, then about 70% of hosts are idle, 25% busy and 5% heavy, and an idle host records topology snapshots only', () => {
    const share = (a: HostActivity) => hostsOf(a).length / 400;
    expect(share('idle')).toBeGreaterThan(0.6);
    expect(share('idle')).toBeLessThan(0.8);
    expect(share('busy')).toBeGreaterThan(0.17);
    expect(share('busy')).toBeLessThan(0.33);
    expect(share('heavy')).toBeGreaterThan(0.02);
    expect(share('heavy')).toBeLessThan(0.09);
    const idleTypes = new Set(hostsOf('idle').flatMap((h) => (byHost.get(h) ?? []).map((e) => e.type)));
    expect(idleTypes).toEqual(new Set(['TopologySnapshotTaken']));
    // the periodic read: idle hosts that recorded more than their boot snapshot
    expect(hostsOf('idle').filter((h) => (byHost.get(h)?.length ?? 0) > 1).length).toBeGreaterThan(0);
  });

  it('simfleet #2: the heavy tail makes most of the events, busy hosts fewer per host, idle hosts the fewest', () => {
    const perHost = (a: HostActivity) => eventsOf(a) / hostsOf(a).length;
    expect(eventsOf('heavy')).toBeGreaterThan(events.length / 2);
    expect(perHost('heavy')).toBeGreaterThan(perHost('busy') * 3);
    expect(perHost('busy')).toBeGreaterThan(perHost('idle'));
  });

  it('simfleet #2: kernel releases come from the kernel mix, every one of them, and the topologies are diverse', () => {
    const snapshots = new Map<string, Snapshot['data']>();
    for (const e of events) if (e.type === 'TopologySnapshotTaken' && !snapshots.has(e.host)) snapshots.set(e.host, (e as Snapshot).data);
    expect(snapshots.size).toBe(400);
    const releases = new Set([...snapshots.values()].map((s) => s.capabilities.kernelRelease));
    expect(releases).toEqual(new Set(DEFAULT_KERNEL_MIX.map(([r]) => r)));
    const all = [...snapshots.values()];
    // hosts without an IOMMU
    expect(all.filter((s) => !s.capabilities.iommu).length).toBeGreaterThan(0);
    const groups = all.flatMap((s) => s.groups.map((g) => ({ g, s })));
    const kindOf = (s: Snapshot['data'], name: string) => s.devices.find((d) => d.device === name)!;
    // single-device groups; multi-function groups (a GPU and its functions) behind a bridge without ACS
    expect(groups.filter(({ g }) => g.devices.length === 1).length).toBeGreaterThan(0);
    expect(groups.filter(({ g, s }) => g.devices.length >= 3 && g.devices.some((d) => kindOf(s, d).headerType === 'bridge')).length).toBeGreaterThan(0);
    // SR-IOV: virtual functions (ice's iavf 1889, mlx5's 101c), each in a group of its own
    const vfs = groups.filter(({ g, s }) => g.devices.some((d) => ['1889', '101c'].includes(kindOf(s, d).deviceId)));
    expect(vfs.length).toBeGreaterThan(0);
    for (const { g } of vfs) expect(g.devices).toHaveLength(1);
  });

  it('simfleet #2: the same seed gives the same fleet, byte for byte', () => {
    const again = [...createFleetSimulation({ seed: 23, hosts: 400, events: 30_000, activity: FLEET_ACTIVITY_MIX, residentQuiet: 0 }).events()];
    expect(JSON.stringify(again) === JSON.stringify(events)).toBe(true);
  });

  it('simfleet #2: --activity reads fleet, heavy or weights by class, and names a bad class', () => {
    expect(parseActivityMix('fleet')).toBe(FLEET_ACTIVITY_MIX);
    expect(parseActivityMix('heavy')).toBeUndefined();
    expect(parseActivityMix('idle=80, busy=15,heavy=5')).toEqual([
      ['idle', 80],
      ['busy', 15],
      ['heavy', 5],
    ]);
    expect(() => parseActivityMix('lazy=1')).toThrow(/activity\[0\]: "lazy" is not a host class/);
    expect(() => parseActivityMix('idle')).toThrow(/--activity: expected/);
  });
});
