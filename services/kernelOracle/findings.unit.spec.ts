import { describe, expect, it } from 'vitest';
import { createScenario, NIC } from '../../projections/testing/scenarioEvents.js';
import { compareFindings } from './findings.js';
import type { ScenarioHistory } from './toEvents.js';
import { parseScenario, scenarioFilterFromEnv, type Machine } from './topologies.js';

const SCENARIO = `# title: t
# requires: single
# features: iommufd vfioDeviceCdev
iommufd ctx
cdev d $single
! getinfo d  # raises access-before-bind
! attach d 1
`;
const machine = (intendedFindings: Record<string, string> = {}): Machine => ({ name: 'm', description: '', qemu: [], append: '', capabilities: { interruptRemapping: true, allowUnsafeInterrupts: false }, roles: {}, provides: {}, intendedFindings, unreachableFindings: {} });

// the recorded history of SCENARIO on a kernel that has the cdev: the access before bind fails -EINVAL
const history = (kernelRelease: string): ScenarioHistory => {
  const s = createScenario('h');
  const at = <E extends object>(e: E, line: number, mistake = false): E => ({ ...e, labels: [`line:${line}`, ...(mistake ? ['mistake'] : [])] });
  const events = [s.topology({ drivers: { [NIC]: 'vfio-pci' } }), at(s.iommufdOpened('ctx'), 4), at(s.open(NIC, 'd'), 5), at(s.access(NIC, 'd', 'EINVAL'), 6, true)];
  return { machine: 'm', scenario: 't', host: 'h', kernelRelease, events, steps: 4, operations: 3, errnos: 1, traces: 0, unexpressed: [], complete: true };
};

describe('kernel oracle > assert 4: violations raised against the mistakes a scenario marks', () => {
  it('given a scenario marking what a mistake raises, when parsed, then the mark is read by file line, and only a "!" step may carry one', () => {
    expect(parseScenario('t', SCENARIO)).toMatchObject({ features: ['iommufd', 'vfioDeviceCdev'], raises: [{ line: 6, rule: 'access-before-bind' }], mistakes: 2 });
    expect(() => parseScenario('t', '# title: t\ngetinfo d  # raises access-before-bind\n')).toThrow(/only a deliberate mistake/);
    expect(() => parseScenario('t', '# title: t\n! getinfo d  # raises no-such-rule\n')).toThrow(/not a rule id/);
    expect(() => parseScenario('t', '# title: t\n# features: warp-drive\n')).toThrow(/not a feature/);
  });

  it('given the run on 6.12, when compared, then what was raised is what the scenario intends', () => {
    expect(compareFindings(history('6.12.118'), parseScenario('t', SCENARIO), machine())).toEqual({ raised: ['6:access-before-bind'], intended: ['6:access-before-bind'] });
  });

  it('given a release without the scenario\'s features, when compared, then it intends nothing, so a finding there is an extra', () => {
    expect(compareFindings(history('6.1.192'), parseScenario('t', SCENARIO), machine())).toEqual({ raised: ['6:access-before-bind'], intended: [] });
  });

  it('given a machine whose configuration raises a rule by itself, when compared, then that rule is left out of both sides', () => {
    expect(compareFindings(history('6.12.118'), parseScenario('t', SCENARIO), machine({ 'access-before-bind': 'why' }))).toEqual({ raised: [], intended: [] });
  });
});

describe('kernel oracle > ORACLE_SCENARIOS: a run of some scenarios only', () => {
  const known = [parseScenario('s17-a', '# title: a\n'), parseScenario('s18-b', '# title: b\n')];
  it('given a list of scenario names, when read, then those are the run; unset or empty, every scenario', () => {
    expect(scenarioFilterFromEnv(' s18-b,s17-a ', known)).toEqual(['s18-b', 's17-a']);
    expect(scenarioFilterFromEnv(undefined, known)).toBeUndefined();
    expect(scenarioFilterFromEnv(' , ', known)).toBeUndefined();
  });

  it('given a name that is no scenario, when read, then the error names it rather than booting with nothing', () => {
    expect(() => scenarioFilterFromEnv('s17-a,s71-a', known)).toThrow('ORACLE_SCENARIOS: s71-a is no scenario of deploy/kernel-oracle/scenarios');
  });
});
