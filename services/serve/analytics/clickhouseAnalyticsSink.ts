import { UnavailableError } from '../../../schemas/index.js';
import type { AnalyticsSink } from './analyticsSink.js';
import { insertSettingsFor, type AnalyticsClient } from './clickhouseClient.js';
import { batchRows, columnsDocument, objectOf, rowAt, quarantineTable, type QuarantinedRow, type TableRows } from './rows.js';

export interface ClickHouseAnalyticsSinkOptions {
  /** rows per INSERT; larger batches are split @defaultValue 50_000 */
  readonly maxRowsPerInsert?: number;
}

const codeOf = (e: unknown): string => (typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '');

/** ClickHouse errors that a retry may fix (network, overload); everything else is a programmer/SQL error */
const isTransient = (e: unknown): boolean => ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '159', '209', '210', '242', '252', '999'].includes(codeOf(e));

/**
 * ClickHouse errors about a value in the rows sent (it cannot be parsed or does not fit its column): the
 * fault is in some row, not in the engine, so the rows are split to find it. Any other failure (disk full,
 * engine down, SQL) fails the write as a whole and nothing is quarantined.
 */
const ROW_ERROR_CODES = new Set([
  '6', // CANNOT_PARSE_TEXT
  '26', // CANNOT_PARSE_QUOTED_STRING
  '27', // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  '38', // CANNOT_PARSE_DATE
  '41', // CANNOT_PARSE_DATETIME
  '53', // TYPE_MISMATCH
  '69', // ARGUMENT_OUT_OF_BOUND
  '70', // CANNOT_CONVERT_TYPE
  '72', // CANNOT_PARSE_NUMBER
  '117', // INCORRECT_DATA
  '321', // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  '407', // DECIMAL_OVERFLOW
]);
const isRowError = (e: unknown): boolean => ROW_ERROR_CODES.has(codeOf(e));

const convertClickHouseError = (e: unknown, what: string): unknown =>
  isTransient(e) ? new UnavailableError(`ClickHouse unavailable while ${what}`, { cause: e }) : e;

const reasonOf = (e: unknown): string => `ClickHouse refused the row: ${codeOf(e) !== '' ? `code ${codeOf(e)}, ` : ''}${(e instanceof Error ? e.message : String(e)).slice(0, 500)}`;

/**
 * The ClickHouse adapter of {@link AnalyticsSink}. Deduplication is by ReplacingMergeTree natural keys
 * (event id, violation key + version, group + position, host + day + version), not by insert tokens:
 * a batch replayed after a crash may be cut at different boundaries, which a per-insert token would not
 * recognise, while per-row keys always collapse. Readers use FINAL.
 *
 * A row that cannot be written (a value outside its column, or one the engine refuses) goes to
 * `sink_quarantine` with the reason, and the rows around it are written: one bad row never blocks the
 * fleet. The write reports what it quarantined.
 */
export const getClickHouseAnalyticsSink = (ac: AnalyticsClient, options: ClickHouseAnalyticsSinkOptions = {}): AnalyticsSink => {
  const { client, database } = ac;
  const maxRows = options.maxRowsPerInsert ?? 50_000;
  const settings = insertSettingsFor(ac.target);

  // JSONColumnsWithMetadata, a column per array in one document (rows.ts `columnsDocument`): of the formats the client
  // encodes and chdb's connection can take (it joins the body into a UTF-8 string, so no RowBinary/Native), the
  // cheapest to make and to parse (0.85× JSONCompactEachRow's CPU, itself ~0.7× JSONEachRow's); a server takes it as well
  const insertRows = async (t: TableRows, from: number, to: number): Promise<void> => {
    await client.insert<unknown>({ table: `${database}.${t.table}`, format: 'JSONColumnsWithMetadata', columns: t.columns as [string, ...string[]], values: columnsDocument(t, from, to), clickhouse_settings: settings });
  };

  // inserts rows [from, to) of a table; a row error splits the range in halves until the bad rows stand alone
  const insertRange = async (t: TableRows, from: number, to: number, quarantined: QuarantinedRow[]): Promise<void> => {
    try {
      await insertRows(t, from, to);
    } catch (e) {
      if (!isRowError(e) || t.table === 'sink_quarantine' || t.table === 'sink_checkpoints') throw convertClickHouseError(e, `inserting into ${t.table}`);
      if (to - from === 1) {
        const source = t.sourceOf(from);
        quarantined.push({ table: t.table, key: source.key, position: source.position, reason: reasonOf(e), row: JSON.stringify(objectOf(t.columns, rowAt(t, from))) });
        return;
      }
      const mid = from + Math.floor((to - from) / 2);
      await insertRange(t, from, mid, quarantined);
      await insertRange(t, mid, to, quarantined);
    }
  };

  const insert = async (t: TableRows, quarantined: QuarantinedRow[]): Promise<void> => {
    for (let i = 0; i < t.length; i += maxRows) await insertRange(t, i, Math.min(t.length, i + maxRows), quarantined);
  };

  return {
    write: async (batch) => {
      const now = Date.now();
      const { tables, rejected } = batchRows(batch, now);
      const quarantined = [...rejected];
      const checkpoint = tables.at(-1);
      // the tables side by side (one's rows are encoded while the engine takes another's), then the quarantine, then
      // the checkpoint last: a crash in between replays the batch, which the keys absorb. Every insert ends before
      // the write fails, so a retry never runs beside one still going
      const done = await Promise.allSettled(tables.filter((t) => t !== checkpoint).map((t) => insert(t, quarantined)));
      const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      if (quarantined.length > 0) await insert(quarantineTable(quarantined, now), quarantined);
      if (checkpoint !== undefined) await insert(checkpoint, quarantined);
      return { quarantined };
    },
    readCheckpoint: async (subscriber) => {
      try {
        const rs = await client.query({
          query: `SELECT toString(max(position)) AS position FROM ${database}.sink_checkpoints WHERE subscriber = {subscriber:String}`,
          query_params: { subscriber },
          format: 'JSONEachRow',
        });
        const rows = await rs.json<{ position: string }>();
        return BigInt(rows[0]?.position ?? '0');
      } catch (e) {
        throw convertClickHouseError(e, 'reading the checkpoint');
      }
    },
    readCompliance: async (keys) => {
      if (keys.length === 0) return [];
      try {
        // by host and day sets (the table's key), then the exact pairs
        const rs = await client.query({
          query:
            `SELECT host, toString(day) AS day, opened, closed, max_open, open_at_end, toString(events) AS events, toString(version) AS version, ` +
            `if(first_event_at IS NULL, NULL, toString(toUnixTimestamp64Nano(assumeNotNull(first_event_at)))) AS first, ` +
            `if(last_event_at IS NULL, NULL, toString(toUnixTimestamp64Nano(assumeNotNull(last_event_at)))) AS last, ` +
            `if(snapshot_at IS NULL, NULL, toString(toUnixTimestamp64Nano(assumeNotNull(snapshot_at)))) AS snapshot, snapshot_iommu, facts ` +
            `FROM ${database}.compliance_daily FINAL WHERE host IN {hosts:Array(String)} AND toString(day) IN {days:Array(String)}`,
          query_params: { hosts: [...new Set(keys.map((k) => k.host))], days: [...new Set(keys.map((k) => k.day))] },
          format: 'JSONEachRow',
        });
        const wanted = new Set(keys.map((k) => `${k.host}/${k.day}`));
        const rows = await rs.json<{ host: string; day: string; opened: number; closed: number; max_open: number; open_at_end: number; events: string; version: string; first: string | null; last: string | null; snapshot: string | null; snapshot_iommu: unknown; facts: unknown }>();
        return rows
          .filter((r) => wanted.has(`${r.host}/${r.day}`))
          .map((r) => ({
            host: r.host,
            day: r.day,
            opened: Number(r.opened),
            closed: Number(r.closed),
            maxOpen: Number(r.max_open),
            openAtEnd: Number(r.open_at_end),
            events: BigInt(r.events),
            ...(r.first === null ? {} : { firstNs: BigInt(r.first) }),
            ...(r.last === null ? {} : { lastNs: BigInt(r.last) }),
            ...(r.snapshot === null ? {} : { snapshot: { timeNs: BigInt(r.snapshot), iommu: Number(r.snapshot_iommu) === 1 } }),
            ...(Number(r.facts) === 1 ? {} : { factsUnknown: true as const }),
            version: BigInt(r.version),
          }));
      } catch (e) {
        throw convertClickHouseError(e, 'reading daily compliance');
      }
    },
    close: async () => {
      // the client is shared (one chdb engine per process): its owner closes it
    },
  };
};
