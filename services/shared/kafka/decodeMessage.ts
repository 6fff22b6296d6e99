/** why a message went to the dead-letter topic (header `x-dlq-reason`) */
export type DeadLetterReason = 'undecodable' | 'invalid-event' | 'store-rejected';


const utf8 = new TextDecoder('utf-8', { fatal: true });

/** a message value as JSON (not yet judged by the catalogue: the ingest pipeline does that), or why not */
export type DecodedValue = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: 'undecodable'; readonly error: string };

/** bytes → UTF-8 → JSON; never throws: a null value, bytes that are not UTF-8 or not JSON are `undecodable` */
export const decodeMessageValue = (value: Buffer | null, where: string): DecodedValue => {
  if (value === null || value.length === 0) return { ok: false, reason: 'undecodable', error: `${where}: empty message (no value)` };
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return { ok: false, reason: 'undecodable', error: `${where}: value is not valid UTF-8` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, reason: 'undecodable', error: `${where}: not valid JSON: ${(e as Error).message}` };
  }
};
