/**
 * Ground truth and measurement (issue 18): the mistakes a history is known to contain (labelled by whoever
 * made them: the simulator, the kernel-oracle scenarios), and per-rule precision and recall of the findings
 * the fleet projection raises on that history.
 */
import type { IommuEvent } from '../schemas/index.js';
import { createFleetProjection, type FleetProjectionOptions } from './fleetProjection.js';
import { isFinding, RULE_IDS, type RuleId } from './rules.js';
import type { Violation } from './types.js';

/** an event of a host's history, enough to find it: its id and its seq */
export interface LabelEventRef {
  readonly eventId: string;
  readonly seq: number;
}

/**
 * One injected mistake: the rule that must fire on it, where (host, group, device), and from which event
 * (the one that makes the condition true) until which (the one that ends it; null while it lasts).
 */
export interface MistakeLabel {
  /** what was done wrong, e.g. `audio-left-on-kernel-driver` */
  readonly mistake: string;
  readonly ruleId: RuleId;
  readonly host: string;
  readonly group: number | null;
  readonly device: string | null;
  readonly from: LabelEventRef;
  readonly until: LabelEventRef | null;
}

export interface RuleScore {
  readonly ruleId: RuleId;
  /** labelled mistakes of this rule */
  readonly labels: number;
  /** findings the projection raised under this rule */
  readonly findings: number;
  /** findings that match a label */
  readonly truePositives: number;
  /** labels that some finding matches */
  readonly labelsFound: number;
  /** truePositives / findings; null without findings */
  readonly precision: number | null;
  /** labelsFound / labels; null without labels */
  readonly recall: number | null;
}

export interface FindingScores {
  /** every rule with a label or a finding, in catalogue order */
  readonly perRule: readonly RuleScore[];
  /** findings that match no label (false positives), for diagnosis */
  readonly unmatched: readonly Violation[];
  /** labels no finding matched (misses) */
  readonly missed: readonly MistakeLabel[];
  readonly events: number;
}

/**
 * A finding matches a label when the rule, host and group agree (the device too when both name one) and the
 * finding was opened between the label's first event and its last (inclusive, by the host's seq). A delivery
 * defect's last event may carry the lower seq (a late event that fills the gap the first one opened): the
 * window is then the first event itself.
 */
export const matchesLabel = (v: Violation, l: MistakeLabel): boolean =>
  v.ruleId === l.ruleId &&
  v.host === l.host &&
  (l.group === null || v.group === l.group) &&
  (l.device === null || v.device === undefined || v.device === l.device) &&
  v.opened.seq >= l.from.seq &&
  (l.until === null || v.opened.seq <= Math.max(l.from.seq, l.until.seq));

/** scores findings already collected (every violation opened on the history) against the labels */
export const scoreAgainstLabels = (opened: readonly Violation[], labels: readonly MistakeLabel[], events = 0): FindingScores => {
  const findings = opened.filter(isFinding);
  // candidates by rule and host: a fleet has many hosts and few labels each
  const byKey = new Map<string, MistakeLabel[]>();
  for (const l of labels) {
    const k = `${l.ruleId}|${l.host}`;
    (byKey.get(k) ?? byKey.set(k, []).get(k)!).push(l);
  }
  const found = new Set<MistakeLabel>();
  const unmatched: Violation[] = [];
  const tp = new Map<string, number>();
  const nFindings = new Map<string, number>();
  for (const v of findings) {
    nFindings.set(v.ruleId, (nFindings.get(v.ruleId) ?? 0) + 1);
    const hits = (byKey.get(`${v.ruleId}|${v.host}`) ?? []).filter((l) => matchesLabel(v, l));
    if (hits.length === 0) unmatched.push(v);
    else {
      tp.set(v.ruleId, (tp.get(v.ruleId) ?? 0) + 1);
      for (const l of hits) found.add(l);
    }
  }
  const perRule: RuleScore[] = [];
  for (const ruleId of RULE_IDS) {
    const ls = labels.filter((l) => l.ruleId === ruleId);
    const f = nFindings.get(ruleId) ?? 0;
    if (ls.length === 0 && f === 0) continue;
    const t = tp.get(ruleId) ?? 0;
    const labelsFound = ls.filter((l) => found.has(l)).length;
    perRule.push({
      ruleId,
      labels: ls.length,
      findings: f,
      truePositives: t,
      labelsFound,
      precision: f === 0 ? null : t / f,
      recall: ls.length === 0 ? null : labelsFound / ls.length,
    });
  }
  return { perRule, unmatched, missed: labels.filter((l) => !found.has(l)), events };
};

/**
 * Folds a recorded history with the fleet projection and scores its findings (violations of severity warning
 * or critical) against the labelled mistakes: per-rule precision and recall. For the simulator and the
 * kernel-oracle runs alike. `labels` may be a function, called after the history was read (a stream whose
 * labels come with it). Memory: the findings, not the history.
 */
export const scoreFindings = (
  history: Iterable<IommuEvent>,
  labels: readonly MistakeLabel[] | (() => readonly MistakeLabel[]),
  options: FleetProjectionOptions = {},
): FindingScores => {
  const projection = createFleetProjection(options);
  let state = projection.initialState();
  const opened: Violation[] = [];
  const step: Violation[] = [];
  let events = 0;
  for (const e of history) {
    state = projection.evolve(state, e, undefined, step);
    for (const v of step) if (isFinding(v)) opened.push(v);
    step.length = 0;
    events++;
  }
  // a streamed history (the simulator's) knows its labels only once it has been read
  return scoreAgainstLabels(opened, typeof labels === 'function' ? labels() : labels, events);
};

/** the per-rule table as text lines (for reports and the bench log) */
export const formatScores = (s: FindingScores): string[] => [
  'rule | labels | findings | true positives | precision | recall',
  ...s.perRule.map(
    (r) =>
      `${r.ruleId} | ${r.labels} | ${r.findings} | ${r.truePositives} | ${r.precision === null ? '–' : r.precision.toFixed(3)} | ${r.recall === null ? '–' : r.recall.toFixed(3)}`,
  ),
];
