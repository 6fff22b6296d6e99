// the replay surface: protocol models (deciders), the replayer and CI expectations
export { VARIANTS } from './variants.js';
export { resolveStage, atRelease, judgedReleaseText } from './stages/releaseStage.js';
export { defineStage, PREDICATES, StageFileSchema, type StageFile } from './stages/dataStage.js';
export { VARIANT_NAMES, isVariantName, MISSING_ID } from '../projections/kernel/types.js';
export type { DecidedEvent, Decision, ModelEvent, ModelOutcome, ModelState, Observation, ObservationBody, Operation, ProtocolDecider, VariantName } from '../projections/kernel/types.js';
export { evolveWithDecision } from '../projections/kernel/decider.js';
export { replayHistory, summarizeGroups, type HistoryLineInput, type ReplayInput, type ReplayOptions } from './replayer.js';
export { formatOutcome, formatReport } from './report.js';
export type { Divergence, EventRef, GroupSummary, HostReport, InputError, ReplayReport, VariantHostReport, Verdict } from './report.js';
export { decideAndEvolve, observeAndEvolve, type StepResult } from './step.js';
export { toOperation, toRecordedEvents, recordedOutcomeOf, isObservation, type RecordedOutcome } from '../projections/kernel/operations.js';
export { isOperationEvent } from './historyCheck.js';
export { createIdMap, type IdMap } from './idMap.js';
export { toExpectation, diffExpectations, type Expectation, type GoldenFile } from './golden.js';
