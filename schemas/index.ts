// the event catalogue: the single definition of every event on every path
export {
  CATALOGUE,
  EVENT_TYPES,
  IommuEventSchema,
  OPERATION_TYPES,
  currentVersionOf,
  eventMetaOf,
  isEventType,
  schemaOf,
  type EventData,
  type EventOfType,
  type EventType,
  type IommuEvent,
  type IommuEventInput,
} from './catalogue.js';
export type { EventFamily, EventMeta } from './defineEvent.js';
export { ActorSchema, EventIdSchema, SOURCES, SourceSchema, type Actor, type EventId } from './envelope.js';
export { ERRNO_NAMES, ERRNO_NUMBERS, ErrnoSchema, formatErrno, type ErrnoName } from './errno.js';
export { didYouMean } from './nearest.js';
export {
  AppError,
  ExpectedVersionConflictError,
  IllegalStateError,
  NotFoundError,
  UnavailableError,
  ValidationError,
  isAppError,
  isConflictError,
  isNotFoundError,
  isValidationError,
  type AppErrorUnion,
  type ErrorKind,
  type FieldIssue,
  type Result,
} from './errors.js';
export { createEventBuilder, type EventBuilder, type EventBuilderOptions, type EventExtras } from './eventBuilder.js';
export {
  ClassCodeSchema,
  DeviceNameSchema,
  DriverNameSchema,
  GroupNumberSchema,
  HandleSchema,
  Hex16Schema,
  Hex64Schema,
  HostNameSchema,
  NanosSchema,
  ObjectIdSchema,
  PasidSchema,
  PciAddressSchema,
  isMdevUuid,
  isPciAddress,
  normalizePciAddress,
  type DeviceName,
  type GroupNumber,
  type Handle,
  type HostName,
  type ObjectId,
  type PciAddress,
} from './ids.js';
export { catalogueJsonSchema } from './jsonSchema.js';
export {
  CONFIRMED_MANAGED_DMA_DRIVERS,
  DEFAULT_MANAGED_DMA_DRIVERS,
  LEGACY_ALLOWED_DRIVERS,
  UNCONFIRMED_MANAGED_DMA_DRIVERS,
  isVfioDriverName,
} from './kernelData.js';
export { FailedOutcomeSchema, PlainOutcomeSchema, outcomeOf, type FailedOutcome, type PlainOutcome } from './outcome.js';
export { assertEvent, joinPath, parseEvent, parseEventJson, parseEvents, type BatchParseResult } from './parse.js';
export { END, START, hostOfStream, hostStreamName, type RecordedEvent } from './recordedEvent.js';
export {
  DomainTypeSchema,
  HostCapabilitiesSchema,
  ReservedRegionSchema,
  TopologyDeviceSchema,
  TopologyGroupSchema,
} from './events/topology.js';
export { UPCASTERS, upcasterFor, type Upcaster } from './upcasters.js';
