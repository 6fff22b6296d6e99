import { sameDomain } from './models/kernel.js';
import type { Decision, Effect, ModelState, Observation, Operation, ProtocolDecider } from './models/types.js';

/** one decision folded into the model's own state, with the devices whose domain it moved */
export interface StepResult {
  readonly decision: Decision;
  /** each is one `attach_device_to_domain` trace (§2.1), in the order the effects set them */
  readonly domainChanges: readonly string[];
}

const NONE: readonly string[] = Object.freeze([]);

/** fold effects in order; a DeviceSet whose domain differs from the device's current one is a domain change */
const foldEffects = (decider: ProtocolDecider, state: ModelState, effects: readonly Effect[]): readonly string[] => {
  let moved: string[] | null = null;
  for (const e of effects) {
    if (e.type === 'DeviceSet') {
      const before = state.devices.get(e.device.name);
      if (before && !sameDomain(before.domain, e.device.domain)) (moved ??= []).push(e.device.name);
    }
    decider.evolve(state, e);
  }
  return moved ?? NONE;
};

/**
 * Decide one operation on a model's own state and evolve it with the decision: what a kernel does when it
 * is called, for a driver of the model (the simulator) rather than a replay of a recorded outcome.
 */
export const decideAndEvolve = (decider: ProtocolDecider, state: ModelState, operation: Operation): StepResult => {
  const decision = decider.decide(operation, state);
  return { decision, domainChanges: decision.effects.length === 0 ? NONE : foldEffects(decider, state, decision.effects) };
};

/** fold a topology observation (snapshot, hotplug) into a model's own state */
export const observeAndEvolve = (decider: ProtocolDecider, state: ModelState, observation: Observation): readonly string[] =>
  foldEffects(decider, state, decider.observe(observation, state));
