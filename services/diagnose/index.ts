export { parseEvidence } from './parseEvidence.js';
export { toPasteLines, type PasteLine } from './pasteLines.js';
export { diagnose, type Diagnosis, type DiagnoseOptions, type DeviceVerdict, type GroupVerdict, type MemberVerdict, type Tristate, type ViabilityRule } from './diagnose.js';
export { formatDiagnosis, shortDescription, toDiagnosisJson } from './formatDiagnosis.js';
export { fixFor, initramfsSteps, moduleOf } from './advice.js';
export { toImportEvents, type ImportEventsOptions, type ImportEventsResult } from './importEvents.js';
export type { DeviceFacts, ErrorClaim, ErrorFact, ErrorOrigin, Evidence, EvidenceKind, Facts, GroupFacts, IdRegistration } from './evidence.js';
