import type { IommuEvent, RecordedEvent } from '../../../schemas/index.js';
import type { StoredEventRef } from './eventStore.js';
import { canonicalJson } from './format/chain.js';

/** the same event: equal canonical JSON (RFC 8785), the bytes the SQLite store keeps and hashes */
export const sameEventContent = (a: IommuEvent, b: IommuEvent): boolean => canonicalJson(a) === canonicalJson(b);

export const toStoredEventRef = (r: RecordedEvent): StoredEventRef => ({
  id: r.event.id,
  streamName: r.streamName,
  revision: r.streamPosition,
  position: r.globalPosition,
  host: r.event.host,
  seq: r.event.seq,
});

/** one line for a client or a dead letter: which stored event holds the id, and what to do */
export const describeIdConflict = (stored: StoredEventRef): string =>
  `id ${stored.id} is already stored with other content (host ${stored.host} seq ${stored.seq}, stream ${stored.streamName} revision ${stored.revision}, position ${stored.position}); ` +
  'a retry must resend the same event, a new event needs a new id';
