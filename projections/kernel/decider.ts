import { recordedOutcomeOf, toOperation, toRecordedEvents } from './operations.js';
import { applyEffect, domainMoves, freedObjects, initialState as emptyState, observe, type FreedObject } from './kernel.js';
import type { RuleTable } from './rules.js';
import type { DecidedEvent, Decision, Effect, ModelEvent, ModelOutcome, ModelState, ObservationBody, Operation, PlannedOutcome, ProtocolDecider, Transition } from './types.js';

/** a protocol variant as its transition function: what each call returns on it and how the host changes */
export interface VariantModel {
  readonly variant: string;
  readonly description: string;
  readonly rules: RuleTable;
  readonly transition: (operation: Operation, state: ModelState) => Transition;
  /**
   * The state change of `operation` with `outcome`, without checking whether the variant would answer so
   * (issue 16: check and plan split): a success's `transition` plans its effects with it, and `evolve`
   * follows a recorded event with it, whatever the variant would have decided. Undefined (the function or
   * its answer): the operation is not split yet, `evolve` re-decides it and follows only the same answer.
   */
  readonly plan?: (operation: Operation, outcome: PlannedOutcome, state: ModelState) => readonly Effect[] | undefined;
}

export const isObservationBody = (e: ModelEvent): e is ObservationBody =>
  e.type === 'TopologySnapshotTaken' || e.type === 'DeviceAddedToGroup' || e.type === 'DeviceRemovedFromGroup' || e.type === 'TraceDeviceResetFence';

/** the same answer: both succeed (ids are the variant's own), or both fail with the same errno */
const sameAnswer = (a: ModelOutcome, b: ReturnType<typeof recordedOutcomeOf>): boolean =>
  a.ok ? b.ok : !b.ok && 'errno' in a && a.errno === b.errno;

const NO_EFFECTS: readonly Effect[] = Object.freeze([]);
const NO_NAMES: readonly never[] = Object.freeze([]);
// a recorded event's ids are the model's own (no translation); evolve knows no fd's recorded ctx
const SAME_ID = (_ictx: string, id: number): number => id;
const NO_FD_ICTX = (): undefined => undefined;

/**
 * A decision as `decide` returns it. Its recorded events are built when first read (the replay compares
 * outcomes and never reads them); `evolveWithDecision` folds it into the state it was decided on by its
 * transition directly, which is what `evolve` of its event does, without deciding the call again.
 */
class DecidedCall implements Decision {
  private decidedEvents: readonly DecidedEvent[] | undefined = undefined;
  private readonly decidedOperation: Operation;
  private readonly decidedOn: ModelState;
  private readonly decidedAt: number;
  readonly outcome: ModelOutcome;
  readonly rule: Transition['rule'];
  readonly effects: readonly Effect[];

  constructor(t: Transition, operation: Operation, state: ModelState) {
    this.outcome = t.outcome;
    this.rule = t.rule;
    this.effects = t.effects;
    this.decidedOperation = operation;
    this.decidedOn = state;
    this.decidedAt = state.revision;
  }

  /** named from the state decided on at each read (the replay never reads `moved`): read before the decision is applied */
  get freed(): readonly FreedObject[] {
    return this.effects.length === 0 ? NO_NAMES : freedObjects(this.stateDecidedOn('freed'), this.effects);
  }

  get moved(): readonly string[] {
    return this.effects.length === 0 ? NO_NAMES : domainMoves(this.stateDecidedOn('moved'), this.effects);
  }

  private stateDecidedOn(what: string): ModelState {
    if (this.decidedOn.revision !== this.decidedAt) throw new Error(`Decision.${what} read after the state it was decided on changed: read it before evolving`);
    return this.decidedOn;
  }

  get events(): readonly DecidedEvent[] {
    return (this.decidedEvents ??= toRecordedEvents(this.decidedOperation, this.outcome));
  }

  /** apply the transition when `state` is still the one decided on; false when it has changed since */
  static applyTo(decision: Decision, state: ModelState): boolean {
    if (!(decision instanceof DecidedCall) || decision.decidedOn !== state || decision.decidedAt !== state.revision) return false;
    for (const e of decision.effects) applyEffect(state, e);
    return true;
  }
}

/**
 * A variant's decider (G3) from its transition function: `decide` returns the catalogue's recorded event
 * for the call (operations.ts `toRecordedEvents`), `evolve` is the variant's transition for a recorded
 * event or a topology observation, `initialState(topology)` the host its first snapshot shows.
 */
export const createProtocolDecider = (model: VariantModel): ProtocolDecider => {
  const decide = (operation: Operation, state: ModelState): Decision => new DecidedCall(model.transition(operation, state), operation, state);

  /**
   * the variant's transition for an operation event: the recorded outcome's plan, followed without
   * re-checking it; an operation not split yet is re-decided and followed only when the answer is the same
   */
  const transitionOf = (state: ModelState, event: DecidedEvent): readonly Effect[] => {
    const operation = toOperation(event, SAME_ID, NO_FD_ICTX);
    const recorded = recordedOutcomeOf(event);
    const planned = model.plan?.(operation, recorded, state);
    if (planned !== undefined) return planned;
    const t = model.transition(operation, state);
    return sameAnswer(t.outcome, recorded) ? t.effects : NO_EFFECTS;
  };

  const effectsOf = (state: ModelState, event: ModelEvent): readonly Effect[] => (isObservationBody(event) ? observe(event, state) : transitionOf(state, event));

  const evolve = (state: ModelState, event: ModelEvent): ModelState => {
    // an index loop: a for-of over the effects (frozen NO_EFFECTS among them) allocated an iterator result per effect
    const effects = effectsOf(state, event);
    for (let i = 0; i < effects.length; i++) applyEffect(state, effects[i]!);
    return state;
  };

  return {
    variant: model.variant,
    description: model.description,
    rules: model.rules,
    initialState: (topology?: ObservationBody): ModelState => (topology === undefined ? emptyState() : evolve(emptyState(), topology)),
    decide,
    evolve,
    effectsOf,
  };
};

/**
 * Fold a decision into the state: by its transition when the state is the one it was decided on
 * (the same as `evolve` of its recorded events), else through `evolve` of each event; a crash (no event:
 * the call never returned) marks the host dead.
 */
export const evolveWithDecision = (decider: ProtocolDecider, state: ModelState, decision: Decision): ModelState => {
  if (!DecidedCall.applyTo(decision, state)) for (const e of decision.events) decider.evolve(state, e);
  if (!decision.outcome.ok && 'crash' in decision.outcome) state.crashed = { rule: decision.rule, message: decision.outcome.crash };
  return state;
};
