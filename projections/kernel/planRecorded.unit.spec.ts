import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IommuEvent } from '../../schemas/index.js';
import { recordedFleet, simulatedFleets } from '../../replay/testing/simulatedFleets.js';
import { CORPUS } from '../../replay/testing/scenarios.js';
import { generateHistory } from '../testing/generateHistory.js';
import { createProtocolDecider } from './decider.js';
import { isModelEvent } from './operations.js';
import { toKernelStateJson } from './stateJson.js';
import type { ModelState, ProtocolDecider } from './types.js';
import { upstreamDecider, upstreamModel } from './upstream.decider.js';

// the same variant planning every recorded event from its Operation (toRecordedOperation, then `plan`)
const { planRecorded: _fromTheEvent, ...fromOperations } = upstreamModel;
const planningOperations: ProtocolDecider = createProtocolDecider(fromOperations);

/** each host's model state (and how many writes it took) after every `every` model events and at the end */
const statesOf = (decider: ProtocolDecider, events: readonly IommuEvent[], every: number): string[] => {
  const hosts = new Map<string, ModelState>();
  const out: string[] = [];
  let n = 0;
  const write = (): void => {
    for (const [host, s] of hosts) out.push(`${host} r${s.revision} ${JSON.stringify(toKernelStateJson(s), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
  };
  for (const e of events) {
    if (!isModelEvent(e)) continue;
    let s = hosts.get(e.host);
    if (!s) hosts.set(e.host, (s = decider.initialState()));
    decider.evolve(s, e);
    if (++n % every === 0) write();
  }
  write();
  return out;
};

describe("upstream's planRecorded (the fold's plan, read from the recorded event)", () => {
  it('given the corpus scenarios, when folded, then every state is the one planning from the Operation gives', () => {
    for (const scenario of CORPUS) expect(statesOf(upstreamDecider, scenario.events, 1)).toEqual(statesOf(planningOperations, scenario.events, 1));
  });

  it('given the generated history, when folded, then the states are the same at every 500th event', () => {
    const events = generateHistory({ events: 20000, finishCycles: true });
    expect(statesOf(upstreamDecider, events, 500)).toEqual(statesOf(planningOperations, events, 500));
  });

  it('given simulated fleets (mistakes included: records the kernel would refuse), when folded, then the states are the same after every 5th event', () => {
    fc.assert(
      fc.property(simulatedFleets, (options) => {
        const events = recordedFleet({ ...options, events: Math.min(options.events ?? 800, 800) });
        expect(statesOf(upstreamDecider, events, 5)).toEqual(statesOf(planningOperations, events, 5));
      }),
      { numRuns: 15 },
    );
  });
});
