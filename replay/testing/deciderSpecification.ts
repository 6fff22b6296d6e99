import assert from 'node:assert/strict';
import type { ErrnoName } from '../../schemas/index.js';
import { evolveWithDecision } from '../../projections/kernel/decider.js';
import { recordedOutcomeOf } from '../../projections/kernel/operations.js';
import { fromKernelStateJson, toKernelStateJson } from '../../projections/kernel/stateJson.js';
import type { Decision, ModelState, Observation, Operation, ProtocolDecider } from '../../projections/kernel/types.js';

export type GivenStep = Observation | Operation;

const isOperation = (s: GivenStep): s is Operation => 'kind' in s;

/** a copy of the state as data (its records change in place), without the count of changes, which is no fact of the host */
const factsOf = (state: ModelState): unknown => {
  const { revision: _revision, ...facts } = toKernelStateJson(state);
  return structuredClone(facts);
};

/**
 * G17: given/when/then for protocol models. `given` takes the topology (a TopologySnapshotTaken event) and
 * earlier operations (applied whatever they return, as a history would); `when` is the operation under
 * test; the `then*` assertions check the outcome, the deciding rule and, optionally, the state after.
 */
export const DeciderSpecification = {
  for: (decider: ProtocolDecider) => ({
    given: (...history: GivenStep[]) => ({
      when: (operation: Operation) => {
        const state = decider.initialState();
        for (const step of history) {
          if (isOperation(step)) evolveWithDecision(decider, state, decider.decide(step, state));
          else decider.evolve(state, step);
        }
        const decision: Decision = decider.decide(operation, state);
        const after = (): ModelState => evolveWithDecision(decider, state, decision);
        /**
         * the decision applied, checked against its events folded by `evolve` into a copy of the state it was decided on
         * (what a projection of the recorded call does): the variant's plan of a recorded event and the plan its decision
         * applies are one (issue 16)
         */
        const appliedAndFollowed = (): ModelState => {
          const copy = fromKernelStateJson(toKernelStateJson(state));
          for (const e of decision.events) decider.evolve(copy, e);
          const applied = after();
          assert.deepEqual(factsOf(copy), factsOf(applied), `${decider.variant}: evolve of the recorded ${operation.kind} is its decision applied`);
          return applied;
        };
        const checkRule = (rule?: string): void => {
          if (rule !== undefined) assert.equal(decision.rule, rule, `rule of ${decider.variant}`);
          assert.ok(decision.rule in decider.rules, `rule ${decision.rule} is documented in ${decider.variant}'s rules`);
        };
        return {
          decision,
          /** the state after the decision is applied (for a call whose state change a then* does not check) */
          applied: after,
          thenFails(errno: ErrnoName, rule?: string) {
            assert.deepEqual(decision.outcome, { ok: false, errno }, `${decider.variant}: ${operation.kind} (rule ${decision.rule})`);
            const before = factsOf(state);
            assert.deepEqual(factsOf(appliedAndFollowed()), before, 'a failed call changes nothing');
            for (const e of decision.events) assert.deepEqual(recordedOutcomeOf(e), decision.outcome, 'the decided event records the outcome');
            checkRule(rule);
          },
          thenSucceeds(ids: Record<string, unknown> = {}, rule?: string): ModelState {
            assert.deepEqual(decision.outcome, { ok: true, ...ids }, `${decider.variant}: ${operation.kind} (rule ${decision.rule})`);
            assert.equal(decision.events.length, 1, 'a call that returns is one recorded event');
            for (const e of decision.events) assert.deepEqual(recordedOutcomeOf(e), decision.outcome, 'the decided event records the outcome');
            checkRule(rule);
            return appliedAndFollowed();
          },
          thenCrashes(rule?: string): ModelState {
            assert.ok(!decision.outcome.ok && 'crash' in decision.outcome, `${decider.variant}: expected a crash, got ${JSON.stringify(decision.outcome)}`);
            checkRule(rule);
            return after();
          },
          thenBlocks(rule?: string) {
            assert.ok(!decision.outcome.ok && 'blocks' in decision.outcome, `${decider.variant}: expected the call to block, got ${JSON.stringify(decision.outcome)}`);
            checkRule(rule);
          },
        };
      },
    }),
  }),
};
