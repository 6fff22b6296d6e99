import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  VARIANTS,
  decideAndEvolve,
  isObservation,
  isOperationEvent,
  observeAndEvolve,
  recordedOutcomeOf,
  replayHistory,
  toOperation,
  type ModelState,
} from '../../replay/index.js';
import { crossModelDifferences, factsOfModel, factsOfProjection, foldSideBySide } from '../../replay/testing/crossModel.js';
import { recordedFleet, simulatedFleets } from '../../replay/testing/simulatedFleets.js';

/**
 * One model of the kernel (issue 16): the simulator asks the upstream decider for every outcome, so any
 * simulated fleet replays on `upstream` without a divergence, and the fleet projection of what it recorded
 * agrees with the replay model's state after every event. Seeds, sizes and topologies (the host profiles a
 * seed draws, with every profile present from 5 hosts) come from fast-check.
 */

const upstream = VARIANTS.upstream;

describe('simulator ↔ upstream decider ↔ projection (one model, issue 16)', () => {
  it('onemodel: any simulated fleet replayed on upstream gives zero divergences, and every recorded id is the one the decider allocates', async () => {
    await fc.assert(
      fc.asyncProperty(simulatedFleets, async (options) => {
        const report = await replayHistory({ variant: 'upstream', events: recordedFleet(options) });
        expect(report.summary).toMatchObject({ divergences: 0, crashedHosts: 0, inputErrors: 0 });
        for (const host of report.hosts) expect({ host: host.host, renamed: host.results[0]!.renamedIds }).toEqual({ host: host.host, renamed: 0 });
      }),
      { numRuns: 25 },
    );
  });

  it('onemodel: the projection of a simulated history equals, after every event, the upstream model that decides each call and the one that only folds the recorded events with upstream evolve (groups, devices, fds)', () => {
    fc.assert(
      fc.property(simulatedFleets, (options) => {
        const models = new Map<string, ModelState>();
        foldSideBySide(recordedFleet(options), ({ at, event, host, model: fold }) => {
          let model = models.get(event.host);
          if (!model) models.set(event.host, (model = upstream.initialState()));
          if (isObservation(event)) observeAndEvolve(upstream, model, event);
          else if (isOperationEvent(event)) {
            // the simulator's ids are the decider's own: no recorded ↔ replayed renaming to apply
            const { decision } = decideAndEvolve(upstream, model, toOperation(event, (_ictx, id) => id, () => undefined));
            // what the decider returns is what was recorded (a record may carry more, e.g. the mapped iova)
            expect({ at, type: event.type, outcome: recordedOutcomeOf(event) }).toMatchObject({ at, type: event.type, outcome: decision.outcome });
          }
          for (const state of [model, fold]) {
            if (crossModelDifferences(host, state).length > 0) expect({ at, event, state: factsOfProjection(host) }).toEqual({ at, event, state: factsOfModel(state) });
          }
        });
      }),
      { numRuns: 15 },
    );
  });
});
