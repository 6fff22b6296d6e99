import type { z } from 'zod';
import { EVENT_TYPES, currentVersionOf, isEventType, schemaOf, type IommuEvent } from './catalogue.js';
import { ValidationError, type FieldIssue, type Result } from './errors.js';
import { didYouMean } from './nearest.js';
import { upcasterFor } from './upcasters.js';

const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : String(v);
};

/** `events[3]` + ['data', 'device'] → `events[3].data.device`; numeric segments become `[i]` */
export const joinPath = (base: string, segments: readonly PropertyKey[]): string => {
  let out = base;
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? String(s) : `.${String(s)}`;
  }
  return out;
};

const toFieldIssues = (base: string, error: z.ZodError, input: unknown): FieldIssue[] => {
  const issues: FieldIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) issues.push({ path: joinPath(base, [...issue.path, key]), message: 'unknown field (not in the catalogue)' });
      continue;
    }
    let message = issue.message;
    if (issue.code === 'invalid_type') {
      const actual = valueAt(input, issue.path);
      message = actual === undefined ? 'required field is missing' : `expected ${issue.expected}, got ${show(actual)}`;
    } else if (issue.code === 'invalid_value' && issue.values.length <= 12) {
      message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${show(valueAt(input, issue.path))}`;
    } else if (issue.code === 'invalid_union') {
      message = 'does not match any allowed shape';
    }
    issues.push({ path: joinPath(base, issue.path), message });
  }
  return issues;
};

const valueAt = (input: unknown, path: readonly PropertyKey[]): unknown => {
  let cur = input;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
};

const fail = (issues: FieldIssue[]): { ok: false; error: ValidationError } => ({
  ok: false,
  error: new ValidationError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues),
});

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The one parse entry point for events from anywhere. Returns the typed, normalised event (current schema
 * version: older versions are upcast) or a ValidationError whose issues name each offending field:
 * `events[3].data.device: expected a PCI address like 0000:01:00.0, got "1:0.0x"`.
 * Unknown event types and unknown fields are errors.
 *
 * @param path how the caller names this input in messages, e.g. `events[3]` or `history.jsonl:12`
 */
export const parseEvent = (input: unknown, path = ''): Result<IommuEvent> => {
  if (!isRecord(input)) return fail([{ path: path || '(event)', message: `expected an event object, got ${show(input)}` }]);
  const type = input.type;
  if (type === undefined) return fail([{ path: joinPath(path, ['type']), message: 'required field is missing' }]);
  if (!isEventType(type)) return fail([{ path: joinPath(path, ['type']), message: `unknown event type ${show(type)}${didYouMean(type, EVENT_TYPES)}` }]);
  const current = currentVersionOf(type);
  let candidate: Record<string, unknown> = input;
  let version = input.schemaVersion;
  if (version === undefined) return fail([{ path: joinPath(path, ['schemaVersion']), message: 'required field is missing' }]);
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    return fail([{ path: joinPath(path, ['schemaVersion']), message: `expected a positive integer, got ${show(version)}` }]);
  }
  if (version > current) {
    return fail([{ path: joinPath(path, ['schemaVersion']), message: `${type} v${version} is newer than this build knows (v${current})` }]);
  }
  while (version < current) {
    const up = upcasterFor(type, version);
    if (!up) return fail([{ path: joinPath(path, ['schemaVersion']), message: `no upgrade path for ${type} v${version}` }]);
    const old = up.schema.safeParse(candidate);
    if (!old.success) return fail(toFieldIssues(path, old.error, candidate).map((i) => ({ ...i, message: `${i.message} (as ${type} v${version})` })));
    candidate = up.up(candidate);
    version += 1;
  }
  const parsed = schemaOf(type).safeParse(candidate);
  if (!parsed.success) return fail(toFieldIssues(path, parsed.error, candidate));
  return { ok: true, value: parsed.data as IommuEvent };
};

/** like {@link parseEvent}, but throws the ValidationError: for trusted paths such as fixtures */
export const assertEvent = (input: unknown, path = ''): IommuEvent => {
  const r = parseEvent(input, path);
  if (!r.ok) throw r.error;
  return r.value;
};

/** one line of JSON (a history file, a Kafka message, an NDJSON body): JSON errors are named too */
export const parseEventJson = (text: string, path = ''): Result<IommuEvent> => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return fail([{ path: path || '(event)', message: `not valid JSON: ${(e as Error).message}` }]);
  }
  return parseEvent(value, path);
};

export interface BatchParseResult {
  readonly events: { readonly index: number; readonly event: IommuEvent }[];
  readonly rejected: { readonly index: number; readonly error: ValidationError }[];
}

/** a batch, each element judged on its own: valid neighbours of a bad event still parse */
export const parseEvents = (inputs: readonly unknown[], base = 'events'): BatchParseResult => {
  const events: { index: number; event: IommuEvent }[] = [];
  const rejected: { index: number; error: ValidationError }[] = [];
  inputs.forEach((input, index) => {
    const r = parseEvent(input, `${base}[${index}]`);
    if (r.ok) events.push({ index, event: r.value });
    else rejected.push({ index, error: r.error });
  });
  return { events, rejected };
};
