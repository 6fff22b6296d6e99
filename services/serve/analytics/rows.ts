import type { RecordedEvent } from '../../../schemas/index.js';
import type { DailyCompliance, GroupStateChange, SinkBatch, ViolationRecord } from './analyticsSink.js';

// ClickHouse rows keep the columns' snake_case; 64-bit values travel as decimal strings (G13)

/** the last instant a DateTime64(9) holds (2262-04-11 23:47:16.854775807 UTC), as ns since the epoch */
export const MAX_DATETIME64_NS = 9_223_372_036_854_775_807n;
/** the last day a ClickHouse `Date` holds */
export const MAX_DATE = '2149-06-06';

/** a row the sink did not write, and why; kept in `sink_quarantine` so nothing is dropped without a record */
export interface QuarantinedRow {
  readonly table: TableRows['table'];
  /** the row's natural key in its table (event id, violation key@version, host/group@position, host/day) */
  readonly key: string;
  /** the global position of the event that produced the row */
  readonly position: bigint;
  readonly reason: string;
  /** the row as JSON (64-bit values as strings) */
  readonly row: string;
}

/** a value that its column cannot hold: the row goes to quarantine instead of stopping the sink */
export class RowRejectedError extends Error {
  override readonly name = 'RowRejectedError';
}

/** ns since the epoch as canonical decimal digits (the schemas' NanosSchema), and the last one DateTime64(9) holds */
const CANONICAL_NS = /^(?:0|[1-9]\d{0,18})$/;
const MAX_NS_TEXT = MAX_DATETIME64_NS.toString();
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

// the UTC date of a day since the epoch; consecutive times nearly always share it
let lastDay = -1;
let lastDate = '';
const dateOfDay = (day: number): string => {
  if (day !== lastDay) {
    lastDay = day;
    lastDate = new Date(day * 86_400_000).toISOString().slice(0, 10);
  }
  return lastDate;
};

/**
 * ns since the epoch as exact DateTime64(9) text (`YYYY-MM-DD hh:mm:ss.fffffffff`, UTC). ClickHouse reads a
 * bare number in a DateTime64 column by its digit count (10 = s, 13 = ms, 16 = µs, 19 = ns; 11, 12 or 18
 * digits and `0` are errors, 16 digits of ns become µs): this text means one instant whatever the digits.
 */
export const toDateTime64 = (ns: bigint | string): string => {
  const digits = typeof ns === 'string' ? ns : ns.toString();
  if (!CANONICAL_NS.test(digits) || (digits.length === MAX_NS_TEXT.length && digits > MAX_NS_TEXT)) {
    throw new RowRejectedError(`time ${digits} ns is outside DateTime64(9) (1970-01-01 to 2262-04-11 23:47:16.854775807 UTC)`);
  }
  // from the digits, no BigInt or Date: the seconds (at most 11 digits) are exact as a number
  const seconds = digits.length > 9 ? Number(digits.slice(0, -9)) : 0;
  const fraction = digits.length > 9 ? digits.slice(-9) : digits.padStart(9, '0');
  const secondOfDay = seconds % 86_400;
  return `${dateOfDay((seconds - secondOfDay) / 86_400)} ${TWO_DIGITS[Math.floor(secondOfDay / 3600)]}:${TWO_DIGITS[Math.floor(secondOfDay / 60) % 60]}:${TWO_DIGITS[secondOfDay % 60]}.${fraction}`;
};

const toDay = (day: string): string => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || day < '1970-01-01' || day > MAX_DATE) throw new RowRejectedError(`day ${day} is outside Date (1970-01-01 to ${MAX_DATE})`);
  return day;
};

/** JSON with 64-bit values as decimal strings */
const toJson = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

export interface EventRow {
  event_id: string;
  global_position: string;
  stream_position: string;
  host: string;
  seq: string;
  type: string;
  time: string;
  source: string;
  group_id: number | null;
  device: string | null;
  outcome_ok: 0 | 1 | null;
  errno: string | null;
  actor_pid: number | null;
  actor_comm: string | null;
  actor_vm: string | null;
  actor_tenant: string | null;
  correlation_id: string | null;
  labels: readonly string[];
  /** the event's data as JSON text; sent as the object itself (see {@link isJsonObject}) */
  data: string | Readonly<Record<string, unknown>>;
}

export interface ViolationRow {
  violation_key: string;
  host: string;
  group_id: number | null;
  device: string | null;
  rule: string;
  severity: string;
  message: string;
  opened_at: string;
  opened_event_id: string;
  opened_position: string;
  closed_at: string | null;
  closed_event_id: string | null;
  closed_position: string | null;
  duration_ns: string | null;
  evidence_event_ids: readonly string[];
  version: string;
}

export interface GroupStateRow {
  host: string;
  group_id: number;
  global_position: string;
  event_id: string;
  event_type: string;
  time: string;
  state: string;
  owner: string;
  domain: string;
  owner_cnt: number;
  devices: readonly string[];
  /** JSON text; sent as the object itself when the change carries one (see {@link isJsonObject}) */
  detail: string | Readonly<Record<string, unknown>>;
}

export interface ComplianceRow {
  host: string;
  day: string;
  opened: number;
  closed: number;
  max_open: number;
  open_at_end: number;
  events: string;
  first_event_at: string | null;
  last_event_at: string | null;
  snapshot_at: string | null;
  snapshot_iommu: 0 | 1 | null;
  facts: 0 | 1;
  version: string;
}

/**
 * A table's insert columns, checked against its row type: every field named once, none missing. The sink keeps a
 * table's values by column in this order (`TableRows.data`) and names the columns in the INSERT.
 */
const columnsOf =
  <R>() =>
  <const C extends readonly (keyof R & string)[]>(cols: C & (Exclude<keyof R, C[number]> extends never ? unknown : { missing: Exclude<keyof R, C[number]> })): C =>
    cols;

export const EVENT_COLUMNS = columnsOf<EventRow>()([
  'event_id', 'global_position', 'stream_position', 'host', 'seq', 'type', 'time', 'source', 'group_id', 'device',
  'outcome_ok', 'errno', 'actor_pid', 'actor_comm', 'actor_vm', 'actor_tenant', 'correlation_id', 'labels', 'data',
]);
export const VIOLATION_COLUMNS = columnsOf<ViolationRow>()([
  'violation_key', 'host', 'group_id', 'device', 'rule', 'severity', 'message', 'opened_at', 'opened_event_id',
  'opened_position', 'closed_at', 'closed_event_id', 'closed_position', 'duration_ns', 'evidence_event_ids', 'version',
]);
export const GROUP_STATE_COLUMNS = columnsOf<GroupStateRow>()([
  'host', 'group_id', 'global_position', 'event_id', 'event_type', 'time', 'state', 'owner', 'domain', 'owner_cnt', 'devices', 'detail',
]);
export const COMPLIANCE_COLUMNS = columnsOf<ComplianceRow>()(['host', 'day', 'opened', 'closed', 'max_open', 'open_at_end', 'events', 'first_event_at', 'last_event_at', 'snapshot_at', 'snapshot_iommu', 'facts', 'version']);

export interface CheckpointRow {
  subscriber: string;
  position: string;
  /** ms since the epoch */
  updated_at: string;
}
export const CHECKPOINT_COLUMNS = columnsOf<CheckpointRow>()(['subscriber', 'position', 'updated_at']);

/** a row object's values in `columns` order */
const valuesIn = (row: object, columns: readonly string[]): unknown[] => {
  const values = new Array<unknown>(columns.length);
  for (let j = 0; j < columns.length; j++) values[j] = (row as Record<string, unknown>)[columns[j] as string];
  return values;
};

/** rows as positional arrays in `columns` order (JSONCompactEachRow): no key per value to write or parse */
export const toCompact = (rows: readonly object[], columns: readonly string[]): unknown[][] => {
  const out = new Array<unknown[]>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = valuesIn(rows[i] as object, columns);
  return out;
};

/**
 * Rows [from, to) of a table as one JSONColumnsWithMetadata document: each column's values in one array, the whole
 * serialized by a single `JSON.stringify` (JSONCompactEachRow costs a call, a string and a join per row, and the
 * engine parses a column of one type at a time faster: issue 23, 0.85× the insert's CPU). `meta` is empty: the
 * columns are named by the INSERT and typed by the table (a listed column's type would be checked against the
 * table's: nothing to gain). A JSON object in a String column is kept as its text, as in the row formats.
 */
// a type, not an interface: the client takes a document as a record (`InputJSONObjectEachRow`)
export type ColumnsDocument = {
  readonly meta: readonly never[];
  readonly data: Readonly<Record<string, readonly unknown[]>>;
};

const NO_META: readonly never[] = Object.freeze([]);

/** the table's own column arrays when all its rows go (no copy), else each column's slice */
export const columnsDocument = (t: Pick<TableRows, 'columns' | 'data' | 'length'>, from = 0, to = t.length): ColumnsDocument => {
  const data: Record<string, readonly unknown[]> = {};
  const whole = from === 0 && to === t.length;
  for (let j = 0; j < t.columns.length; j++) {
    const column = t.data[j] as readonly unknown[];
    data[t.columns[j] as string] = whole ? column : column.slice(from, to);
  }
  return { meta: NO_META, data };
};

/** a row's values in its columns' order, each typed as its field: what JSONCompactEachRow sends */
export type ValuesOf<R, C extends readonly (keyof R)[]> = { -readonly [I in keyof C]: R[C[I]] };

/**
 * A JSON object sent as the value of a String column: ClickHouse's JSON input formats keep its text as the string
 * (`input_format_json_read_objects_as_strings`), the very text `JSON.stringify` makes of it. The sink sends an
 * event's data so: serialized once, by the insert's own encoding, instead of once into a string and again, escaped,
 * into the row (issue 23: JSON built twice)
 */
export const isJsonObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** a value as its column stores it: an object sent as JSON text to a String column becomes that text */
const stored = (v: unknown): unknown => (isJsonObject(v) ? JSON.stringify(v) : v);

/** the row object of positional values, as the columns store them (for a reader, a test or the quarantine's JSON) */
export const objectOf = <R>(columns: readonly string[], values: readonly unknown[]): R => {
  const row: Record<string, unknown> = {};
  for (let j = 0; j < columns.length; j++) row[columns[j] as string] = stored(values[j]);
  return row as R;
};

const NO_LABELS: readonly string[] = Object.freeze([]);

const field = (data: unknown, name: string): unknown => (typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[name] : undefined);

/**
 * `memberOf`: the group the event's device belonged to at that moment (from the fold), for events that name a
 * device but not its group (a driver bound, a device fd opened): the group column is then filled, not blank
 */
export const eventValues = (r: RecordedEvent, memberOf: number | null = null): ValuesOf<EventRow, typeof EVENT_COLUMNS> => {
  const e = r.event;
  const data: unknown = e.data;
  const group = field(data, 'group');
  const device = field(data, 'device');
  const outcome = field(data, 'outcome');
  const ok = field(outcome, 'ok');
  const errno = field(outcome, 'errno') ?? field(data, 'errno');
  // EVENT_COLUMNS order, built as the values sent (no row object to make and take apart again per event)
  return [
    e.id,
    r.globalPosition.toString(),
    r.streamPosition.toString(),
    e.host,
    String(e.seq),
    e.type,
    toDateTime64(e.time),
    e.source,
    typeof group === 'number' ? group : memberOf,
    typeof device === 'string' ? device : null,
    typeof ok === 'boolean' ? (ok ? 1 : 0) : null,
    typeof errno === 'string' ? errno : null,
    e.actor?.pid ?? null,
    e.actor?.comm ?? null,
    e.actor?.vm ?? null,
    e.actor?.tenant ?? null,
    e.correlationId ?? null,
    e.labels ?? NO_LABELS,
    isJsonObject(data) ? data : JSON.stringify(data),
  ];
};

export const toEventRow = (r: RecordedEvent, memberOf: number | null = null): EventRow => objectOf<EventRow>(EVENT_COLUMNS, eventValues(r, memberOf));

export const toViolationRow = (v: ViolationRecord): ViolationRow => ({
  violation_key: v.key,
  host: v.host,
  group_id: v.group ?? null,
  device: v.device ?? null,
  rule: v.rule,
  severity: v.severity,
  message: v.message,
  opened_at: toDateTime64(v.opened.timeNs),
  opened_event_id: v.opened.eventId,
  opened_position: v.opened.globalPosition.toString(),
  closed_at: v.closed === undefined ? null : toDateTime64(v.closed.timeNs),
  closed_event_id: v.closed?.eventId ?? null,
  closed_position: v.closed?.globalPosition.toString() ?? null,
  // a close stamped before its open (clock skew between sources) counts as zero, never a wrapped UInt64
  duration_ns: v.closed === undefined ? null : (v.closed.timeNs > v.opened.timeNs ? v.closed.timeNs - v.opened.timeNs : 0n).toString(),
  evidence_event_ids: v.evidence,
  version: v.version.toString(),
});

// GROUP_STATE_COLUMNS order
export const groupStateValues = (g: GroupStateChange): ValuesOf<GroupStateRow, typeof GROUP_STATE_COLUMNS> => [
  g.host,
  g.group,
  g.at.globalPosition.toString(),
  g.at.eventId,
  g.eventType,
  toDateTime64(g.at.timeNs),
  g.state,
  g.owner,
  g.domain,
  g.ownerCount,
  g.devices,
  g.detail,
];

export const toGroupStateRow = (g: GroupStateChange): GroupStateRow => objectOf<GroupStateRow>(GROUP_STATE_COLUMNS, groupStateValues(g));

export const toComplianceRow = (c: DailyCompliance): ComplianceRow => ({
  host: c.host,
  day: toDay(c.day),
  opened: c.opened,
  closed: c.closed,
  max_open: c.maxOpen,
  open_at_end: c.openAtEnd,
  events: c.events.toString(),
  first_event_at: c.firstNs === undefined ? null : toDateTime64(c.firstNs),
  last_event_at: c.lastNs === undefined ? null : toDateTime64(c.lastNs),
  snapshot_at: c.snapshot === undefined ? null : toDateTime64(c.snapshot.timeNs),
  snapshot_iommu: c.snapshot === undefined ? null : c.snapshot.iommu ? 1 : 0,
  facts: c.factsUnknown === true ? 0 : 1,
  version: c.version.toString(),
});

/**
 * One table's share of a sink batch: its rows by column (what a JSONColumns document sends: issue 23, no array per row
 * kept from the fold to the insert) and the columns' order.
 */
export interface TableRows {
  readonly table: 'events' | 'violations' | 'group_states' | 'compliance_daily' | 'sink_checkpoints' | 'sink_quarantine';
  readonly columns: readonly string[];
  /** column `j`'s values, one per row in order, in `data[j]` */
  readonly data: readonly (readonly unknown[])[];
  /** the rows */
  readonly length: number;
  /** row `i`'s key and position, should it have to go to quarantine (made only then) */
  sourceOf(i: number): { readonly key: string; readonly position: bigint };
}

/** row `i`'s values in `columns` order */
export const rowAt = (t: TableRows, i: number): unknown[] => {
  const out = new Array<unknown>(t.columns.length);
  for (let j = 0; j < t.columns.length; j++) out[j] = (t.data[j] as readonly unknown[])[i];
  return out;
};

/** every row's values in `columns` order (what JSONCompactEachRow sends: a reader, a test, the bench's raw insert) */
export const positionalRows = (t: TableRows): unknown[][] => Array.from({ length: t.length }, (_, i) => rowAt(t, i));

/** positional rows as a table's columns */
const byColumn = (width: number, rows: readonly (readonly unknown[])[]): unknown[][] => Array.from({ length: width }, (_, j) => rows.map((r) => r[j]));

/** the rows of a table as objects, column names as keys (the quarantine's JSON, a test) */
export const rowObjects = (t: TableRows): Record<string, unknown>[] => positionalRows(t).map((v) => objectOf<Record<string, unknown>>(t.columns, v));

export interface BatchRows {
  /** in write order: the four tables, then the checkpoint; empty tables left out */
  readonly tables: readonly TableRows[];
  /** rows that no column could hold (a time past 2262, a day past 2149), kept aside with the reason */
  readonly rejected: readonly QuarantinedRow[];
}

export interface QuarantineRow {
  table_name: string;
  row_key: string;
  global_position: string;
  reason: string;
  row: string;
  /** ms since the epoch */
  quarantined_at: string;
}
export const QUARANTINE_COLUMNS = columnsOf<QuarantineRow>()(['table_name', 'row_key', 'global_position', 'reason', 'row', 'quarantined_at']);

export const toQuarantineRow = (q: QuarantinedRow, nowMs: number): QuarantineRow => ({
  table_name: q.table,
  row_key: q.key,
  global_position: q.position.toString(),
  reason: q.reason,
  row: q.row,
  quarantined_at: String(nowMs),
});

export const quarantineTable = (rows: readonly QuarantinedRow[], nowMs: number): TableRows => ({
  table: 'sink_quarantine',
  columns: QUARANTINE_COLUMNS,
  data: byColumn(QUARANTINE_COLUMNS.length, toCompact(rows.map((q) => toQuarantineRow(q, nowMs)), QUARANTINE_COLUMNS)),
  length: rows.length,
  sourceOf: (i) => ({ key: `${rows[i]?.table}/${rows[i]?.key}`, position: rows[i]?.position ?? 0n }),
});

// converts each source row on its own: one that a column cannot hold is set aside, its neighbours are kept. The
// values go into the columns at once: a row's array lives only while it is copied (young garbage, never promoted)
// values. `toValues` and `describe` are module-level functions, `context` what they need of the batch (issue 23, sink5):
// a function made per batch had its optimized code made again in most segments of the sink figure
const convert = <S, C>(
  table: TableRows['table'],
  columns: readonly string[],
  sources: readonly S[],
  toValues: (s: S, index: number, context: C) => readonly unknown[],
  describe: (s: S) => { key: string; position: bigint },
  rejected: QuarantinedRow[],
  context: C,
): TableRows => {
  const width = columns.length;
  const data: unknown[][] = [];
  for (let j = 0; j < width; j++) data.push(new Array<unknown>(sources.length));
  let length = 0;
  // the source of each row kept, when some were set aside (else row i is source i)
  let kept: number[] | undefined;
  for (let i = 0; i < sources.length; i++) {
    const source = sources[i] as S;
    try {
      const values = toValues(source, i, context);
      for (let j = 0; j < width; j++) (data[j] as unknown[])[length] = values[j];
      length++;
      kept?.push(i);
    } catch (error) {
      if (!(error instanceof RowRejectedError)) throw error;
      rejected.push({ table, ...describe(source), reason: error.message, row: toJson(source) });
      kept ??= Array.from({ length }, (_, j) => j);
    }
  }
  if (length < sources.length) for (const column of data) column.length = length;
  return { table, columns, data, length, sourceOf: (i) => describe(sources[kept === undefined ? i : (kept[i] as number)] as S) };
};

const violationValues = (v: ViolationRecord): unknown[] => valuesIn(toViolationRow(v), VIOLATION_COLUMNS);
const complianceValues = (c: DailyCompliance): unknown[] => valuesIn(toComplianceRow(c), COMPLIANCE_COLUMNS);
const eventValuesAt = (r: RecordedEvent, i: number, groups: SinkBatch['eventGroups']): unknown[] => eventValues(r, groups?.[i] ?? null);
const describeEvent = (r: RecordedEvent): { key: string; position: bigint } => ({ key: r.event.id, position: r.globalPosition });
const describeViolation = (v: ViolationRecord): { key: string; position: bigint } => ({ key: `${v.key}@${v.version}`, position: v.version });
const describeGroupState = (g: GroupStateChange): { key: string; position: bigint } => ({ key: `${g.host}/${g.group}@${g.at.globalPosition}`, position: g.at.globalPosition });
const describeCompliance = (c: DailyCompliance): { key: string; position: bigint } => ({ key: `${c.host}/${c.day}`, position: c.version });

/**
 * A batch as rows per table, in write order: the four tables, then the checkpoint last (a crash in between
 * replays the batch, which the keys absorb). Empty tables are left out.
 */
export const batchRows = (batch: SinkBatch, nowMs: number): BatchRows => {
  const rejected: QuarantinedRow[] = [];
  const checkpoint: CheckpointRow = { subscriber: batch.checkpoint.subscriber, position: batch.checkpoint.position.toString(), updated_at: String(nowMs) };
  const tables: TableRows[] = [
    convert('events', EVENT_COLUMNS, batch.events, eventValuesAt, describeEvent, rejected, batch.eventGroups),
    convert('violations', VIOLATION_COLUMNS, batch.violations, violationValues, describeViolation, rejected, undefined),
    convert('group_states', GROUP_STATE_COLUMNS, batch.groupStates, groupStateValues, describeGroupState, rejected, undefined),
    convert('compliance_daily', COMPLIANCE_COLUMNS, batch.compliance, complianceValues, describeCompliance, rejected, undefined),
    { table: 'sink_checkpoints', columns: CHECKPOINT_COLUMNS, data: byColumn(CHECKPOINT_COLUMNS.length, toCompact([checkpoint], CHECKPOINT_COLUMNS)), length: 1, sourceOf: () => ({ key: checkpoint.subscriber, position: batch.checkpoint.position }) },
  ];
  return { tables: tables.filter((t) => t.length > 0), rejected };
};
