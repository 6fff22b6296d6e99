import { describe, expect, it } from 'vitest';
import type { IommuEvent } from '../schemas/index.js';
import { crossModelDifferences } from '../replay/testing/crossModel.js';
import { readModelDifferences } from '../replay/testing/readModelAgreement.js';
import { CORPUS } from '../replay/testing/scenarios.js';
import { createFleetProjection } from './fleetProjection.js';
import { toKernelStateJson } from './kernel/stateJson.js';
import { fromSnapshot, toSnapshotJson } from './snapshots.js';
import { generateHistory } from './testing/generateHistory.js';
import type { FleetState } from './types.js';

/** issue 16: the projection folds each host's upstream kernel model (`HostState.kernel`), always */
const withKernel = createFleetProjection();

const fold = (events: readonly IommuEvent[], state: FleetState = withKernel.initialState()): FleetState => {
  for (const e of events) withKernel.evolve(state, e);
  return state;
};

const kernelsOf = (state: FleetState): Record<string, string> =>
  Object.fromEntries(Object.entries(state.hosts).map(([name, h]) => [name, h.kernel == null ? String(h.kernel) : JSON.stringify(toKernelStateJson(h.kernel))]));

describe('the kernel model inside the fleet projection', () => {
  it('given every corpus history and a generated fleet history, when folded, then after every event the host\'s own kernel state and its read model agree', () => {
    const histories = [...CORPUS.map((c) => ({ name: c.name, events: c.events })), { name: 'generated', events: generateHistory({ events: 3_000, hosts: 3, finishCycles: true }) }];
    for (const { name, events } of histories) {
      const state = withKernel.initialState();
      for (const [at, e] of events.entries()) {
        withKernel.evolve(state, e);
        const host = state.hosts[e.host]!;
        expect(host.kernel, `${name} at ${at}`).toBeTruthy();
        const differences = crossModelDifferences(host, host.kernel!);
        if (differences.length > 0) expect({ name, at, differences }).toEqual({ name, at, differences: [] });
      }
    }
  });

  it('given a state folded with the kernel model, when written as snapshot JSON (format 3: the records as their facts) and read back half way, then the rest folds to the same kernel states as the unbroken fold', () => {
    const events = generateHistory({ events: 3_000, hosts: 3, finishCycles: true });
    const half = Math.floor(events.length / 2);
    const text = toSnapshotJson(fold(events.slice(0, half)));
    expect(JSON.parse(text).formatVersion).toBe(3);
    const restored = fold(events.slice(half), fromSnapshot(JSON.parse(text), { owned: true }));
    expect(kernelsOf(restored)).toEqual(kernelsOf(fold(events)));
  });

  it('given a snapshot written without the kernel model (format 1), when the projection folds on from it, then each host the fold reaches gets its model rebuilt from its read model (readModel.ts modelFromReadModel), not one started empty', () => {
    const [first, second] = [CORPUS[0]!.events.slice(0, 5), CORPUS[0]!.events.slice(5)];
    const old = fold(first);
    for (const h of Object.values(old.hosts)) delete h.kernel;
    const text = toSnapshotJson(old);
    expect(JSON.parse(text).formatVersion).toBe(1);
    const state = fold(second, fromSnapshot(JSON.parse(text)));
    const whole = fold(CORPUS[0]!.events);
    for (const [name, h] of Object.entries(state.hosts)) {
      expect(h.kernel).toBeTruthy();
      expect(readModelDifferences(h)).toEqual([]);
      expect({ groups: h.groups, devices: h.devices, iommufds: h.iommufds, deviceFds: h.deviceFds }).toEqual({ groups: whole.hosts[name]!.groups, devices: whole.hosts[name]!.devices, iommufds: whole.hosts[name]!.iommufds, deviceFds: whole.hosts[name]!.deviceFds });
    }
  });

  it('given any history, when folded, then every host carries its kernel state and snapshots are format 3', () => {
    const state = fold(CORPUS[0]!.events);
    for (const h of Object.values(state.hosts)) expect(h.kernel).toBeTruthy();
    expect(JSON.parse(toSnapshotJson(state)).formatVersion).toBe(3);
  });
});
