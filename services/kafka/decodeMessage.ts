import { parseEvent, type IommuEvent } from '../../schemas/index.js';

/** why a message went to the dead-letter topic (header `x-dlq-reason`) */
export type DeadLetterReason = 'undecodable' | 'invalid-event' | 'store-rejected';

export type DecodedMessage =
  | { readonly ok: true; readonly event: IommuEvent }
  | { readonly ok: false; readonly reason: DeadLetterReason; readonly error: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes one Kafka message value into a catalogue event (G5: parse at the edge). Never throws: a null value,
 * bytes that are not UTF-8 or not JSON are `undecodable`; JSON the catalogue rejects (unknown type, wrong field
 * types, missing fields) is `invalid-event`, with the field paths in `error`.
 *
 * @param where how messages name this message, e.g. `iommu.events[2]@1042`
 */
export const decodeMessage = (value: Buffer | null, where: string): DecodedMessage => {
  if (value === null || value.length === 0) return { ok: false, reason: 'undecodable', error: `${where}: empty message (no value)` };
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return { ok: false, reason: 'undecodable', error: `${where}: value is not valid UTF-8` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: 'undecodable', error: `${where}: not valid JSON: ${(e as Error).message}` };
  }
  const parsed = parseEvent(json, where);
  if (!parsed.ok) {
    const issues = parsed.error.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    return { ok: false, reason: 'invalid-event', error: issues || parsed.error.message };
  }
  return { ok: true, event: parsed.value };
};

/** keeps each host's events in their input (offset) order; hosts in order of first appearance */
export const groupByHost = <T extends { readonly event: IommuEvent }>(items: readonly T[]): Map<string, T[]> => {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const list = groups.get(item.event.host);
    if (list) list.push(item);
    else groups.set(item.event.host, [item]);
  }
  return groups;
};
