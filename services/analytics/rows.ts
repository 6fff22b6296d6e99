import type { RecordedEvent } from '../../schemas/index.js';
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

/**
 * ns since the epoch as exact DateTime64(9) text (`YYYY-MM-DD hh:mm:ss.fffffffff`, UTC). ClickHouse reads a
 * bare number in a DateTime64 column by its digit count (10 = s, 13 = ms, 16 = µs, 19 = ns; 11, 12 or 18
 * digits and `0` are errors, 16 digits of ns become µs): this text means one instant whatever the digits.
 */
export const toDateTime64 = (ns: bigint): string => {
  if (ns < 0n || ns > MAX_DATETIME64_NS) throw new RowRejectedError(`time ${ns} ns is outside DateTime64(9) (1970-01-01 to 2262-04-11 23:47:16.854775807 UTC)`);
  const iso = new Date(Number(ns / 1_000_000_000n) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
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
  data: string;
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
  detail: string;
}

export interface ComplianceRow {
  host: string;
  day: string;
  opened: number;
  closed: number;
  max_open: number;
  open_at_end: number;
  events: string;
  version: string;
}

/**
 * A table's insert columns, checked against its row type: every field named once, none missing. The sink
 * inserts positional rows (JSONCompactEachRow) in this order and names the columns in the INSERT.
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
export const COMPLIANCE_COLUMNS = columnsOf<ComplianceRow>()(['host', 'day', 'opened', 'closed', 'max_open', 'open_at_end', 'events', 'version']);

export interface CheckpointRow {
  subscriber: string;
  position: string;
  /** ms since the epoch */
  updated_at: string;
}
export const CHECKPOINT_COLUMNS = columnsOf<CheckpointRow>()(['subscriber', 'position', 'updated_at']);

/** rows as positional arrays in `columns` order (JSONCompactEachRow): no key per value to write or parse */
export const toCompact = (rows: readonly object[], columns: readonly string[]): unknown[][] => {
  const out = new Array<unknown[]>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as Record<string, unknown>;
    const values = new Array<unknown>(columns.length);
    for (let j = 0; j < columns.length; j++) values[j] = row[columns[j] as string];
    out[i] = values;
  }
  return out;
};

const field = (data: unknown, name: string): unknown => (typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[name] : undefined);

/**
 * `memberOf`: the group the event's device belonged to at that moment (from the fold), for events that name a
 * device but not its group (a driver bound, a device fd opened): the group column is then filled, not blank
 */
export const toEventRow = (r: RecordedEvent, memberOf: number | null = null): EventRow => {
  const e = r.event;
  const data: unknown = e.data;
  const group = field(data, 'group');
  const device = field(data, 'device');
  const outcome = field(data, 'outcome');
  const ok = field(outcome, 'ok');
  const errno = field(outcome, 'errno') ?? field(data, 'errno');
  return {
    event_id: e.id,
    global_position: r.globalPosition.toString(),
    stream_position: r.streamPosition.toString(),
    host: e.host,
    seq: String(e.seq),
    type: e.type,
    time: toDateTime64(BigInt(e.time)),
    source: e.source,
    group_id: typeof group === 'number' ? group : memberOf,
    device: typeof device === 'string' ? device : null,
    outcome_ok: typeof ok === 'boolean' ? (ok ? 1 : 0) : null,
    errno: typeof errno === 'string' ? errno : null,
    actor_pid: e.actor?.pid ?? null,
    actor_comm: e.actor?.comm ?? null,
    actor_vm: e.actor?.vm ?? null,
    actor_tenant: e.actor?.tenant ?? null,
    correlation_id: e.correlationId ?? null,
    labels: e.labels ?? [],
    data: JSON.stringify(e.data),
  };
};

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

export const toGroupStateRow = (g: GroupStateChange): GroupStateRow => ({
  host: g.host,
  group_id: g.group,
  global_position: g.at.globalPosition.toString(),
  event_id: g.at.eventId,
  event_type: g.eventType,
  time: toDateTime64(g.at.timeNs),
  state: g.state,
  owner: g.owner,
  domain: g.domain,
  owner_cnt: g.ownerCount,
  devices: g.devices,
  detail: g.detail,
});

export const toComplianceRow = (c: DailyCompliance): ComplianceRow => ({
  host: c.host,
  day: toDay(c.day),
  opened: c.opened,
  closed: c.closed,
  max_open: c.maxOpen,
  open_at_end: c.openAtEnd,
  events: c.events.toString(),
  version: c.version.toString(),
});

/** one table's share of a sink batch: the rows to insert and their column order */
export interface TableRows {
  readonly table: 'events' | 'violations' | 'group_states' | 'compliance_daily' | 'sink_checkpoints' | 'sink_quarantine';
  readonly columns: readonly string[];
  readonly rows: readonly object[];
  /** per row, in the same order: its key and position, should it have to go to quarantine */
  readonly sources: readonly { readonly key: string; readonly position: bigint }[];
}

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
  rows: rows.map((q) => toQuarantineRow(q, nowMs)),
  sources: rows.map((q) => ({ key: `${q.table}/${q.key}`, position: q.position })),
});

// converts each source row on its own: one that a column cannot hold is set aside, its neighbours are kept
const convert = <S, R extends object>(
  table: TableRows['table'],
  columns: readonly string[],
  sources: readonly S[],
  toRow: (s: S, index: number) => R,
  describe: (s: S) => { key: string; position: bigint },
  rejected: QuarantinedRow[],
): TableRows => {
  const rows: R[] = [];
  const kept: { key: string; position: bigint }[] = [];
  for (let i = 0; i < sources.length; i++) {
    const source = sources[i] as S;
    try {
      rows.push(toRow(source, i));
      kept.push(describe(source));
    } catch (error) {
      if (!(error instanceof RowRejectedError)) throw error;
      rejected.push({ table, ...describe(source), reason: error.message, row: toJson(source) });
    }
  }
  return { table, columns, rows, sources: kept };
};

/**
 * A batch as rows per table, in write order: the four tables, then the checkpoint last (a crash in between
 * replays the batch, which the keys absorb). Empty tables are left out.
 */
export const batchRows = (batch: SinkBatch, nowMs: number): BatchRows => {
  const rejected: QuarantinedRow[] = [];
  const checkpoint: CheckpointRow = { subscriber: batch.checkpoint.subscriber, position: batch.checkpoint.position.toString(), updated_at: String(nowMs) };
  const tables: TableRows[] = [
    convert('events', EVENT_COLUMNS, batch.events, (r, i) => toEventRow(r, batch.eventGroups?.[i] ?? null), (r) => ({ key: r.event.id, position: r.globalPosition }), rejected),
    convert('violations', VIOLATION_COLUMNS, batch.violations, toViolationRow, (v) => ({ key: `${v.key}@${v.version}`, position: v.version }), rejected),
    convert('group_states', GROUP_STATE_COLUMNS, batch.groupStates, toGroupStateRow, (g) => ({ key: `${g.host}/${g.group}@${g.at.globalPosition}`, position: g.at.globalPosition }), rejected),
    convert('compliance_daily', COMPLIANCE_COLUMNS, batch.compliance, toComplianceRow, (c) => ({ key: `${c.host}/${c.day}`, position: c.version }), rejected),
    { table: 'sink_checkpoints', columns: CHECKPOINT_COLUMNS, rows: [checkpoint], sources: [{ key: checkpoint.subscriber, position: batch.checkpoint.position }] },
  ];
  return { tables: tables.filter((t) => t.rows.length > 0), rejected };
};
