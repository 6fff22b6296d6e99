import type { Actor, EventType, IommuEvent } from '../../schemas/index.js';

/**
 * An event as a source produces it: type, data and what the source knows (monotonic time, the process).
 * The spool turns it into a catalogue event: id, host, per-host seq and wall-clock time are assigned there,
 * in one place, so sequence numbers stay gap-free and persistent.
 */
export interface EventDraft {
  readonly type: EventType;
  readonly data: Record<string, unknown>;
  readonly source: IommuEvent['source'];
  readonly monoNs?: bigint;
  readonly actor?: Actor;
  readonly labels?: string[];
}

/** what a line parser made of one input record */
export type ParseOutcome =
  | { readonly kind: 'event'; readonly draft: EventDraft }
  /** deliberately not an event, by the named rule (every line read is an event, ignored by a rule, or invalid) */
  | { readonly kind: 'ignored'; readonly rule: string }
  | { readonly kind: 'invalid'; readonly reason: string };

export const ignoredBy = (rule: string): ParseOutcome => ({ kind: 'ignored', rule });
export const invalid = (reason: string): ParseOutcome => ({ kind: 'invalid', reason });
export const draftOf = (draft: EventDraft): ParseOutcome => ({ kind: 'event', draft });

/** `1234.567890` (seconds.fraction, as trace_pipe and udevadm print) → ns, exact */
export const secondsToNs = (text: string): bigint => {
  const [s, frac = ''] = text.split('.');
  return BigInt(s!) * 1_000_000_000n + BigInt((frac + '000000000').slice(0, 9));
};
