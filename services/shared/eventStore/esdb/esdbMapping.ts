import { v5 as uuidv5 } from 'uuid';
import { ValidationError, parseEvent, type IommuEvent, type RecordedEvent } from '../../../../schemas/index.js';

/** the ESDB side of a record, as the client hands it back (no vendor type in our signatures) */
export interface EsdbRecord {
  readonly streamId: string;
  readonly id: string;
  readonly revision: bigint;
  readonly type: string;
  readonly data: unknown;
  readonly position?: { readonly commit: bigint; readonly prepare: bigint } | undefined;
}

/** what we hand to `jsonEvent()`: ESDB's id must be a UUID */
export interface EsdbEventData {
  readonly id: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly metadata: Record<string, unknown>;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** ULID (128 bits, Crockford base32) → the same 128 bits as a UUID string; UUIDs pass through lower-cased */
export const toEsdbEventId = (id: string): string => {
  if (UUID.test(id)) return id.toLowerCase();
  if (!/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i.test(id)) throw new ValidationError(`event id ${JSON.stringify(id)}: neither a UUID nor a ULID`);
  let n = 0n;
  for (const c of id.toUpperCase()) n = (n << 5n) | BigInt(CROCKFORD.indexOf(c));
  const hex = n.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

/** the whole catalogue event is the ESDB data (so a record is self-describing); metadata repeats what ESDB tools read */
export const toEsdbEvent = (event: IommuEvent): EsdbEventData => ({
  id: toEsdbEventId(event.id),
  type: event.type,
  data: event as unknown as Record<string, unknown>,
  metadata: {
    host: event.host,
    schemaVersion: event.schemaVersion,
    time: event.time,
    ...(event.correlationId !== undefined ? { $correlationId: event.correlationId } : {}),
  },
});

/** an ESDB record back to a RecordedEvent, through the catalogue's parse (G5); the ids must agree */
export const fromEsdbRecord = (record: EsdbRecord): RecordedEvent => {
  const where = `esdb ${record.streamId}@${record.revision}`;
  const parsed = parseEvent(record.data, where);
  if (!parsed.ok) throw parsed.error;
  if (toEsdbEventId(parsed.value.id) !== record.id.toLowerCase()) {
    throw new ValidationError(`${where}: record id ${record.id} does not match the event id ${parsed.value.id}`);
  }
  if (parsed.value.type !== record.type) throw new ValidationError(`${where}: record type ${record.type} does not match the event type ${parsed.value.type}`);
  return {
    event: parsed.value,
    streamName: record.streamId,
    streamPosition: record.revision,
    globalPosition: record.position?.commit ?? 0n,
  };
};

// a fixed namespace for index link ids: the same event and key always give the same link id (idempotent retries)
const LINK_NAMESPACE = '6f1d8a52-3c1e-4b8e-9a57-5d2f0c9e7b41';
export const linkEventId = (eventId: string, indexStream: string): string => uuidv5(`${eventId}|${indexStream}`, LINK_NAMESPACE);

/** where our own bookkeeping lives in ESDB: never returned by readAll/subscribe */
export const INTERNAL_PREFIX = 'iommutrail-';
export const checkpointStream = (subscriber: string): string => `${INTERNAL_PREFIX}checkpoint-${subscriber}`;
export const indexStream = (host: string, key: string): string => `${INTERNAL_PREFIX}idx-${host}-${key}`;
export const isUserRecord = (streamId: string, type: string): boolean =>
  !streamId.startsWith('$') && !type.startsWith('$') && !streamId.startsWith(INTERNAL_PREFIX);
