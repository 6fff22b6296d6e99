import { recordedOutcomeOf, toOperation, toRecordedEvents } from '../operations.js';
import { applyEffect, initialState as emptyState, observe } from './kernel.js';
import type { RuleTable } from './rules.js';
import type { DecidedEvent, Decision, Effect, ModelEvent, ModelOutcome, ModelState, ObservationBody, Operation, ProtocolDecider, Transition, VariantName } from './types.js';

/** a protocol variant as its transition function: what each call returns on it and how the host changes */
export interface VariantModel {
  readonly variant: VariantName;
  readonly description: string;
  readonly rules: RuleTable;
  readonly transition: (operation: Operation, state: ModelState) => Transition;
}

const isObservationBody = (e: ModelEvent): e is ObservationBody =>
  e.type === 'TopologySnapshotTaken' || e.type === 'DeviceAddedToGroup' || e.type === 'DeviceRemovedFromGroup';

/** the same answer: both succeed (ids are the variant's own), or both fail with the same errno */
const sameAnswer = (a: ModelOutcome, b: ReturnType<typeof recordedOutcomeOf>): boolean =>
  a.ok ? b.ok : !b.ok && 'errno' in a && a.errno === b.errno;

const NO_EFFECTS: readonly Effect[] = Object.freeze([]);

/**
 * A variant's decider (G3) from its transition function: `decide` returns the catalogue's recorded event
 * for the call (operations.ts `toRecordedEvents`), `evolve` is the variant's transition for a recorded
 * event or a topology observation, `initialState(topology)` the host its first snapshot shows.
 */
export const createProtocolDecider = (model: VariantModel): ProtocolDecider => {
  // the last decision, so evolving with the event just decided does not decide it again (every evolve clears it)
  let last: { readonly state: ModelState; readonly event: DecidedEvent; readonly effects: readonly Effect[] } | null = null;

  const decide = (operation: Operation, state: ModelState): Decision => {
    const t = model.transition(operation, state);
    const events = toRecordedEvents(operation, t.outcome);
    const first = events[0];
    last = first === undefined ? null : { state, event: first, effects: t.effects };
    return { outcome: t.outcome, rule: t.rule, effects: t.effects, events };
  };

  /** a recorded event the variant did not just decide: its transition applies only to the answer it would give */
  const transitionOf = (state: ModelState, event: DecidedEvent): readonly Effect[] => {
    const t = model.transition(
      toOperation(event, (_ictx, id) => id, () => undefined),
      state,
    );
    return sameAnswer(t.outcome, recordedOutcomeOf(event)) ? t.effects : NO_EFFECTS;
  };

  const evolve = (state: ModelState, event: ModelEvent): ModelState => {
    const cached = last;
    last = null;
    const effects = isObservationBody(event) ? observe(event, state) : cached !== null && cached.event === event && cached.state === state ? cached.effects : transitionOf(state, event);
    for (const e of effects) applyEffect(state, e);
    return state;
  };

  return {
    variant: model.variant,
    description: model.description,
    rules: model.rules,
    initialState: (topology?: ObservationBody): ModelState => (topology === undefined ? emptyState() : evolve(emptyState(), topology)),
    decide,
    evolve,
  };
};

/**
 * Fold a decision into the state it was decided on: its recorded events through the variant's `evolve`;
 * a crash (no event: the call never returned) marks the host dead.
 */
export const evolveWithDecision = (decider: ProtocolDecider, state: ModelState, decision: Decision): ModelState => {
  for (const e of decision.events) decider.evolve(state, e);
  if (!decision.outcome.ok && 'crash' in decision.outcome) state.crashed = { rule: decision.rule, message: decision.outcome.crash };
  return state;
};
