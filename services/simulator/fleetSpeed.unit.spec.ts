import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createFleetSimulation, FLEET_ACTIVITY_MIX, type SimulateFleetOptions } from './simulateFleet.js';

/** SHA-256 of a fleet's JSON Lines and, after them, its ground truth */
const digest = (options: SimulateFleetOptions): string => {
  const sim = createFleetSimulation(options);
  const hash = createHash('sha256');
  for (const e of sim.events()) hash.update(`${JSON.stringify(e)}\n`);
  hash.update(JSON.stringify(sim.labels()));
  return hash.digest('hex');
};

/**
 * Issue 23 (simfast): the simulator's speed-ups (the working set, cheaper rebuilds, the topology and sysfs reads
 * built without copies) change no byte. The digests were recorded on the simulator before them (main 830763b);
 * a cut that moved a draw, a key or an event would change one.
 */
describe('simulator > faster, the same bytes (issue 23)', () => {
  it.each([
    { options: { seed: 42, hosts: 300, events: 20_000, activity: FLEET_ACTIVITY_MIX, residentQuiet: 16 }, sha256: 'e0fc8359eb3ad81a25a7fc6bc9f026bf4ad0be0ec2c4aa3db9585e7a8ec40e03' },
    { options: { seed: 7, hosts: 40, events: 15_000, mistakeRate: 0.3, defectRate: 0.2, residentQuiet: 4 }, sha256: '96ac9250f6cafdad0ebdeffc6ed112c18c31c7b51e887fdbe38d80b5723217e5' },
    { options: { seed: 'x', hosts: 60, events: 8_000, concurrency: 2, traces: false, kernelMix: [['6.1.0-28-amd64', 1], ['6.12.48', 2]] as const }, sha256: '2fe74886599d10fd1afd7f017e270c6145f81b8592d3ed3e6f6169a69c3d14c8' },
  ])('simfast: a fleet gives the bytes it gave before the speed-ups ($options.hosts hosts, seed $options.seed)', ({ options, sha256 }) => {
    expect(digest(options)).toBe(sha256);
  });
});

/**
 * Issue 23 (simfast): at 1e5 hosts most steps of a quiet host rebuilt it from its seed (a topology draw and a
 * sysfs read folded by the decider, ~0.3 ms), because the working set kept the hosts that stepped last rather
 * than those that step next. The simulator knows when every host steps next: the working set keeps the quiet hosts
 * that step soonest and parks the one that steps last (the best choice for a cache whose future is known).
 */
describe('simulator > the working set keeps the hosts that step next (issue 23)', () => {
  it('simfast #1: given 1,000 idle hosts and room for 500 quiet ones, when 10,000 events flow (hours of hourly reads), then fewer than a quarter of the steps rebuild a host', () => {
    // an hourly read's gap is memoryless: a working set blind to the next step keeps a random half and rebuilds
    // about half of the ~9,000 steps after the boot snapshots (4,510 with the longest-quiet-first set it replaced)
    const sim = createFleetSimulation({ seed: 9, hosts: 1_000, events: 10_000, activity: [['idle', 1]], residentQuiet: 500 });
    for (const _ of sim.events());
    const { rebuilds, resident, parked } = sim.residency();
    expect({ resident, parked }).toEqual({ resident: 500, parked: 500 });
    expect(rebuilds).toBeGreaterThan(0);
    expect(rebuilds).toBeLessThan(2_500);
  });
});
