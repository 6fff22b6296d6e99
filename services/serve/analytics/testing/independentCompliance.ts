import type { FleetState, Violation } from '../../../../projections/index.js';
import type { RecordedEvent } from '../../../../schemas/index.js';

const HOUR = 3_600_000_000_000n;
const DAY = 24n * HOUR;
const isUncertain = (v: Violation): boolean => v.ruleId === 'sequence-gap' || v.ruleId === 'sequence-out-of-order';

/**
 * Compliance worked out here, apart from compliance.ts and the SQL, from the fold and the stored events: per
 * host and UTC day, no IOMMU → no data → a critical/warning finding open → uncertain → silent over 24 h →
 * compliant; a host is compliant when all its days are; the share counts assessed hosts.
 */
export const independentShare = (events: readonly RecordedEvent[], state: FleetState, scope: { host?: string; toNs?: bigint }): string => {
  const all = [...Object.values(state.violations.open), ...state.violations.closed];
  const inScope = events.filter((r) => scope.host === undefined || r.event.host === scope.host);
  if (inScope.length === 0) return 'no data';
  const fleetLast = events.reduce((m, r) => (BigInt(r.event.time) > m ? BigInt(r.event.time) : m), 0n);
  const to = scope.toNs ?? fleetLast;
  const from = inScope.reduce((m, r) => (BigInt(r.event.time) < m ? BigInt(r.event.time) : m), to);
  let compliant = 0;
  let nonCompliant = 0;
  for (const host of new Set(inScope.filter((r) => BigInt(r.event.time) <= to).map((r) => r.event.host))) {
    const mine = inScope.filter((r) => r.event.host === host);
    const verdicts: string[] = [];
    for (let day = (from / DAY) * DAY; day <= to; day += DAY) {
      const s = day > from ? day : from;
      const e = day + DAY - 1n < to ? day + DAY - 1n : to;
      const before = mine.filter((r) => BigInt(r.event.time) <= e);
      const snap = before.filter((r) => r.event.type === 'TopologySnapshotTaken').at(-1);
      const open = all.filter((v) => v.host === host && BigInt(v.opened.timeNs) <= e && (v.closed === undefined || BigInt(v.closed.timeNs) > s));
      const last = before.reduce((m, r) => (BigInt(r.event.time) > m ? BigInt(r.event.time) : m), -1n);
      if (snap !== undefined && (snap.event.data as { capabilities: { iommu: boolean } }).capabilities.iommu === false) verdicts.push('na');
      else if (last < 0n) verdicts.push('na');
      else if (open.some((v) => (v.severity === 'critical' || v.severity === 'warning') && !isUncertain(v))) verdicts.push('nc');
      else if (open.some(isUncertain) || e - last > DAY) verdicts.push('na');
      else verdicts.push('c');
    }
    if (verdicts.includes('nc')) nonCompliant++;
    else if (verdicts.length > 0 && verdicts.every((v) => v === 'c')) compliant++;
  }
  return compliant + nonCompliant === 0 ? 'no data' : `${((compliant / (compliant + nonCompliant)) * 100).toFixed(1)}%`;
};


/** the findings (critical/warning, sequence rules aside) of the fold, per rule, for the report's checks */
export const independentFindings = (state: FleetState): Violation[] =>
  [...Object.values(state.violations.open), ...state.violations.closed].filter((v) => (v.severity === 'critical' || v.severity === 'warning') && !isUncertain(v));
