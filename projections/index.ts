// projections: the pure fold of recorded events into IOMMU group/device/domain state, violations and time travel
export type {
  ContainerState,
  DeviceFdState,
  DeviceState,
  DeviceTopologyState,
  DomainRef,
  EventRef,
  FleetState,
  GroupState,
  HostCapabilitiesState,
  HostState,
  IommufdContextState,
  IommufdObjectState,
  Severity,
  UserOwner,
  Violation,
  ViolationLog,
} from './types.js';
export { RULES, RULE_IDS, isRuleId, type RuleDefinition, type RuleId } from './rules.js';
export {
  DEFAULT_TENANCY_POLICY,
  createFleetProjection,
  eventRefOf,
  type FleetProjection,
  type FleetProjectionOptions,
  type TenancyPolicy,
} from './fleetProjection.js';
export { cloneState, fromSnapshot, toSnapshot, type FleetSnapshot } from './snapshots.js';
export {
  createSnapshotter,
  foldEvents,
  foldEventsAsync,
  isAtOrBefore,
  selectGroup,
  selectHost,
  stateAsOf,
  stateAsOfAsync,
  violationsAt,
  type AsOf,
  type FoldInput,
  type Snapshotter,
  type SnapshotterOptions,
  type StateAsOfOptions,
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
