import { describe, expect, it } from 'vitest';
import { createFleetSimulation, FLEET_ACTIVITY_MIX } from './simulateFleet.js';

/**
 * Issue 23: a fleet of 1e5 hosts ran out of a 4 GB heap because every host's whole life (topology, kernel model,
 * episode closures, two PRNGs) stayed in memory from the start to the end. Memory must follow the hosts that have
 * something in flight: a host that waits holds a compact record (its PRNG positions, seq, clock and how its
 * devices differ from boot), and one that never started holds nothing but its seed. Counted as objects, not bytes.
 */
describe('simulator > memory follows live hosts (issue 23)', () => {
  it('simfleet #1: given 5,000 mostly idle hosts, when 60,000 events flow, then only the hosts with an episode in flight plus a bounded working set hold a host life, and no parked record grows', () => {
    const quiet = 64;
    const sim = createFleetSimulation({ seed: 4, hosts: 5_000, events: 60_000, activity: FLEET_ACTIVITY_MIX, residentQuiet: quiet });
    const samples: ReturnType<typeof sim.residency>[] = [];
    let n = 0;
    for (const _ of sim.events()) if (++n % 5_000 === 0) samples.push(sim.residency());
    expect(samples).toHaveLength(12);
    for (const s of samples) {
      expect(s.resident).toBeLessThanOrEqual(s.live + quiet);
      // idle hosts never have an episode in flight: a few hundred busy ones at most are live
      expect(s.live).toBeLessThan(5_000 * 0.4);
      // a parked host's record is bounded by its hardware (a changed device, a held cdev), not by its history
      expect(s.largestParkedRecord).toBeLessThanOrEqual(64);
    }
    // the working set does not grow with the events emitted
    expect(Math.max(...samples.slice(6).map((s) => s.resident))).toBeLessThanOrEqual(Math.max(...samples.slice(0, 6).map((s) => s.resident)) * 1.5 + quiet);
  });
});
