import { RULES, isRuleId } from '../../../projections/index.js';
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
 * Every violation occurrence once, as its latest version has it (host, rule, severity, opened_at, closed_at,
 * duration_ns), from the versions grouped by key rather than violations FINAL (issue 23, dash8: a few hosts scattered
 * over 1e5 read every granule, and FINAL merges all their rows; grouping drops the other hosts' rows first): an
 * occurrence opens once (a reopen is a new key), so every version has its opening time, and its closed row is its last,
 * so its close is the one close any version has. `where`: conditions on host, rule and severity only (the same in
 * every version of a key), or `true`.
 */
const violationSpansSql = (db: string, where: string): string =>
  `SELECT host, rule, severity, o AS opened_at, c AS closed_at, d AS duration_ns FROM (
      SELECT host, violation_key, rule, severity, any(opened_at) AS o, max(closed_at) AS c, max(duration_ns) AS d FROM ${db}.${SPANS_TABLE} WHERE ${where} GROUP BY host, violation_key, rule, severity
    )`;
/**
 * The violations the compliance reads are the findings and the uncertainty rules' (perHostSql): from the findings' copy
 * of the violations (migration 0017: their versions of severity critical and warning, a quarter of the rows at 1e7
 * events, issue 23, dash12) when the catalogue gives no uncertainty rule severity info, else from the violations
 */
const SPANS_TABLE = UNCERTAINTY_RULES.every((r) => isRuleId(r) && RULES[r].severity !== 'info') ? 'violation_findings' : 'violations';

/**
 * One row per host in scope (a host with a day up to the period's end): `hc`, the host's status: 1 non-compliant (a
 * day is), else the first reason code of its days (2 to 5, in NOT_ASSESSED_REASONS order), else 6 compliant;
 * `findings`, its findings overlapping the period; `compliant_days` and `non_compliant_days`, the indices k of its
 * days with status 0 and 1; `codes`, its days' distinct reason codes. `scope`: extra conditions on `host` ending in
 * AND (the host filter), or ''. `page`: only the hosts of one page in host order (the rest of the work is then done
 * for them alone).
 *
 * Worked out per (host, day k of the period) with plain aggregates rather than per host with arrays and lambdas
 * (issue 23: a join of every host's violations and a lambda per day per host cost twice the aggregation itself at
 * 1e5 hosts): each row of compliance_daily counts for the days from its own (at the earliest the first) to the last,
 * each violation for the days of its span, side by side as the rows of one aggregation. A (host, k) without a row of
 * its own days on or before k is "no data"; a day without any row at all is missing and counted as "no data" too.
 * compliance_daily's rows are read from compliance_days (migration 0018: its compliance columns with a fine index, so
 * that a few hosts scattered over the fleet read a few granules, not all), without FINAL: a day's versions not merged
 * yet only repeat it with an earlier last event and snapshot, which the maxima pass over.
 */
export const perHostSql = (db: string, scope: string, page?: { readonly offset: number; readonly limit: number }): string => {
  const slice = `least({dfNs:Int64} + (toInt64(k) + 1) * ${DAY_NS.toString()} - 1, {toNs:Int64})`;
  const relOf = (column: string): string => `toInt64(dateDiff('day', toDate({df:String}), ${column}))`;
  // a page: its hosts first (host order, read in the table's order), then the work for them alone: a page is a run
  // of hosts in the tables' order, so its first and last host bound it (a range the primary key cuts)
  const pageHosts =
    page === undefined
      ? ''
      : `(SELECT DISTINCT host FROM ${db}.compliance_days WHERE ${scope} day <= toDate(${AT('toNs')}) ORDER BY host LIMIT ${Math.max(1, Math.floor(page.limit))} OFFSET ${Math.max(0, Math.floor(page.offset))})`;
  const inPage = page === undefined ? '' : `host >= (SELECT min(host) FROM ${pageHosts}) AND host <= (SELECT max(host) FROM ${pageHosts}) AND`;
  const perDay = `SELECT host, k, toUInt8(multiIf(
        max(snap) % 2 = 1, 2,
        countIf(src = 0) = 0, 3,
        max(finding) = 1, 1,
        max(uncertain) = 1, 4,
        ${slice} - maxIf(last, src = 0) > {staleNs:Int64}, 5,
        0)) AS s, countIf(src = 0) > 0 AS own, sum(opened) AS findings
    FROM (
      SELECT host, toUInt8(0) AS src, arrayJoin(range(toUInt32(greatest(${relOf('day')}, 0)), {nd:UInt32})) AS k,
        toUnixTimestamp64Nano(assumeNotNull(last_event_at)) AS last, ${SNAP_CODE} AS snap, toUInt8(0) AS finding, toUInt8(0) AS uncertain, toUInt8(0) AS opened
      FROM ${db}.compliance_days WHERE ${scope} ${inPage} day <= toDate(${AT('toNs')})
      UNION ALL
      SELECT host, toUInt8(1) AS src, arrayJoin(range(toUInt32(lo), toUInt32(hi + 1))) AS k, toInt64(0) AS last, toUInt128(0) AS snap,
        f AS finding, 1 - f AS uncertain, toUInt8(f = 1 AND k = lo) AS opened
      FROM (
        SELECT host, greatest(${relOf('toDate(opened_at)')}, 0) AS lo,
          if(closed_at IS NULL, toInt64({nd:UInt32}) - 1, least(${relOf('toDate(subtractNanoseconds(assumeNotNull(closed_at), 1))')}, toInt64({nd:UInt32}) - 1)) AS hi,
          toUInt8(rule NOT IN {uncertain:Array(String)}) AS f
        FROM (${violationSpansSql(db, `${scope} ${inPage} true`)})
        WHERE opened_at <= ${AT('toNs')} AND (closed_at IS NULL OR closed_at > ${AT('fromNs')})
          AND (rule IN {uncertain:Array(String)} OR severity IN {findingSeverities:Array(String)})
      ) WHERE hi >= lo
    ) GROUP BY host, k`;
  // a day of the period without any row (before the host's first): no data
  const missing = `count() < {nd:UInt32}`;
  return `SELECT host, least(min(if(s = 0, 6, s)), if(${missing}, 3, 6)) AS hc, toUInt64(sum(findings)) AS findings,
      groupArrayIf(k, s = 0) AS compliant_days, groupArrayIf(k, s = 1) AS non_compliant_days,
      arraySort(arrayDistinct(arrayConcat(groupUniqArrayIf(s, s > 1), if(${missing}, [toUInt8(3)], emptyArrayUInt8())))) AS codes
    FROM (${perDay}) GROUP BY host HAVING max(own)`;
};

/**
 * the headline and the per-day counts over {@link perHostSql}: one row, whatever the number of hosts; with `firstHosts`
 * also the first that many hosts' rows in host order (`first_hosts`: host, hc, findings, days compliant and
 * non-compliant, reason codes), the per-host panel's first pages from the same pass
 */
export const overviewSql = (perHost: string, firstHosts = 0): string =>
  `SELECT hosts, compliant, non_compliant, ${NOT_ASSESSED_REASONS.map((r) => `\`${r}\``).join(', ')},${firstHosts > 0 ? ' first_hosts,' : ''}
    arrayMap(i -> toUInt64(arrayElement(c.2, indexOf(c.1, i))), range({nd:UInt32})) AS day_compliant,
    arrayMap(i -> toUInt64(arrayElement(n.2, indexOf(n.1, i))), range({nd:UInt32})) AS day_non_compliant
  FROM (
    SELECT count() AS hosts, countIf(hc = 6) AS compliant, countIf(hc = 1) AS non_compliant,
      ${NOT_ASSESSED_REASONS.map((r, i) => `countIf(hc = ${i + 2}) AS \`${r}\``).join(', ')},
      sumMap(compliant_days, arrayResize([toUInt64(1)], length(compliant_days), toUInt64(1))) AS c,
      sumMap(non_compliant_days, arrayResize([toUInt64(1)], length(non_compliant_days), toUInt64(1))) AS n${
        firstHosts > 0 ? `,
      groupArraySorted(${Math.floor(firstHosts)})((host, hc, findings, length(compliant_days), length(non_compliant_days), codes)) AS first_hosts` : ''
      }
    FROM (${perHost})
  )`;

/** one page of the per-host table (host order) over {@link perHostSql} with that page */
export const hostsPageSql = (perHost: string): string =>
  `SELECT host, hc, findings, length(compliant_days) AS days_compliant, length(non_compliant_days) AS days_non_compliant,
    {nd:UInt32} - days_compliant - days_non_compliant AS days_not_assessed, codes AS reason_codes
  FROM (${perHost}) ORDER BY host`;

/**
 * The per-host compliance kept in `host_compliance` (migration 0009) for the whole fleet over its default period (the
 * fleet's first event to its latest, no filter): a page load works out again only the hosts whose figures can have
 * changed since the rows were stored, then reads the headline, the per-day counts and its page from the stored rows
 * (one small row per host) instead of working out every host twice (issue 23). Exact, as {@link perHostSql} itself
 * for each host: a host's figures over a period depend only on its own rows and violations, and, of the period's end,
 * only through its last day's slice end (the stale check; the days before end at midnight). So between two loads of
 * the same period (same first day, days, start and limit) they change only for
 * - a host with a row newer than the sink's checkpoint at the last computation (every row up to a checkpoint is
 *   written before it: the sink writes the checkpoint last), and
 * - a host whose last event is stale at the new period end and was not at the old one.
 * A new period (the next day, an earlier first event, another limit) works out every host again, once.
 *
 * This is the name of a period in host_compliance: its first day, days, start and stale limit.
 */
export const periodKeyOf = (p: ComplianceSqlParams): string => `${p.df}|${p.nd}|${p.fromNs}|${p.staleNs}`;

/**
 * the stored period's checkpoint and end (the row with host ''), none before its first computation, with its overview
 * (migration 0010, stored by {@link storeOverviewSql}) when one is stored at that checkpoint and end ('' when none): one
 * statement for both, read on every load (issue 23: each statement costs chdb a few ms of CPU whatever it reads)
 */
export const storedPeriodSql = (db: string): string =>
  `SELECT toString(s.version) AS version, toString(s.to_ns) AS to_ns, o.figures AS figures
    FROM (SELECT version, to_ns FROM ${db}.host_compliance FINAL WHERE period = {period:String} AND host = '') AS s
    LEFT JOIN (SELECT version, to_ns, figures FROM ${db}.compliance_overview FINAL WHERE period = {period:String}) AS o ON o.version = s.version AND o.to_ns = s.to_ns`;

/**
 * The hosts whose figures can have changed since the period's rows were stored at checkpoint `since` and end
 * `staleFrom` + the limit: rows newer than the checkpoint, or a last event stale at the new end `staleTo` + the limit
 * and not at the old one. Row by row rather than per host: a host whose rows are not merged yet may be taken for an
 * older row's last event in the window, and working out a host again is never wrong; the row with its latest event is
 * always taken. Read first and bound to {@link perHostSql} as the scope `host IN {changed:Array(String)} AND` (a
 * subquery there is worked out once per use).
 */
export const changedHostsSql = (db: string): string =>
  `SELECT DISTINCT host FROM ${db}.host_activity WHERE version > {since:UInt64} OR (last_event_at >= ${AT('staleFrom')} AND last_event_at < ${AT('staleTo')})`;
const CHANGED_HOSTS_SCOPE = 'host IN {changed:Array(String)} AND';

/**
 * How many periods host_compliance keeps: a period begins each day for each stale limit in use, so without a bound
 * the table grew by a row per host every day. The periods refreshed most recently (their own row's checkpoint) stay,
 * enough for several dashboards with other limits not to evict each other; an evicted period that is loaded again is
 * worked out whole, as at its first load.
 */
export const KEPT_PERIODS = 8;

/** the periods beyond the KEPT_PERIODS refreshed last: their rows are dropped when a new period is stored */
export const evictedPeriodsSql = (db: string): string =>
  `SELECT period FROM ${db}.host_compliance WHERE host = '' GROUP BY period ORDER BY max(version) DESC, max(computed_at) DESC, period LIMIT 1000000 OFFSET ${KEPT_PERIODS}`;
/** an evicted period's two partitions (migration 0011: its whole computation's rows, and the rest), dropped whole */
export const dropPeriodSql = (db: string): string =>
  `ALTER TABLE ${db}.host_compliance DROP PARTITION ({evicted:String}, 1), DROP PARTITION ({evicted:String}, 0)`;

/** the columns a period's rows are stored with (`storeHostsSql`, and the changed hosts' rows written from here) */
export const HOST_COMPLIANCE_COLUMNS = ['period', 'host', 'version', 'to_ns', 'hc', 'findings', 'compliant_days', 'non_compliant_days', 'codes'] as const;

/**
 * stores the figures of every host at checkpoint `version`, then the period's own row: into the period's partition of
 * whole computations (`whole` = 1, migration 0011), which the engine does not merge with the changed hosts' rows
 */
export const storeHostsSql = (db: string): string =>
  `INSERT INTO ${db}.host_compliance (${HOST_COMPLIANCE_COLUMNS.join(', ')}, whole)
    SELECT {period:String}, host, {version:UInt64}, {toNs:Int64}, hc, findings, compliant_days, non_compliant_days, codes, 1 FROM (${perHostSql(db, '')})`;
export const storePeriodSql = (db: string): string =>
  `INSERT INTO ${db}.host_compliance (${HOST_COMPLIANCE_COLUMNS.join(', ')})
    SELECT {period:String}, '', {version:UInt64}, {toNs:Int64}, 0, 0, [], [], []`;

/** the stored per-host rows of the period, as {@link perHostSql} gives them; a page: in host order, `limit` from `offset` */
export const storedHostsSql = (db: string, page?: { readonly offset: number; readonly limit: number }): string =>
  `SELECT host, hc, findings, compliant_days, non_compliant_days, codes FROM ${db}.host_compliance FINAL WHERE period = {period:String} AND host != ''${
    page === undefined ? '' : ` ORDER BY host LIMIT ${Math.max(1, Math.floor(page.limit))} OFFSET ${Math.max(0, Math.floor(page.offset))}`
  }`;

/**
 * The overview of a stored period (migration 0010: {@link overviewSql}'s row over the period's stored rows, kept as
 * JSON) at the rows' checkpoint and period end, read with the period's state ({@link storedPeriodSql}). Every figure
 * of that row is a sum over the hosts of a term of the host's own row, so the overview after some hosts are worked out
 * again is the one before, plus their new rows' overview, minus their old rows' ({@link addOverviews}).
 */
export const storeOverviewSql = (db: string): string =>
  `INSERT INTO ${db}.compliance_overview (period, version, to_ns, figures) SELECT {period:String}, {version:UInt64}, {toNs:Int64}, {figures:String}`;
export const deleteOverviewsSql = (db: string): string => `DELETE FROM ${db}.compliance_overview WHERE period IN {evicted:Array(String)}`;

/** a host's stored figures as {@link storedHostsSql} gives them */
export interface StoredHostRow {
  readonly host: string;
  readonly hc: unknown;
  readonly findings: unknown;
  readonly compliant_days: readonly unknown[];
  readonly non_compliant_days: readonly unknown[];
  readonly codes: readonly unknown[];
}

/**
 * The changed hosts' stored rows of a period, one per host: the latest at checkpoint {upTo:UInt64} or before
 * (`row`, when `had`), and how many rows are newer (`newer`). Read before their new figures are stored (upTo: the
 * period's checkpoint, the rows its stored overview holds). The old rows are read first because the engine may merge
 * a (period, host)'s versions at any moment once a newer one is in: read after the insert, a merged host looked new
 * to the period and was counted twice in the overview (CI, session 11). A host with a newer row was refreshed by
 * another process meanwhile: its row up to the bound may have been merged into that one, or (migration 0011: a whole
 * computation's row is in a partition of its own) only its newer versions were, and the row found up to the bound is
 * an older one; either way the caller sums the overview over the rows again. argMaxIf rather than FINAL: each read of
 * a few hosts scattered over 1e5 reads most of the period's granules, and FINAL reads them all.
 */
export const changedRowsSql = (db: string): string =>
  `SELECT host, countIf(version > {upTo:UInt64}) AS newer, countIf(version <= {upTo:UInt64}) > 0 AS had,
      argMaxIf((hc, findings, compliant_days, non_compliant_days, codes), version, version <= {upTo:UInt64}) AS row
    FROM ${db}.host_compliance WHERE period = {period:String} AND host IN {changed:Array(String)} GROUP BY host`;

/**
 * The changed hosts' old rows ({@link changedRowsSql} up to {upTo:UInt64}, the period's checkpoint; `side` 'old') and
 * their figures worked out again ({@link perHostSql}; `side` 'new', `had` 1), in one statement: both are read before
 * the new rows are stored (written from here, with the period's own row), so the old ones are read before any merge
 * with the new ones, and the new ones are not read back (issue 23: each read of ~100 hosts scattered over 1e5 reads
 * most of the period's granules, ~20 ms of CPU).
 */
export const refreshedRowsSql = (db: string): string =>
  `SELECT 'old' AS side, host, newer, had, row.1 AS hc, row.2 AS findings, row.3 AS compliant_days, row.4 AS non_compliant_days, row.5 AS codes
    FROM (${changedRowsSql(db)})
  UNION ALL
  SELECT 'new' AS side, host, toUInt64(0) AS newer, true AS had, hc, findings, compliant_days, non_compliant_days, codes FROM (${perHostSql(db, CHANGED_HOSTS_SCOPE)})`;

/** {@link overviewSql}'s row over some hosts' rows, worked out here (a few changed hosts' rows, read once) */
export const overviewOfRows = (hosts: readonly StoredHostRow[], nd: number, firstHosts: number): Record<string, unknown> => {
  const out: Record<string, unknown> = { hosts: hosts.length, compliant: 0, non_compliant: 0, ...Object.fromEntries(NOT_ASSESSED_REASONS.map((r) => [r, 0])) };
  const c = new Array<number>(nd).fill(0);
  const n = new Array<number>(nd).fill(0);
  for (const h of hosts) {
    const hc = Number(h.hc);
    const name = hc === 6 ? 'compliant' : hc === 1 ? 'non_compliant' : NOT_ASSESSED_REASONS[hc - 2];
    if (name !== undefined) out[name] = Number(out[name]) + 1;
    for (const k of h.compliant_days) c[Number(k)] = (c[Number(k)] ?? 0) + 1;
    for (const k of h.non_compliant_days) n[Number(k)] = (n[Number(k)] ?? 0) + 1;
  }
  out.day_compliant = c;
  out.day_non_compliant = n;
  out.first_hosts = [...hosts]
    .sort((x, y) => Buffer.compare(Buffer.from(x.host), Buffer.from(y.host)))
    .slice(0, firstHosts)
    .map((h) => [h.host, h.hc, h.findings, h.compliant_days.length, h.non_compliant_days.length, h.codes]);
  return out;
};

/**
 * an {@link overviewSql} row plus `sign` × another: counts and per-day arrays term by term; with `firstHosts`, the
 * first that many of `a`'s first_hosts without the hosts `replaced` and `b`'s (in host order, by bytes as the engine's)
 */
export const addOverviews = (
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  sign: 1 | -1,
  first?: { readonly firstHosts: number; readonly replaced: readonly string[] },
): Record<string, unknown> => {
  const n = (v: unknown): number => Number(v ?? 0);
  const out: Record<string, unknown> = {};
  if (first !== undefined) {
    type Row = [string, ...unknown[]];
    const gone = new Set(first.replaced);
    const kept = ((a.first_hosts as Row[] | undefined) ?? []).filter((r) => !gone.has(r[0]));
    out.first_hosts = [...kept, ...((b.first_hosts as Row[] | undefined) ?? [])]
      .sort((x, y) => Buffer.compare(Buffer.from(x[0]), Buffer.from(y[0])))
      .slice(0, first.firstHosts);
  }
  for (const k of ['hosts', 'compliant', 'non_compliant', ...NOT_ASSESSED_REASONS]) out[k] = n(a[k]) + sign * n(b[k]);
  for (const k of ['day_compliant', 'day_non_compliant']) {
    const x = (a[k] as unknown[] | undefined) ?? [];
    const y = (b[k] as unknown[] | undefined) ?? [];
    out[k] = Array.from({ length: Math.max(x.length, y.length) }, (_v, i) => n(x[i]) + sign * n(y[i]));
  }
  return out;
};
