import { DAY_NS, FINDING_SEVERITIES, NOT_ASSESSED_REASONS, UNCERTAINTY_RULES } from './compliance.js';

/**
 * The one definition of compliance (compliance.ts) as SQL over the hosts × days table (`compliance_daily`: per host
 * and UTC day with events, its last event and its last topology snapshot) and the violations, so that the
 * dashboard's headline, per-day and per-host figures read O(host-days) small rows, not the events, and never
 * carry a row per host out of the engine (issue 23). Only where it gives the same answer as compliance.ts over the
 * events (held equal by `complianceSql.int.spec.ts`):
 * - every row in scope has its times and facts (written after migration 0005);
 * - no host-day is cut by the period: on the period's first day no host has an event before its start, on its last
 *   day none after its end (always so for the default period, the scope's first event to the fleet's last);
 * - no rule or severity filter (they narrow the findings; the events path applies them).
 * The caller checks the first two ({@link cutDaysSql}) and falls back to compliance.ts otherwise.
 *
 * Per host and day of the period (index k from 0; `rel` of a row: its day minus the period's first day, negative
 * before the period), first match wins, as compliance.ts:
 * 2 no-iommu: the latest snapshot on or before the day found none; 3 no-data: no row on or before the day;
 * 1 non-compliant: a finding's day span covers the day; 4 uncertain: an uncertainty violation's does;
 * 5 stale: the slice's end minus the last event on or before the day exceeds the limit; 0 compliant.
 * A violation's day span: from the day it opened (at the earliest the first) to the day before its close instant
 * (closed at midnight, the next day is clear), to the last day while open.
 */

/** the parameters every statement below binds: the period's first day, its length in days, its ends, the limit */
export interface ComplianceSqlParams {
  readonly df: string;
  readonly nd: number;
  readonly dfNs: string;
  readonly fromNs: string;
  readonly toNs: string;
  readonly staleNs: string;
  readonly uncertain: readonly string[];
  readonly findingSeverities: readonly string[];
}

export const complianceSqlParams = (df: string, nd: number, fromNs: bigint, toNs: bigint, staleAfterNs: bigint): ComplianceSqlParams => ({
  df,
  nd,
  dfNs: (BigInt(Date.parse(`${df}T00:00:00Z`)) * 1_000_000n).toString(),
  fromNs: fromNs.toString(),
  toNs: toNs.toString(),
  staleNs: staleAfterNs.toString(),
  uncertain: UNCERTAINTY_RULES,
  findingSeverities: FINDING_SEVERITIES,
});

const AT = (param: string): string => `fromUnixTimestamp64Nano({${param}:Int64}, 'UTC')`;
/**
 * a day's snapshot as one comparable number, its time and whether it found an IOMMU (odd: none): the latest wins,
 * across days and across the versions of one day's row not merged yet (a later version has the later snapshot);
 * 0: no snapshot that day
 */
const SNAP_CODE = `if(snapshot_iommu IS NULL, toUInt128(0), toUInt128(toUnixTimestamp64Nano(assumeNotNull(snapshot_at))) * 2 + 1 + snapshot_iommu)`;

/**
 * Rows whose day the period cuts: a host with an event on the first day before the period's start, or on the last
 * day after its end. With any, the figures come from the events. `scope`: extra conditions (the host filter).
 */
export const cutDaysSql = (db: string, scope: string): string =>
  `SELECT count() AS cut FROM ${db}.compliance_daily WHERE ${scope} ((day = toDate(${AT('toNs')}) AND last_event_at > ${AT('toNs')}) OR (day = toDate(${AT('fromNs')}) AND first_event_at < ${AT('fromNs')}))`;

/**
 * One row per host in scope (a host with an event up to the period's end): `st`, its status code per day of the
 * period; `hc`, the host's: 1 non-compliant (a day is), else the first reason code of its days (2 to 5, in
 * NOT_ASSESSED_REASONS order), else 6 compliant; `findings`, its findings overlapping the period. `scope`: extra
 * conditions on `host` ending in AND (the host filter), or ''. `page`: only the hosts of one page in host order (the
 * rest of the work is then done for them alone).
 */
export const perHostSql = (db: string, scope: string, page?: { readonly offset: number; readonly limit: number }): string => {
  const slice = `least({dfNs:Int64} + (toInt64(k) + 1) * ${DAY_NS.toString()} - 1, {toNs:Int64})`;
  const st = `arrayMap(k -> toUInt8(multiIf(
      arrayMax(arrayConcat([toUInt128(0)], arrayFilter((c, r) -> r <= k, snaps, rel))) % 2 = 1, 2,
      NOT arrayExists(r -> r <= k, rel), 3,
      arrayExists(x -> x.3 = 1 AND x.1 <= k AND x.2 >= k, spans), 1,
      arrayExists(x -> x.3 = 0 AND x.1 <= k AND x.2 >= k, spans), 4,
      ${slice} - arrayMax(arrayFilter((l, r) -> r <= k, lasts, rel)) > {staleNs:Int64}, 5,
      0)), range({nd:UInt32}))`;
  const paged = page === undefined ? '' : ` ORDER BY host LIMIT ${Math.max(1, Math.floor(page.limit))} OFFSET ${Math.max(0, Math.floor(page.offset))}`;
  // compliance_daily without FINAL: a day's versions not merged yet only repeat it with an earlier last event and
  // snapshot, which the maxima below pass over; and aggregated in the table's order, a page reads its hosts alone
  return `SELECT host, st, findings, arrayMin(arrayMap(x -> if(x = 0, 6, x), st)) AS hc
    FROM (
      SELECT d.host AS host, ${st} AS st, v.findings AS findings
      FROM (
        SELECT host, groupArray(toInt64(dateDiff('day', toDate({df:String}), day))) AS rel,
          groupArray(toUnixTimestamp64Nano(assumeNotNull(last_event_at))) AS lasts, groupArray(${SNAP_CODE}) AS snaps
        FROM ${db}.compliance_daily WHERE ${scope} day <= toDate(${AT('toNs')}) GROUP BY host${paged}
      ) AS d
      LEFT JOIN (
        SELECT host, groupArray((lo, hi, finding)) AS spans, toUInt64(countIf(finding = 1)) AS findings
        FROM (
          SELECT host, greatest(toInt64(dateDiff('day', toDate({df:String}), toDate(opened_at))), 0) AS lo,
            if(closed_at IS NULL, toInt64({nd:UInt32}) - 1,
              least(toInt64(dateDiff('day', toDate({df:String}), toDate(subtractNanoseconds(assumeNotNull(closed_at), 1)))), toInt64({nd:UInt32}) - 1)) AS hi,
            toUInt8(rule NOT IN {uncertain:Array(String)}) AS finding
          FROM ${db}.violations FINAL
          WHERE ${scope} opened_at <= ${AT('toNs')} AND (closed_at IS NULL OR closed_at > ${AT('fromNs')})
            AND (rule IN {uncertain:Array(String)} OR severity IN {findingSeverities:Array(String)})
        ) GROUP BY host
      ) AS v ON d.host = v.host
    )`;
};

/** the headline and the per-day counts over {@link perHostSql}: one row, whatever the number of hosts */
export const overviewSql = (perHost: string): string =>
  `SELECT count() AS hosts, countIf(hc = 6) AS compliant, countIf(hc = 1) AS non_compliant,
    ${NOT_ASSESSED_REASONS.map((r, i) => `countIf(hc = ${i + 2}) AS \`${r}\``).join(', ')},
    sumForEach(arrayMap(s -> toUInt64(s = 0), st)) AS day_compliant, sumForEach(arrayMap(s -> toUInt64(s = 1), st)) AS day_non_compliant
  FROM (${perHost}) SETTINGS optimize_aggregation_in_order = 1`;

/** one page of the per-host table (host order) over {@link perHostSql} with that page */
export const hostsPageSql = (perHost: string): string =>
  `SELECT host, hc, findings, countEqual(st, 0) AS days_compliant, countEqual(st, 1) AS days_non_compliant,
    length(st) - days_compliant - days_non_compliant AS days_not_assessed,
    arrayFilter(x -> x > 1, arraySort(arrayDistinct(st))) AS reason_codes
  FROM (${perHost}) ORDER BY host SETTINGS optimize_aggregation_in_order = 1`;
