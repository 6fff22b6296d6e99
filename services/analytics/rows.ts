import type { RecordedEvent } from '../../schemas/index.js';
import type { DailyCompliance, GroupStateChange, SinkBatch, ViolationRecord } from './analyticsSink.js';

// ClickHouse rows keep the columns' snake_case; 64-bit values travel as decimal strings (G13)

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
  'outcome_ok', 'errno', 'actor_comm', 'actor_vm', 'actor_tenant', 'correlation_id', 'labels', 'data',
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

export const toEventRow = (r: RecordedEvent): EventRow => {
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
    time: e.time,
    source: e.source,
    group_id: typeof group === 'number' ? group : null,
    device: typeof device === 'string' ? device : null,
    outcome_ok: typeof ok === 'boolean' ? (ok ? 1 : 0) : null,
    errno: typeof errno === 'string' ? errno : null,
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
  opened_at: v.opened.timeNs.toString(),
  opened_event_id: v.opened.eventId,
  opened_position: v.opened.globalPosition.toString(),
  closed_at: v.closed?.timeNs.toString() ?? null,
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
  time: g.at.timeNs.toString(),
  state: g.state,
  owner: g.owner,
  domain: g.domain,
  owner_cnt: g.ownerCount,
  devices: g.devices,
  detail: g.detail,
});

export const toComplianceRow = (c: DailyCompliance): ComplianceRow => ({
  host: c.host,
  day: c.day,
  opened: c.opened,
  closed: c.closed,
  max_open: c.maxOpen,
  open_at_end: c.openAtEnd,
  events: c.events.toString(),
  version: c.version.toString(),
});

/** one table's share of a sink batch: the rows to insert and their column order */
export interface TableRows {
  readonly table: 'events' | 'violations' | 'group_states' | 'compliance_daily' | 'sink_checkpoints';
  readonly columns: readonly string[];
  readonly rows: readonly object[];
}

/**
 * A batch as rows per table, in write order: the four tables, then the checkpoint last (a crash in between
 * replays the batch, which the keys absorb). Empty tables are left out.
 */
export const batchRows = (batch: SinkBatch, nowMs: number): TableRows[] => {
  const checkpoint: CheckpointRow = { subscriber: batch.checkpoint.subscriber, position: batch.checkpoint.position.toString(), updated_at: String(nowMs) };
  const tables: TableRows[] = [
    { table: 'events', columns: EVENT_COLUMNS, rows: batch.events.map(toEventRow) },
    { table: 'violations', columns: VIOLATION_COLUMNS, rows: batch.violations.map(toViolationRow) },
    { table: 'group_states', columns: GROUP_STATE_COLUMNS, rows: batch.groupStates.map(toGroupStateRow) },
    { table: 'compliance_daily', columns: COMPLIANCE_COLUMNS, rows: batch.compliance.map(toComplianceRow) },
    { table: 'sink_checkpoints', columns: CHECKPOINT_COLUMNS, rows: [checkpoint] },
  ];
  return tables.filter((t) => t.rows.length > 0);
};
