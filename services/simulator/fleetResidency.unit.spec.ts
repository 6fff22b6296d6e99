import { describe, expect, it } from 'vitest';
import { createFleetSimulation, FLEET_ACTIVITY_MIX, type SimulateFleetOptions } from './simulateFleet.js';

/** the JSON Lines and the ground truth of a fleet, and the most hosts that were parked at once */
const run = (options: SimulateFleetOptions) => {
  const sim = createFleetSimulation(options);
  let text = '';
  let parked = 0;
  let n = 0;
  for (const e of sim.events()) {
    text += `${JSON.stringify(e)}\n`;
    if (++n % 250 === 0) parked = Math.max(parked, sim.residency().parked);
  }
  return { text, labels: JSON.stringify(sim.labels()), parked };
};

/**
 * Issue 23: a fleet of 1e5 hosts ran out of a 4 GB heap because every host's whole life (topology, kernel model,
 * episode closures, two PRNGs) stayed in memory from the start to the end. Memory must follow the hosts that have
 * something in flight: a host that waits holds a compact record (its PRNG positions, seq, clock and how its
 * devices differ from boot), and one that never started holds nothing but its seed. Counted as objects, not bytes.
 */
describe('simulator > memory follows live hosts (issue 23)', () => {
  it('simfleet #1: given 3,000 mostly idle hosts, when 30,000 events flow, then only the hosts with an episode in flight plus a bounded working set hold a host life, and no parked record grows', () => {
    const quiet = 64;
    const sim = createFleetSimulation({ seed: 4, hosts: 3_000, events: 30_000, activity: FLEET_ACTIVITY_MIX, residentQuiet: quiet });
    const samples: ReturnType<typeof sim.residency>[] = [];
    let n = 0;
    for (const _ of sim.events()) if (++n % 3_000 === 0) samples.push(sim.residency());
    expect(samples).toHaveLength(10);
    for (const s of samples) {
      // (+1: the host whose events are coming out has not been settled yet)
      expect(s.resident).toBeLessThanOrEqual(s.live + quiet + 1);
      // idle hosts (70%) never have an episode in flight
      expect(s.live).toBeLessThan(3_000 * 0.4);
      // a parked host's record is bounded by its hardware (a changed device, a held cdev), not by its history
      expect(s.largestParkedRecord).toBeLessThanOrEqual(64);
    }
  });

  it('simfleet #1: given 1,000 idle hosts, when ten times as many events flow as there are hosts (hours of periodic reads), then the hosts held in memory and the parked records stay the same size', () => {
    const quiet = 16;
    const sim = createFleetSimulation({ seed: 8, hosts: 1_000, events: 10_000, activity: [['idle', 1]], residentQuiet: quiet });
    const samples: ReturnType<typeof sim.residency>[] = [];
    let n = 0;
    for (const _ of sim.events()) if (++n % 1_000 === 0) samples.push(sim.residency());
    expect(samples).toHaveLength(10);
    for (const s of samples) {
      expect(s).toMatchObject({ hosts: 1_000, live: 0, parked: 1_000 - s.resident });
      expect(s.resident).toBeLessThanOrEqual(quiet + 1);
    }
    // nothing in a parked idle host's record comes from its history: no slot, no changed device, no cdev
    expect(new Set(samples.map((s) => s.largestParkedRecord))).toEqual(new Set([0]));
  });

  it.each([
    { seed: 1, hosts: 30, events: 12_000, concurrency: 1, mistakeRate: 0.3 },
    { seed: 2, hosts: 30, events: 12_000, concurrency: 1, mistakeRate: 0.3, defectRate: 0.3 },
    { seed: 5, hosts: 200, events: 12_000, activity: FLEET_ACTIVITY_MIX, mistakeRate: 0.2, defectRate: 0.2 },
    { seed: 6, hosts: 50, events: 12_000, concurrency: 2, mistakeRate: 0.5, traces: false, kernelMix: [['6.1.0-28-amd64', 1], ['6.12.48', 1]] as const },
  ])('simfleet #1: parking changes no event: a fleet whose quiet hosts are parked at once emits the same bytes and labels as one that keeps every host (%o)', (options) => {
    const kept = run({ ...options, residentQuiet: Infinity });
    const parked = run({ ...options, residentQuiet: 0 });
    expect(kept.parked).toBe(0);
    // hosts did wait as records and came back
    expect(parked.parked).toBeGreaterThan(3);
    expect(parked.text === kept.text).toBe(true);
    expect(parked.labels).toBe(kept.labels);
  });
});
