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
