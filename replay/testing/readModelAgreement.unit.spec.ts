import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFleetProjection } from '../../projections/index.js';
import { generateHistory } from '../../projections/testing/generateHistory.js';
import type { IommuEvent } from '../../schemas/index.js';
import { readModelDifferences } from './readModelAgreement.js';
import { CORPUS } from './scenarios.js';
import { recordedFleet, simulatedFleets } from './simulatedFleets.js';

/**
 * Issue 16, step (b): the projection folds the upstream model (`HostState.kernel`) on every host, and the read
 * model its own transitions keep agrees with the one derived from the model (projections/readModel.ts) after
 * every event, over every corpus history, the generated fleet history the projection benchmark folds, and
 * simulated fleets (fast-check over seeds, sizes and topologies).
 */

/** every difference seen over a history, once each, as `path @event type` */
const differencesOver = (events: readonly IommuEvent[]): string[] => {
  const projection = createFleetProjection();
  const state = projection.initialState();
  const seen = new Set<string>();
  for (const e of events) {
    projection.evolve(state, e);
    for (const d of readModelDifferences(state.hosts[e.host]!)) seen.add(`${d} @${e.type}`);
  }
  return [...seen];
};



describe('the read model derived from the upstream model agrees with the projection\'s own (issue 16 step b)', () => {
  it('given every corpus history, when folded, then after every event the derived read model equals the projection\'s', () => {
    for (const scenario of CORPUS) expect({ scenario: scenario.name, differences: differencesOver(scenario.events) }).toEqual({ scenario: scenario.name, differences: [] });
  });

  it('given the generated fleet history the projection benchmark folds, when folded, then they agree after every event', () => {
    expect(differencesOver(generateHistory({ events: 5_000, hosts: 4, finishCycles: true }))).toEqual([]);
  });

  it('given simulated fleets (seeds, sizes, topologies, operator mistakes), when folded, then they agree after every event', () => {
    fc.assert(
      fc.property(simulatedFleets, (options) => {
        expect(differencesOver(recordedFleet(options))).toEqual([]);
      }),
      { numRuns: 12 },
    );
  });

  it('given a projection state changed behind the model\'s back, then the comparison names the field', () => {
    const projection = createFleetProjection();
    const state = projection.initialState();
    for (const e of CORPUS[0]!.events) projection.evolve(state, e);
    const host = Object.values(state.hosts)[0]!;
    const group = Object.values(host.groups)[0]!;
    group.legacyGroupFd = 'nobody';
    expect(readModelDifferences(host)).toEqual([`groups.${group.group}.legacyGroupFd`]);
  });
});
