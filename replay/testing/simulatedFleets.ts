import fc from 'fast-check';
import { parseEvent, type IommuEvent } from '../../schemas/index.js';
import { FLEET_ACTIVITY_MIX, simulateFleet, type SimulateFleetOptions } from '../../services/simulator/simulateFleet.js';

/** simulated fleets for property tests: seeds, sizes and topologies (the host profiles a seed draws) */
export const simulatedFleets: fc.Arbitrary<SimulateFleetOptions> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  hosts: fc.integer({ min: 1, max: 7 }),
  events: fc.integer({ min: 50, max: 2500 }),
  mistakeRate: fc.double({ min: 0, max: 1, noNaN: true }),
  concurrency: fc.integer({ min: 1, max: 8 }),
  traces: fc.boolean(),
  // a realistic fleet (idle hosts with periodic reads, busy and heavy ones), hosts parked as soon as they are quiet
  activity: fc.constantFrom(undefined, FLEET_ACTIVITY_MIX),
  residentQuiet: fc.constantFrom(0, Infinity),
});

/** what a simulated fleet records, parsed as the store would hand it over */
export const recordedFleet = (options: SimulateFleetOptions): IommuEvent[] =>
  [...simulateFleet(options)].map((input, i) => {
    const parsed = parseEvent(input, `events[${i}]`);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  });
