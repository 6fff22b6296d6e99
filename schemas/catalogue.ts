import { z } from 'zod';
import type { EventMeta } from './defineEvent.js';
import { driverCoreEvents } from './events/driverCore.js';
import { iommufdEvents } from './events/iommufd.js';
import { iommufdObjectEvents } from './events/iommufdObjects.js';
import { signalEvents } from './events/signals.js';
import { topologyEvents } from './events/topology.js';
import { vfioCdevEvents } from './events/vfioCdev.js';
import { vfioGroupEvents } from './events/vfioGroup.js';

/** every event type in its current version, in catalogue order */
export const CATALOGUE = [
  ...topologyEvents,
  ...driverCoreEvents,
  ...vfioCdevEvents,
  ...iommufdEvents,
  ...iommufdObjectEvents,
  ...vfioGroupEvents,
  ...signalEvents,
] as const;

type Entry = (typeof CATALOGUE)[number];

/** the single definition of an event, as the store, HTTP, Kafka, history files and replay all read it */
export const IommuEventSchema = z.discriminatedUnion(
  'type',
  CATALOGUE.map((e) => e.schema) as unknown as [Entry['schema'], ...Entry['schema'][]],
);
export type IommuEvent = z.output<typeof IommuEventSchema>;
/** the JSON shape a producer writes (before normalisation such as the short PCI address form) */
export type IommuEventInput = z.input<typeof IommuEventSchema>;
export type EventType = IommuEvent['type'];
export type EventOfType<T extends EventType> = Extract<IommuEvent, { type: T }>;
export type EventData<T extends EventType> = EventOfType<T>['data'];

export const EVENT_TYPES = CATALOGUE.map((e) => e.type) as EventType[];

const byType = new Map<string, Entry>(CATALOGUE.map((e) => [e.type, e]));

export const isEventType = (t: unknown): t is EventType => typeof t === 'string' && byType.has(t);
export const currentVersionOf = (t: EventType): number => byType.get(t)!.version;
export const eventMetaOf = (t: EventType): EventMeta => byType.get(t)!.meta;
export const schemaOf = (t: EventType): Entry['schema'] => byType.get(t)!.schema;

/** event types that record a call with an outcome a protocol model can re-decide */
export const OPERATION_TYPES: ReadonlySet<EventType> = new Set(CATALOGUE.filter((e) => e.meta.operation).map((e) => e.type));
