import { z } from 'zod';
import { GroupNumberSchema, DeviceNameSchema, HostNameSchema, ValidationError, joinPath } from '../../../schemas/index.js';
import type { AsOf } from '../../../projections/index.js';
import { INT64_MAX, TIME_FORMS, formatTimeNs, parseTimeNs } from '../../shared/time.js';

export const TimeNsParam = z.string().transform((s, ctx) => {
  const ns = parseTimeNs(s);
  if (ns === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected ${TIME_FORMS}, got ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  return ns;
});

export const PositionParam = z
  .string()
  .regex(/^\d{1,19}$/, { error: 'expected a store position (decimal integer)' })
  .transform((s) => BigInt(s))
  .refine((n) => n <= INT64_MAX, { error: 'store position out of range (int64)' });

export const LimitParam = z.coerce.number().int().min(1).max(10_000).default(100);

/** an opaque cursor: base64url of the last item's sort key */
export const CursorParam = z.string().max(512).transform((s, ctx) => {
  try {
    return JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a cursor returned by this API' });
    return z.NEVER;
  }
});
export const encodeCursor = (key: unknown): string => Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');

export const HostParam = HostNameSchema;
export const GroupParam = z.coerce.number().pipe(GroupNumberSchema);
export const DeviceParam = DeviceNameSchema;

/** parse query or path parameters, naming the parameter on failure (→ 400 with field errors) */
export const parseParams = <S extends z.ZodType>(schema: S, input: unknown, where: 'query' | 'path' | 'body'): z.output<S> => {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({
    path: i.code === 'unrecognized_keys' ? joinPath(where, [...i.path, i.keys[0]!]) : joinPath(where, i.path),
    message: i.code === 'unrecognized_keys' ? 'unknown parameter' : i.message,
  }));
  throw new ValidationError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
};

export const AsOfQuery = z.strictObject({ at: TimeNsParam.optional(), position: PositionParam.optional() });

/** `?at=` (time) or `?position=`; neither means "now" */
export const toAsOf = (q: { at?: bigint | undefined; position?: bigint | undefined }): AsOf | undefined => {
  if (q.at !== undefined && q.position !== undefined) {
    throw new ValidationError('query: give either at or position, not both', [{ path: 'query.at', message: 'give either at or position, not both' }]);
  }
  if (q.position !== undefined) return { position: q.position };
  if (q.at !== undefined) return { timeNs: q.at };
  return undefined;
};

/**
 * How an event is named to people, the same in the API, the CLI and the dashboard: its host and the host's
 * seq (`h12#4`, the label), with the store position (for links and `?position=`) and the time (ns and UTC ISO).
 */
export interface EventIdentity {
  readonly label: string;
  readonly host: string;
  readonly seq: number;
  readonly position: string;
  readonly timeNs: string;
  readonly time: string;
}

export const eventLabel = (host: string, seq: number): string => `${host}#${seq}`;

export const eventIdentity = (r: { readonly event: { readonly host: string; readonly seq: number; readonly time: string }; readonly globalPosition: bigint }): EventIdentity => ({
  label: eventLabel(r.event.host, r.event.seq),
  host: r.event.host,
  seq: r.event.seq,
  position: r.globalPosition.toString(),
  timeNs: r.event.time,
  time: formatTimeNs(BigInt(r.event.time)),
});
