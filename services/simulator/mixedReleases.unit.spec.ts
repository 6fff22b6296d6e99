import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { replayHistory } from '../../replay/index.js';
import { releaseHas } from '../../projections/kernel/releases.js';
import { crossModelDifferences, factsOfModel, factsOfProjection, foldSideBySide } from '../../replay/testing/crossModel.js';
import { recordedFleet, simulatedFleets } from '../../replay/testing/simulatedFleets.js';
import { isValidationError, type IommuEvent } from '../../schemas/index.js';
import { createFleetSimulation, type SimulateFleetOptions } from './simulateFleet.js';
import { DEFAULT_KERNEL_MIX, type KernelMix } from './topology.js';

/**
 * Issue 19: a fleet runs many kernels at once. The simulator draws each host's kernelRelease from a mix, the
 * upstream decider answers each host as its release does, and replay (judging each host by its recorded
 * release) and the fleet projection agree on the result.
 */

/** Debian 12, the 6.6 LTS, Debian 13: a release without iommufd and the VFIO cdev beside two with them */
const MIX: KernelMix = [
  ['6.1.0-28-amd64', 1],
  ['6.6.58', 1],
  ['6.12.48+deb13-amd64', 1],
];

/** the simulated fleets of every property test (seeds, sizes, topologies, activity), on this kernel mix */
const fleets: fc.Arbitrary<SimulateFleetOptions> = simulatedFleets.map((options) => ({ ...options, kernelMix: MIX }));
const recorded = recordedFleet;

/** the fleet projection equals the upstream model of each host after every event */
const expectProjectionAgrees = (events: readonly IommuEvent[]): void =>
  void foldSideBySide(events, ({ at, event, host, model }) => {
    if (crossModelDifferences(host, model).length > 0) expect({ at, event, state: factsOfProjection(host) }).toEqual({ at, event, state: factsOfModel(model) });
  });

const releasesOf = (events: readonly IommuEvent[]): Map<string, string> =>
  new Map(events.flatMap((e) => (e.type === 'TopologySnapshotTaken' ? [[e.host, e.data.capabilities.kernelRelease ?? '']] : [])));

describe('simulator > fleets of mixed kernel releases (issue 19)', () => {
  it('issue 19: given a kernel mix, then every host records a release drawn from it, every release of the mix appears in a large fleet, and a bad mix is refused naming the field', () => {
    const releases = releasesOf(recorded({ seed: 7, hosts: 30, events: 400, kernelMix: MIX }));
    expect(releases.size).toBe(30);
    expect(new Set(releases.values())).toEqual(new Set(MIX.map(([r]) => r)));
    const refused = (kernelMix: KernelMix): string => {
      try {
        createFleetSimulation({ kernelMix });
      } catch (e) {
        expect(isValidationError(e)).toBe(true);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused([])).toBe('kernelMix: expected at least one kernel release');
    expect(refused([['six', 1]])).toContain('kernelMix[0]: "six" is not a kernel release');
    expect(refused([['6.1.0', 1], ['6.12.1', -2]])).toContain('kernelMix[1] (6.12.1) weight: expected a number');
  });

  it('issue 19: given any mixed fleet, when replayed on upstream, then each host is judged as its recorded release and nothing diverges', async () => {
    await fc.assert(
      fc.asyncProperty(fleets, async (options) => {
        const events = recorded(options);
        const report = await replayHistory({ variant: 'upstream', events });
        expect(report.summary).toMatchObject({ divergences: 0, crashedHosts: 0 });
        const releases = releasesOf(events);
        for (const host of report.hosts) expect(host.results[0]!.release?.judgedAs).toBe(`${releases.get(host.host)} (recorded)`);
      }),
      { numRuns: 10 },
    );
  });

  it('issue 19: given a mixed fleet judged as 6.12 instead, then exactly the hosts that used /dev/iommu on a release without it diverge, root cause first at their refused /dev/iommu', async () => {
    const events = recorded({ seed: 3, hosts: 9, events: 4000, kernelMix: MIX });
    const releases = releasesOf(events);
    const report = await replayHistory({ variant: 'upstream@6.12', events });
    const diverging = report.hosts.filter((h) => h.results[0]!.divergences.length > 0).map((h) => h.host);
    // the hosts that tried /dev/iommu on a release without it (a host without an IOMMU never does)
    const triedIommufd = new Set<string>(events.filter((e) => e.type === 'IommufdOpened').map((e) => e.host));
    const without = [...releases].filter(([h, r]) => !releaseHas(r, 'iommufd') && triedIommufd.has(h)).map(([h]) => h);
    expect(without.length).toBeGreaterThan(0);
    expect(diverging.sort()).toEqual(without.sort());
    for (const h of report.hosts.filter((x) => diverging.includes(x.host))) {
      expect(h.results[0]!.divergences[0]).toMatchObject({ event: { type: 'IommufdOpened' }, recorded: { ok: false, errno: 'ENOENT' }, replayed: { ok: true } });
    }
  });

  it('issue 19: given any mixed fleet, then the projection agrees with the upstream model of each host (decided by its release) after every event', () => {
    fc.assert(
      fc.property(fleets, (options) => expectProjectionAgrees(recorded(options))),
      { numRuns: 8 },
    );
  });

  /** calls on an iommufd or device fd the kernel never opened (the open was refused, or never made) */
  const callsOnUnopenedFds = (events: readonly IommuEvent[]): string[] => {
    const open = new Set<string>();
    const bad: string[] = [];
    for (const e of events) {
      const d = e.data as { ictx?: string; deviceFd?: string; outcome?: { ok: boolean; deviceFd?: string } };
      const key = (fd: string) => `${e.host}|${fd}`;
      if (e.type === 'IommufdOpened' || e.type === 'VfioDeviceOpened') {
        if (d.outcome?.ok) open.add(key(d.ictx ?? d.deviceFd!));
        continue;
      }
      if (e.type === 'VfioGroupGetDeviceFdIssued' && d.outcome?.ok) open.add(key(d.outcome.deviceFd!));
      for (const fd of [d.ictx, d.deviceFd]) if (fd !== undefined && !open.has(key(fd))) bad.push(`${e.host}#${e.seq} ${e.type} on ${fd}`);
      if (e.type === 'IommufdClosed') open.delete(key(d.ictx!));
      if (e.type === 'VfioDeviceClosed') open.delete(key(d.deviceFd!));
    }
    return bad;
  };

  it('issue 19 ops: hostLife stops a VM launch at a refused open of /dev/iommu (6.1 has none): no call is recorded on an fd that never opened, and the VM runs on the legacy container API', () => {
    const events = recorded({ seed: 11, hosts: 6, events: 3000, kernelMix: [['6.1.0-28-amd64', 1]] });
    expect(events.filter((e) => e.type === 'IommufdOpened' && !e.data.outcome.ok).length).toBeGreaterThan(0);
    expect(callsOnUnopenedFds(events)).toEqual([]);
    // the VM's QEMU takes its devices through a container instead
    const vmContainers = events.filter((e) => e.type === 'VfioContainerOpened' && e.actor?.vm !== undefined && e.actor.comm === 'qemu-system-x86');
    expect(vmContainers.length).toBeGreaterThan(0);
  });

  it('issue 19 ops: the default kernel mix has 6.1 (no iommufd, no VFIO cdev) beside 6.6–6.12; replay judges every host by its release with 0 divergences and the projection agrees', async () => {
    expect(DEFAULT_KERNEL_MIX.some(([r]) => !releaseHas(r, 'iommufd'))).toBe(true);
    const events = recorded({ seed: 5, hosts: 12, events: 6000 });
    expect(new Set(releasesOf(events).values())).toContain('6.1.0-28-amd64');
    expect(callsOnUnopenedFds(events)).toEqual([]);
    const report = await replayHistory({ variant: 'upstream', events });
    expect(report.summary).toMatchObject({ divergences: 0, crashedHosts: 0 });
    expectProjectionAgrees(events);
  });
});
