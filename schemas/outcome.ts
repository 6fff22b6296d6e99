import { z } from 'zod';
import { canonicalObject } from './canonicalObject.js';
import { ErrnoSchema } from './errno.js';

/**
 * How an operation returned. `{ ok: true, ...ids }` carries what the kernel wrote back (out_devid, the
 * hwpt actually attached, a new fd); `{ ok: false, errno }` carries the error by name.
 */
export const FailedOutcomeSchema = canonicalObject({ ok: z.literal(false), errno: ErrnoSchema });

export const outcomeOf = <Shape extends z.ZodRawShape>(okShape: Shape) =>
  z.discriminatedUnion('ok', [canonicalObject({ ok: z.literal(true), ...okShape }), FailedOutcomeSchema]);

export const PlainOutcomeSchema = outcomeOf({});
export type PlainOutcome = z.output<typeof PlainOutcomeSchema>;
export type FailedOutcome = z.output<typeof FailedOutcomeSchema>;
