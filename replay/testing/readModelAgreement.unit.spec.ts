import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cloneState, createFleetProjection } from '../../projections/index.js';
import { generateHistory } from '../../projections/testing/generateHistory.js';
import { createRecorder } from '../../projections/testing/recorder.js';
import { AUDIO, GPU } from '../../projections/testing/scenarioEvents.js';
import type { IommuEvent } from '../../schemas/index.js';
import { readModelDifferences } from './readModelAgreement.js';
import { CORPUS } from './scenarios.js';
import { recordedFleet, simulatedFleets } from './simulatedFleets.js';

/**
 * Issue 16: the projection's read model IS derived from the upstream model it folds (`HostState.kernel`); its
 * own kernel transitions are gone. What is left to hold is the fold's incremental derivation: after every event
 * only the records the model's transitions touched are derived again (readModel.ts `touchedBy`/`deriveTouched`),
 * and that must equal a whole-host `deriveReadModel` of the same model from scratch (a record the transitions do not
 * name would stay stale). Over every corpus history, the generated fleet history the projection benchmark
 * folds, and simulated fleets (fast-check over seeds, sizes and topologies).
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



describe('the fold\'s incremental derivation of the read model agrees with a whole-host derivation (issue 16)', () => {
  it('given every corpus history, when folded, then after every event the incrementally derived read model equals a whole-host derivation', () => {
    for (const scenario of CORPUS) expect({ scenario: scenario.name, differences: differencesOver(scenario.events) }).toEqual({ scenario: scenario.name, differences: [] });
  });

  it('rules19: given a device seen joining another group with no removal of it recorded, when its domain then changes, then its old group no longer lists it and both derivations agree', () => {
    // given the GPU of group 7 (with its audio function) seen joining group 9: the recording missed its removal
    const r = createRecorder('h-regroup');
    r.topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: 'vfio-pci' } });
    r.deviceAdded(GPU, 9);
    // when it is bound and attached (its domain changes)
    r.openIommufd('i1');
    r.openDevice(GPU, 'fd1');
    r.bind(GPU, 'fd1', 'i1', 1);
    r.allocIoas('i1', 2);
    r.attach(GPU, 'fd1', 2, 3);
    // then group 7's derived records did not keep a member that left it (its domain and the audio's translatedBy)
    expect(differencesOver(r.events)).toEqual([]);
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

  it('given the ctx, container and fd records derived only when read (readModel.ts pendingOf), when read at random points of a generated history (and of a clone taken there), then they agree with a whole-host derivation', () => {
    const events = generateHistory({ events: 3_000, hosts: 3, finishCycles: true });
    fc.assert(
      fc.property(fc.array(fc.nat(events.length - 1), { minLength: 1, maxLength: 8 }), fc.nat(events.length - 1), (reads, cloneAt) => {
        const projection = createFleetProjection();
        let state = projection.initialState();
        const at = new Set(reads);
        const seen = new Set<string>();
        events.forEach((e, i) => {
          projection.evolve(state, e);
          if (i === cloneAt) state = cloneState(state);
          if (at.has(i)) for (const d of readModelDifferences(state.hosts[e.host]!)) seen.add(`${d} @${i}`);
        });
        for (const h of Object.values(state.hosts)) for (const d of readModelDifferences(h)) seen.add(`${d} @end`);
        expect([...seen]).toEqual([]);
      }),
      { numRuns: 10 },
    );
  });

  it('given a read-model record changed behind the model\'s back (a stale record), then the comparison names the field', () => {
    const projection = createFleetProjection();
    const state = projection.initialState();
    for (const e of CORPUS[0]!.events) projection.evolve(state, e);
    const host = Object.values(state.hosts)[0]!;
    const group = Object.values(host.groups)[0]!;
    group.legacyGroupFd = 'nobody';
    expect(readModelDifferences(host)).toEqual([`groups.${group.group}.legacyGroupFd`]);
  });
});
