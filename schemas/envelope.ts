import { z } from 'zod';
import { canonicalObject } from './canonicalObject.js';
import { HostNameSchema, NanosSchema } from './ids.js';

// UUIDv7 or ULID in one regex: a single test on the hot path
const EVENT_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|[0-7][0-9A-HJKMNP-TV-Z]{25})$/i;

/**
 * the canonical spelling of an id, so the idempotency key does not depend on the case a producer wrote: a UUID
 * in lower case (RFC 9562), a ULID in upper case (its spec's Crockford alphabet)
 */
const toCanonicalId = (id: string): string => (id.length === 36 ? id.toLowerCase() : id.toUpperCase());

/**
 * UUIDv7 (preferred: time-ordered, what our producers mint) or ULID (accepted from other producers), either case
 * accepted and normalised ({@link toCanonicalId}): the id is the idempotency key on every path
 */
export const EventIdSchema = z
  .string()
  .regex(EVENT_ID, { error: (iss) => `expected a UUIDv7 or ULID event id, got ${JSON.stringify(iss.input)}` })
  .transform(toCanonicalId)
  .brand<'EventId'>();
export type EventId = z.output<typeof EventIdSchema>;

/** who produced the record: a host collector, udev, ftrace, a VMM reporting its own ioctls, ... */
export const SOURCES = ['collector', 'udev', 'ftrace', 'bpftrace', 'vmm', 'import', 'simulator', 'api'] as const;
export const SourceSchema = z.enum(SOURCES, {
  error: (iss) => `expected a source (${SOURCES.join(', ')}), got ${JSON.stringify(iss.input)}`,
});

/** the process, VM and tenant behind an operation, when the recorder knows them */
export const ActorSchema = canonicalObject({
  /** pid_t is a signed 32-bit integer */
  pid: z.number().int().min(0).max(0x7fffffff, { error: 'expected a pid (pid_t: at most 2147483647)' }).optional(),
  comm: z.string().max(64).optional(),
  vm: z.string().min(1).max(128).optional(),
  tenant: z.string().min(1).max(128).optional(),
});
export type Actor = z.output<typeof ActorSchema>;

/**
 * Envelope fields shared by every event. `seq` is the host's own counter (gaps and reordering are
 * detected from it); `time` is wall-clock ns since the Unix epoch; `monoNs` is CLOCK_MONOTONIC when known
 * (trace_pipe and uevent timestamps are monotonic, not wall-clock).
 */
export const envelopeShape = {
  id: EventIdSchema,
  host: HostNameSchema,
  seq: z
    .number({ error: (iss) => `expected the host's sequence number (integer ≥ 0), got ${JSON.stringify(iss.input)}` })
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER),
  time: NanosSchema,
  monoNs: NanosSchema.optional(),
  source: SourceSchema,
  actor: ActorSchema.optional(),
  correlationId: z.string().min(1).max(128).optional(),
  /** free-form tags; the simulator puts its ground-truth labels here */
  labels: z.array(z.string().min(1).max(128)).max(32).optional(),
};
