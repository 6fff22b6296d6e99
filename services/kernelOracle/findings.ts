import { createFleetProjection, isFinding } from '../../projections/index.js';
import type { Violation } from '../../projections/index.js';
import { releaseHas } from '../../projections/kernel/releases.js';
import type { ScenarioHistory } from './toEvents.js';
import type { Machine, Scenario } from './topologies.js';

/** one violation the projection opened while folding a recorded history, at the scenario line that caused it */
export interface Finding {
  readonly line: number | null;
  readonly rule: string;
  /** the step is marked as a deliberate mistake (`!`) */
  readonly mistake: boolean;
}

/** folds the history through the fleet projection and lists every violation each event opened */
export const findingsOf = (history: ScenarioHistory): Finding[] => {
  const projection = createFleetProjection();
  let state = projection.initialState();
  const out: Finding[] = [];
  for (const event of history.events) {
    const opened: Violation[] = [];
    state = projection.evolve(state, event, undefined, opened);
    const label = event.labels?.find((l) => l.startsWith('line:'));
    // information (a state the kernel's design produces for one owner, severity info) is not a finding
    for (const v of opened.filter(isFinding)) out.push({ line: label === undefined ? null : Number(label.slice(5)), rule: v.ruleId, mistake: event.labels?.includes('mistake') ?? false });
  }
  return out;
};

const key = (f: { line: number | null; rule: string }): string => `${f.line ?? '-'}:${f.rule}`;

/**
 * Assert 4: the findings a run raised, and those the scenario intends (each `# raises RULE` of a deliberate
 * mistake), both as sorted `line:rule` lists. The machine's own findings (`intendedFindings`: its configuration
 * raises them whatever the scenario) are left out of both sides; those it makes impossible (`unreachableFindings`)
 * out of the intended side only. On a release without a feature the scenario
 * exercises (`# features:`), its steps cannot make the mistakes it intends: it intends none there.
 */
export const compareFindings = (
  history: ScenarioHistory,
  scenario: Scenario,
  machine: Machine,
): { readonly raised: string[]; readonly intended: string[] } => {
  const byMachine = new Set(Object.keys(machine.intendedFindings));
  const unreachable = new Set(Object.keys(machine.unreachableFindings));
  const applies = scenario.features.every((f) => releaseHas(history.kernelRelease, f));
  const raised = findingsOf(history)
    .filter((f) => !byMachine.has(f.rule))
    .map(key)
    .sort();
  const intended = applies ? scenario.raises.filter((r) => !byMachine.has(r.rule) && !unreachable.has(r.rule)).map(key).sort() : [];
  return { raised, intended };
};
