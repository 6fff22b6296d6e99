/**
 * The one definition of compliance (README, "Compliance: the definition"). Pure: the analytics queries
 * feed it rows read from ClickHouse, and the API, the dashboard, the CSV and `iommutrail report` all show
 * what it returns, never a figure of their own.
 *
 * A host-day is the part of one UTC day inside the period. Its status, first match wins:
 * 1. `not-assessed` / `no-iommu`: the host's last topology snapshot at the slice's end says it has no IOMMU;
 * 2. `not-assessed` / `no-data`: no event of the host at or before the slice's end;
 * 3. `non-compliant`: a finding (a violation of severity critical or warning, not an uncertainty rule)
 *    was open at some moment of the slice;
 * 4. `not-assessed` / `uncertain`: an uncertainty violation (events missing or out of order) was open in it;
 * 5. `not-assessed` / `stale`: the host's last event before the slice's end is older than `staleAfterNs`
 *    (the collector went quiet; there is no heartbeat event, so any event counts);
 * 6. otherwise `compliant`.
 * A host over the period: non-compliant if any of its days is; compliant if every day is; else not assessed
 * (with the reasons). The fleet's compliant share counts assessed hosts only; with none it is `null`, "no data".
 */

export const COMPLIANCE_STATUSES = ['compliant', 'non-compliant', 'not-assessed'] as const;
export type ComplianceStatus = (typeof COMPLIANCE_STATUSES)[number];
export const NOT_ASSESSED_REASONS = ['no-iommu', 'no-data', 'uncertain', 'stale'] as const;
export type NotAssessedReason = (typeof NOT_ASSESSED_REASONS)[number];

/** rules that say the record is incomplete, not that isolation broke: they make a day "not assessed" */
export const UNCERTAINTY_RULES: readonly string[] = ['sequence-gap', 'sequence-out-of-order'];
/** severities that count as a finding */
export const FINDING_SEVERITIES: readonly string[] = ['critical', 'warning'];

/** a day without any event is stale once the last one is this old @defaultValue 24 hours */
export const DEFAULT_STALE_AFTER_NS = 24n * 3_600_000_000_000n;
export const DAY_NS = 86_400_000_000_000n;
/** the longest period assessed at once (about three years of host-days) */
export const MAX_PERIOD_DAYS = 1100;

export interface ComplianceOptions {
  /** inclusive period; `fromNs` defaults to the first event of the scope */
  readonly fromNs: bigint;
  /** the period's end, also the "now" against which staleness is judged */
  readonly toNs: bigint;
  /** @defaultValue {@link DEFAULT_STALE_AFTER_NS} */
  readonly staleAfterNs?: bigint;
}

/** what the queries read per host: every event time is not needed, only per day its first and last */
export interface HostActivity {
  readonly host: string;
  /** UTC day (YYYY-MM-DD) → last event time that day (ns), days with events at or before the period's end */
  readonly lastEventByDay: ReadonlyMap<string, bigint>;
  /** topology snapshots: time (ns) and whether the host had an IOMMU, in time order */
  readonly iommuSnapshots: readonly { readonly timeNs: bigint; readonly iommu: boolean }[];
}

export interface ViolationSpan {
  readonly host: string;
  readonly rule: string;
  readonly severity: string;
  readonly openedNs: bigint;
  /** null: still open */
  readonly closedNs: bigint | null;
}

export interface HostDay {
  readonly host: string;
  readonly day: string;
  readonly status: ComplianceStatus;
  readonly reason: NotAssessedReason | null;
  readonly findings: number;
}

export interface HostCompliance {
  readonly host: string;
  readonly status: ComplianceStatus;
  /** not assessed: why (distinct reasons of its days, in {@link NOT_ASSESSED_REASONS} order) */
  readonly reasons: readonly NotAssessedReason[];
  readonly daysCompliant: number;
  readonly daysNonCompliant: number;
  readonly daysNotAssessed: number;
  /** findings open at some moment of the period */
  readonly findings: number;
}

export interface DayCompliance {
  readonly day: string;
  readonly compliant: number;
  readonly nonCompliant: number;
  readonly notAssessed: number;
  /** compliant / (compliant + non-compliant); null when no host was assessed that day ("no data") */
  readonly compliantShare: number | null;
}

export interface ComplianceHeadline {
  readonly hosts: number;
  readonly compliant: number;
  readonly nonCompliant: number;
  readonly notAssessed: number;
  readonly notAssessedByReason: Readonly<Record<NotAssessedReason, number>>;
  /** compliant / assessed hosts; null: nothing assessed ("no data") */
  readonly compliantShare: number | null;
  /** "no data" when the scope has no host at all */
  readonly noData: boolean;
}

export interface ComplianceResult {
  readonly fromNs: bigint;
  readonly toNs: bigint;
  readonly staleAfterNs: bigint;
  readonly headline: ComplianceHeadline;
  readonly hosts: readonly HostCompliance[];
  readonly days: readonly DayCompliance[];
  readonly hostDays: readonly HostDay[];
}

const dayOf = (ns: bigint): string => new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 10);
const dayStart = (day: string): bigint => BigInt(Date.parse(`${day}T00:00:00Z`)) * 1_000_000n;

/** the UTC days that overlap [fromNs, toNs] */
export const daysOf = (fromNs: bigint, toNs: bigint): string[] => {
  const out: string[] = [];
  if (toNs < fromNs) return out;
  for (let t = dayStart(dayOf(fromNs)); t <= toNs; t += DAY_NS) out.push(dayOf(t));
  return out;
};

const overlaps = (v: ViolationSpan, s: bigint, e: bigint): boolean => v.openedNs <= e && (v.closedNs === null || v.closedNs > s);

/** compliant / assessed (compliant + non-compliant); null when none was assessed ("no data") */
export const share = (compliant: number, nonCompliant: number): number | null =>
  compliant + nonCompliant === 0 ? null : compliant / (compliant + nonCompliant);

/** assesses every host of the scope for every day of the period (see the module comment for the rules) */
export const assessCompliance = (hosts: readonly HostActivity[], violations: readonly ViolationSpan[], options: ComplianceOptions): ComplianceResult => {
  const staleAfterNs = options.staleAfterNs ?? DEFAULT_STALE_AFTER_NS;
  const { fromNs, toNs } = options;
  const days = daysOf(fromNs, toNs);
  // each day's slice of the period, the same for every host: worked out once, not once per host-day
  const slices = days.map((day) => {
    const start = dayStart(day);
    return { day, s: start > fromNs ? start : fromNs, e: start + DAY_NS - 1n < toNs ? start + DAY_NS - 1n : toNs };
  });
  const byHost = new Map<string, ViolationSpan[]>();
  for (const v of violations) {
    const list = byHost.get(v.host);
    if (list === undefined) byHost.set(v.host, [v]);
    else list.push(v);
  }

  const hostDays: HostDay[] = [];
  const perHost: HostCompliance[] = [];
  for (const h of [...hosts].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))) {
    const spans = byHost.get(h.host) ?? [];
    const eventDays = [...h.lastEventByDay.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    const mine: HostDay[] = [];
    // days and slice ends ascend: one pass over the host's event days and snapshots
    let last: bigint | undefined;
    let nextDay = 0;
    let snapshot: boolean | undefined;
    let nextSnapshot = 0;
    for (const { day, s, e } of slices) {
      for (; nextDay < eventDays.length && (eventDays[nextDay]?.[0] ?? '') <= day; nextDay++) {
        const t = eventDays[nextDay]?.[1];
        if (t !== undefined && t <= e && (last === undefined || t > last)) last = t;
      }
      for (; nextSnapshot < h.iommuSnapshots.length && (h.iommuSnapshots[nextSnapshot]?.timeNs ?? 0n) <= e; nextSnapshot++) snapshot = h.iommuSnapshots[nextSnapshot]?.iommu;
      const open = spans.filter((v) => overlaps(v, s, e));
      const findings = open.filter((v) => FINDING_SEVERITIES.includes(v.severity) && !UNCERTAINTY_RULES.includes(v.rule)).length;
      const verdict = (status: ComplianceStatus, reason: NotAssessedReason | null): HostDay => ({ host: h.host, day, status, reason, findings });
      if (snapshot === false) mine.push(verdict('not-assessed', 'no-iommu'));
      else if (last === undefined) mine.push(verdict('not-assessed', 'no-data'));
      else if (findings > 0) mine.push(verdict('non-compliant', null));
      else if (open.some((v) => UNCERTAINTY_RULES.includes(v.rule))) mine.push(verdict('not-assessed', 'uncertain'));
      else if (e - last > staleAfterNs) mine.push(verdict('not-assessed', 'stale'));
      else mine.push(verdict('compliant', null));
    }
    hostDays.push(...mine);
    const count = (st: ComplianceStatus) => mine.filter((d) => d.status === st).length;
    const reasons = NOT_ASSESSED_REASONS.filter((r) => mine.some((d) => d.reason === r));
    const daysNonCompliant = count('non-compliant');
    const daysNotAssessed = count('not-assessed');
    perHost.push({
      host: h.host,
      status: daysNonCompliant > 0 ? 'non-compliant' : daysNotAssessed > 0 || mine.length === 0 ? 'not-assessed' : 'compliant',
      reasons: mine.length === 0 ? ['no-data'] : daysNonCompliant > 0 ? [] : reasons,
      daysCompliant: count('compliant'),
      daysNonCompliant,
      daysNotAssessed,
      findings: spans.filter((v) => overlaps(v, fromNs, toNs) && FINDING_SEVERITIES.includes(v.severity) && !UNCERTAINTY_RULES.includes(v.rule)).length,
    });
  }

  const perDay: DayCompliance[] = days.map((day) => {
    const of = hostDays.filter((d) => d.day === day);
    const compliant = of.filter((d) => d.status === 'compliant').length;
    const nonCompliant = of.filter((d) => d.status === 'non-compliant').length;
    return { day, compliant, nonCompliant, notAssessed: of.length - compliant - nonCompliant, compliantShare: share(compliant, nonCompliant) };
  });
  const compliant = perHost.filter((h) => h.status === 'compliant').length;
  const nonCompliant = perHost.filter((h) => h.status === 'non-compliant').length;
  const notAssessedByReason = Object.fromEntries(
    NOT_ASSESSED_REASONS.map((r) => [r, perHost.filter((h) => h.status === 'not-assessed' && h.reasons[0] === r).length]),
  ) as Record<NotAssessedReason, number>;
  return {
    fromNs,
    toNs,
    staleAfterNs,
    headline: {
      hosts: perHost.length,
      compliant,
      nonCompliant,
      notAssessed: perHost.length - compliant - nonCompliant,
      notAssessedByReason,
      compliantShare: share(compliant, nonCompliant),
      noData: perHost.length === 0,
    },
    hosts: perHost,
    days: perDay,
    hostDays,
  };
};
