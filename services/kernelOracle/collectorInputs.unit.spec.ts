import { describe, expect, it } from 'vitest';
import { createScenario, DEV_A, DEV_B, DEV_C } from '../../projections/testing/scenarioEvents.js';
import { compareSteps, expectedObservation, type CollectorScenario } from './collectorInputs.js';
import type { ScenarioHistory } from './toEvents.js';

// a VMM's recorded steps (with the `line:N` labels toEvents sets) and a collector that saw only the
// snapshot, a driver bind uevent and a domain-attach trace line
const recordedHistory = (): ScenarioHistory => {
  const s = createScenario('rec');
  const line = (n: number) => ({ labels: [`line:${n}`] });
  const events = [
    s.topology({ drivers: { [DEV_B]: null } }),
    s.driverBound(DEV_B, 'vfio-pci', line(1)),
    s.open(DEV_A, 'fd-a', line(2)),
    s.bind(DEV_A, 'fd-a', 'ictx-1', 1, line(3)),
  ];
  return { machine: 'm', scenario: 's', host: 'rec', kernelRelease: '6.12', events, steps: 3, operations: 3, errnos: 0, traces: 0, unexpressed: [], complete: true };
};
const observedScenario = (): CollectorScenario => {
  const s = createScenario('obs');
  const events = [s.topology({ drivers: { [DEV_B]: null } }), s.driverBound(DEV_B, 'vfio-pci'), s.traceAttach(DEV_A)];
  return { machine: 'm', scenario: 's', host: 'obs', events, steps: [{ line: 1, lastSeq: 2 }, { line: 2, lastSeq: 2 }, { line: 3, lastSeq: 3 }], sysfsProblems: [] };
};

describe('kernel oracle > collector view against recorded operations', () => {
  it('given a bind the collector cannot see, when compared at every step, then drivers and members agree and the owner is "unknown", never "none"', () => {
    const steps = compareSteps(recordedHistory(), observedScenario());
    expect(steps.map((s) => s.line)).toEqual([1, 2, 3]);
    const last = steps[2]!;
    const group = Object.keys(last.recorded.groups).find((g) => last.recorded.groups[g]!.members.includes(DEV_A))!;
    expect(last.recorded.groups[group]!.owner).toBe('iommufd');
    expect(last.observed.groups[group]).toMatchObject({ owner: 'unknown', domainKind: 'unknown' });
    expect(last.observed.drivers[DEV_B]).toBe('vfio-pci');
    for (const s of steps) expect(s.observed).toEqual(expectedObservation(s.recorded, s.observed));
  });

  it('given a driver the collector saw differently, when compared, then the step disagrees (drivers are never "unknown")', () => {
    const s = createScenario('obs');
    const observed = { ...observedScenario(), events: [s.topology({ drivers: { [DEV_B]: null } }), s.driverBound(DEV_C, 'vfio-pci')] };
    const steps = compareSteps(recordedHistory(), observed);
    expect(steps[0]!.observed).not.toEqual(expectedObservation(steps[0]!.recorded, steps[0]!.observed));
  });
});
