import { evolveWithDecision } from '../projections/kernel/decider.js';
import { NO_CHANGES, type ModelChanges } from '../projections/kernel/mutate.js';
import type { Decision, ModelState, ObservationBody, Operation, ProtocolDecider } from '../projections/kernel/types.js';

/** one decision folded into the model's own state, with the devices whose domain it moved */
export interface StepResult {
  readonly decision: Decision;
  /** each is one `attach_device_to_domain` trace (§2.1), in the order the transition moves them */
  readonly domainChanges: readonly string[];
}

/** a reader of the devices a transition moves, in order */
const movesInto = (moved: string[]): ModelChanges => ({ ...NO_CHANGES, moved: (device) => moved.push(device) });

/**
 * Decide one operation on a model's own state and evolve it with the decision's recorded event: what a
 * kernel does when it is called, for a driver of the model (the simulator) rather than a replay.
 */
export const decideAndEvolve = (decider: ProtocolDecider, state: ModelState, operation: Operation): StepResult => {
  const decision = decider.decide(operation, state);
  const domainChanges: string[] = [];
  evolveWithDecision(decider, state, decision, movesInto(domainChanges));
  return { decision, domainChanges };
};

/** fold a topology observation (snapshot, hotplug) into a model's own state; the devices whose domain it moved */
export const observeAndEvolve = (decider: ProtocolDecider, state: ModelState, observation: ObservationBody): readonly string[] => {
  const moved: string[] = [];
  decider.evolve(state, observation, movesInto(moved));
  return moved;
};
