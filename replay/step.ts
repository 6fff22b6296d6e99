import { evolveWithDecision } from '../projections/kernel/decider.js';
import { observe, sameDomain } from '../projections/kernel/kernel.js';
import type { Decision, Effect, ModelState, ObservationBody, Operation, ProtocolDecider } from '../projections/kernel/types.js';

/** one decision folded into the model's own state, with the devices whose domain it moved */
export interface StepResult {
  readonly decision: Decision;
  /** each is one `attach_device_to_domain` trace (§2.1), in the order the transition sets them */
  readonly domainChanges: readonly string[];
}

const NONE: readonly string[] = Object.freeze([]);

/** the devices a transition moves to another domain (read before it is applied) */
const movedDevices = (state: ModelState, effects: readonly Effect[]): readonly string[] => {
  let moved: string[] | null = null;
  const seen = new Map<string, Effect & { type: 'DeviceSet' }>();
  for (const e of effects) {
    if (e.type !== 'DeviceSet') continue;
    // a device set twice in one transition moves again from its first set
    const before = seen.get(e.device.name)?.device ?? state.devices.get(e.device.name);
    if (before && !sameDomain(before.domain, e.device.domain)) (moved ??= []).push(e.device.name);
    seen.set(e.device.name, e);
  }
  return moved ?? NONE;
};

/**
 * Decide one operation on a model's own state and evolve it with the decision's recorded event: what a
 * kernel does when it is called, for a driver of the model (the simulator) rather than a replay.
 */
export const decideAndEvolve = (decider: ProtocolDecider, state: ModelState, operation: Operation): StepResult => {
  const decision = decider.decide(operation, state);
  const domainChanges = decision.effects.length === 0 ? NONE : movedDevices(state, decision.effects);
  evolveWithDecision(decider, state, decision);
  return { decision, domainChanges };
};

/** fold a topology observation (snapshot, hotplug) into a model's own state; the devices whose domain it moved */
export const observeAndEvolve = (decider: ProtocolDecider, state: ModelState, observation: ObservationBody): readonly string[] => {
  const moved = movedDevices(state, observe(observation, state));
  decider.evolve(state, observation);
  return moved;
};
