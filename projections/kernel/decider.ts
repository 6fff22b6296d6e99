import { recordedOutcomeOf, toRecordedEvents, toRecordedOperation } from './operations.js';
import { initialState as emptyState, observe } from './kernel.js';
import { NO_CHANGES, type ModelChanges } from './mutate.js';
import type { RuleTable } from './rules.js';
import type { Apply, DecidedEvent, Decision, ModelEvent, ModelOutcome, ModelState, ObservationBody, Operation, PlannedOutcome, ProtocolDecider, Transition } from './types.js';

/** a protocol variant as its transition function: what each call returns on it and how the host changes */
export interface VariantModel {
  readonly variant: string;
  readonly description: string;
  readonly rules: RuleTable;
  readonly transition: (operation: Operation, state: ModelState) => Transition;
  /**
   * The state change of `operation` with `outcome`, applied in place without checking whether the variant
   * would answer so (issue 16: check and plan split): a success's `transition` applies it, and `evolve`
   * follows a recorded event with it, whatever the variant would have decided. False (or absent): the
   * operation is not split yet (nothing applied), `evolve` re-decides it and follows only the same answer.
   */
  readonly plan?: (operation: Operation, outcome: PlannedOutcome, state: ModelState, changes: ModelChanges) => boolean;
}

export const isObservationBody = (e: ModelEvent): e is ObservationBody =>
  e.type === 'TopologySnapshotTaken' || e.type === 'DeviceAddedToGroup' || e.type === 'DeviceRemovedFromGroup' || e.type === 'TraceDeviceResetFence';

/** the same answer: both succeed (ids are the variant's own), or both fail with the same errno */
const sameAnswer = (a: ModelOutcome, b: ReturnType<typeof recordedOutcomeOf>): boolean =>
  a.ok ? b.ok : !b.ok && 'errno' in a && a.errno === b.errno;

/**
 * A decision as `decide` returns it. Its recorded events are built when first read (the replay compares
 * outcomes and never reads them); `evolveWithDecision` applies its transition to the state it was decided on
 * directly, which is what `evolve` of its event does, without deciding the call again.
 */
class DecidedCall implements Decision {
  private decidedEvents: readonly DecidedEvent[] | undefined = undefined;
  private readonly decidedOperation: Operation;
  private readonly decidedOn: ModelState;
  private readonly decidedAt: number;
  readonly outcome: ModelOutcome;
  readonly rule: Transition['rule'];
  readonly apply: Apply | null;

  constructor(t: Transition, operation: Operation, state: ModelState) {
    this.outcome = t.outcome;
    this.rule = t.rule;
    this.apply = t.apply;
    this.decidedOperation = operation;
    this.decidedOn = state;
    this.decidedAt = state.revision;
  }

  get events(): readonly DecidedEvent[] {
    return (this.decidedEvents ??= toRecordedEvents(this.decidedOperation, this.outcome));
  }

  /** apply the transition when `state` is still the one decided on (its plan read that state); false when it has changed since */
  static applyTo(decision: Decision, state: ModelState, changes: ModelChanges): boolean {
    if (!(decision instanceof DecidedCall) || decision.decidedOn !== state || decision.decidedAt !== state.revision) return false;
    decision.apply?.(changes);
    return true;
  }
}

/**
 * A variant's decider (G3) from its transition function: `decide` returns the catalogue's recorded event
 * for the call (operations.ts `toRecordedEvents`), `evolve` is the variant's transition for a recorded
 * event or a topology observation, in place, `initialState(topology)` the host its first snapshot shows.
 */
export const createProtocolDecider = (model: VariantModel): ProtocolDecider => {
  const decide = (operation: Operation, state: ModelState): Decision => new DecidedCall(model.transition(operation, state), operation, state);

  /**
   * the variant's transition for an operation event: the recorded outcome's plan, followed without
   * re-checking it; an operation not split yet is re-decided and followed only when the answer is the same
   */
  const transitionOf = (state: ModelState, event: DecidedEvent, changes: ModelChanges): void => {
    const recorded = recordedOutcomeOf(event);
    const operation = toRecordedOperation(event);
    if (model.plan?.(operation, recorded, state, changes) === true) return;
    const t = model.transition(operation, state);
    if (sameAnswer(t.outcome, recorded)) t.apply?.(changes);
  };

  const evolve = (state: ModelState, event: ModelEvent, changes: ModelChanges = NO_CHANGES): ModelState => {
    if (isObservationBody(event)) observe(event, state, changes);
    else transitionOf(state, event, changes);
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
 * Fold a decision into the state: by its transition when the state is the one it was decided on
 * (the same as `evolve` of its recorded events), else through `evolve` of each event; a crash (no event:
 * the call never returned) marks the host dead. `changes` is told what changes (freed objects, moved devices).
 */
export const evolveWithDecision = (decider: ProtocolDecider, state: ModelState, decision: Decision, changes: ModelChanges = NO_CHANGES): ModelState => {
  if (!DecidedCall.applyTo(decision, state, changes)) for (const e of decision.events) decider.evolve(state, e, changes);
  if (!decision.outcome.ok && 'crash' in decision.outcome) state.crashed = { rule: decision.rule, message: decision.outcome.crash };
  return state;
};
