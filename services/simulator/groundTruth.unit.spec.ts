import { describe, expect, it } from 'vitest';
import { isFinding, RULES, RULE_IDS, scoreFindings, type MistakeLabel } from '../../projections/index.js';
import { parseEvent, type IommuEvent } from '../../schemas/index.js';
import { RULE_OF_MISTAKE, RULES_NOT_SIMULATED } from './groundTruth.js';
import { MISTAKES, RECORDER_DEFECTS } from './hostLife.js';
import { createFleetSimulation, type SimulateFleetOptions } from './simulateFleet.js';

/** a simulated fleet's parsed events and its ground-truth labels */
const run = (options: SimulateFleetOptions): { events: IommuEvent[]; labels: MistakeLabel[] } => {
  const sim = createFleetSimulation(options);
  const events: IommuEvent[] = [];
  for (const input of sim.events()) {
    const r = parseEvent(input, 'sim');
    if (!r.ok) throw new Error(r.error.message);
    events.push(r.value);
  }
  return { events, labels: sim.labels() };
};

describe('simulator > ground truth (issue 18)', () => {
  const fleet = run({ seed: 18, hosts: 30, events: 60_000, mistakeRate: 0.25, defectRate: 0.25 });
  /** the rules whose records are findings (severity warning or critical): every one the simulator can produce must be measured */
  const findingRules = RULE_IDS.filter((id) => RULES[id].severity !== 'info' && !Object.hasOwn(RULES_NOT_SIMULATED, id));
  const hostWide = new Set(['sequence-gap', 'sequence-out-of-order']);

  it('trust #9: every injected mistake is labelled with its rule, host, group, device and events, starting at an event that carries its truth:mistake label', () => {
    // given a fleet with mistakes of every kind
    expect(new Set(fleet.labels.map((l) => l.mistake))).toEqual(new Set(MISTAKES));
    const byId = new Map<string, IommuEvent>(fleet.events.map((e) => [e.id, e]));
    for (const l of fleet.labels) {
      // then each label names the rule its mistake must fire, and real events of its host in order
      expect(l.ruleId).toBe(RULE_OF_MISTAKE[l.mistake as keyof typeof RULE_OF_MISTAKE]);
      const from = byId.get(l.from.eventId)!;
      expect([from.host, from.seq]).toEqual([l.host, l.from.seq]);
      expect(from.labels ?? []).toContain(`truth:mistake:${l.mistake}`);
      // a sequence defect is about the host's record, any other about a group
      expect(l.group === null, l.mistake).toBe(hostWide.has(l.ruleId));
      if (l.until !== null) {
        expect(byId.get(l.until.eventId)?.seq).toBe(l.until.seq);
        // a reordered delivery ends at the late event, whose seq is the lower one
        if (l.mistake === 'delivery-reordered') expect(l.until.seq).toBeLessThan(l.from.seq);
        else expect(l.until.seq).toBeGreaterThanOrEqual(l.from.seq);
      }
    }
  });

  it('trust #10: against the labels, every rule the simulator injects has recall 1.00 and precision ≥ 0.99', () => {
    // when the fleet's history is folded and its findings scored against the labels
    const scores = scoreFindings(fleet.events, fleet.labels);
    // then every labelled mistake was found, and (nearly) every finding is a labelled mistake
    expect(scores.missed).toEqual([]);
    expect(scores.unmatched.map((v) => `${v.ruleId} ${v.host}: ${v.message}`)).toEqual([]);
    expect(new Set(scores.perRule.map((r) => r.ruleId))).toEqual(new Set(Object.values(RULE_OF_MISTAKE)));
    for (const r of scores.perRule) {
      expect(r.recall, r.ruleId).toBe(1);
      expect(r.precision, r.ruleId).toBeGreaterThanOrEqual(0.99);
    }
  });

  it('trust #16: every rule of the catalogue that raises findings has labelled mistakes (operator mistakes, or recorder defects for the impossible-upstream ones), each scored with recall 1.00 and precision ≥ 0.99', () => {
    // when the fleet with operator mistakes and recorder defects is scored
    const scores = scoreFindings(fleet.events, fleet.labels);
    // then every finding rule is measured, on labels of its own
    expect(scores.perRule.map((r) => r.ruleId).sort()).toEqual([...findingRules].sort());
    for (const r of scores.perRule) {
      expect(r.labels, r.ruleId).toBeGreaterThan(0);
      expect({ rule: r.ruleId, recall: r.recall }).toEqual({ rule: r.ruleId, recall: 1 });
      expect(r.precision, r.ruleId).toBeGreaterThanOrEqual(0.99);
    }
    // and a rule listed as not simulated is a finding rule no mistake labels (a simulated one leaves the list)
    for (const id of Object.keys(RULES_NOT_SIMULATED) as (keyof typeof RULES)[]) {
      expect(RULES[id].severity, id).not.toBe('info');
      expect(Object.values(RULE_OF_MISTAKE), id).not.toContain(id);
    }
    // and the impossible-upstream rules fire only on recorder defects
    const defects = new Set<string>(RECORDER_DEFECTS);
    for (const l of fleet.labels) if (RULES[l.ruleId].impossibleUpstream) expect(defects.has(l.mistake), l.mistake).toBe(true);
  });

  it('trust #19: at a high defect rate, an unrecorded driver change is never healed by a resync snapshot before the bind it is labelled from (every label still found)', () => {
    // given many recorder defects on each host, sequence resyncs among them
    const dense = run({ seed: 18, hosts: 30, events: 60_000, mistakeRate: 0.25, defectRate: 0.5 });
    expect(dense.labels.filter((l) => l.mistake === 'driver-change-unrecorded').length).toBeGreaterThan(20);
    // then no label is missed, and every finding is labelled
    const scores = scoreFindings(dense.events, dense.labels);
    expect(scores.missed.map((l) => `${l.mistake} ${l.host} seq ${l.from.seq}`)).toEqual([]);
    expect(scores.unmatched.map((v) => `${v.ruleId} ${v.host}: ${v.message}`)).toEqual([]);
  });

  it('trust #11: a fleet that made no mistakes has no label and no finding (translations of one owner are information only)', () => {
    // given a fleet without operator mistakes
    const clean = run({ seed: 18, hosts: 30, events: 40_000, mistakeRate: 0, defectRate: 0 });
    expect(clean.labels).toEqual([]);
    // when it is folded
    const scores = scoreFindings(clean.events, clean.labels);
    // then nothing is a finding
    expect(scores.unmatched.map((v) => `${v.ruleId} ${v.host}: ${v.message}`)).toEqual([]);
    expect(scores.perRule).toEqual([]);
    expect(isFinding({ severity: 'info' })).toBe(false);
  });

  it('a stream cut short keeps only the labels whose first event came out, and ends the ones still under way', () => {
    const sim = createFleetSimulation({ seed: 18, hosts: 30, events: 60_000, mistakeRate: 0.25, defectRate: 0.25 });
    const ids = new Set<string>();
    let n = 0;
    for (const e of sim.events()) {
      ids.add((e as { id: string }).id);
      if (++n === 20_000) break;
    }
    const labels = sim.labels();
    expect(labels.length).toBeGreaterThan(0);
    for (const l of labels) {
      expect(ids.has(l.from.eventId)).toBe(true);
      if (l.until !== null) expect(ids.has(l.until.eventId)).toBe(true);
    }
  });
});
