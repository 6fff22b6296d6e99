// projections: the pure fold of recorded events into IOMMU group/device/domain state, violations and time travel
export type {
  ClockStep,
  ContainerState,
  DeviceFdState,
  DeviceState,
  DeviceTopologyState,
  DomainRef,
  EventRef,
  FleetState,
  GroupState,
  HostCapabilitiesState,
  HostClockState,
  HostSequenceState,
  HostState,
  IommufdContextState,
  IommufdObjectState,
  SequenceGap,
  Severity,
  UserOwner,
  Violation,
  ViolationLog,
} from './types.js';
export { IMPOSSIBLE_UPSTREAM, RULES, RULE_IDS, isFinding, isRuleId, type RuleDefinition, type RuleId } from './rules.js';
export {
  DEFAULT_TENANCY_POLICY,
  createFleetProjection,
  eventRefOf,
  type ChangedGroups,
  type FleetProjection,
  type FleetProjectionOptions,
  type TenancyPolicy,
} from './fleetProjection.js';
export {
  deviceObjectsOf,
  objectsOf,
  type DeviceObjectsView,
  type HostObjectsState,
} from './iommufdObjects.js';
export { cloneState, fromSnapshot, toSnapshot, toSnapshotJson, type FleetSnapshot } from './snapshots.js';
export {
  clockStepsAcross,
  createFolder,
  foldEvents,
  foldEventsAsync,
  isAtOrBefore,
  lastClockReturn,
  violationsAt,
  type AsOf,
  type FoldInput,
} from './timeTravel.js';
export {
  diffDeviceState,
  diffGroupState,
  diffHostState,
  evolveWithChanges,
  type EventChange,
  type FieldChange,
  type HostChanges,
} from './diff.js';
export { MAX_SEQUENCE_GAPS, newSequenceState, observeSequence, type SequenceObservation } from './sequence.js';
export {
  formatScores,
  matchesLabel,
  scoreAgainstLabels,
  scoreFindings,
  type FindingScores,
  type LabelEventRef,
  type MistakeLabel,
  type RuleScore,
} from './groundTruth.js';
