import { formatScores, scoreFindings, type FindingScores } from '../../projections/index.js';
import { parseEvent, type IommuEvent, type IommuEventInput } from '../../schemas/index.js';
import { createFleetSimulation, type SimulateFleetOptions } from '../../services/simulator/simulateFleet.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 18: precision and recall of every violation rule that raises findings against the simulator's ground truth (the labels of
 * the mistakes it injected) on a large simulated fleet, folded as a stream. Each figure is a count beside its
 * same-run reference: true positives beside the findings raised (ratio = precision, target ≥ 0.99), labelled
 * mistakes found beside those labelled (ratio = recall, target 1.00); and the findings on a fleet of the same
 * size that made no mistakes, beside its event count (target 0).
 */
// operator mistakes and recorder defects (the impossible-upstream and sequence rules fire only on those)
const OPTIONS: SimulateFleetOptions = { seed: 18, hosts: 100, mistakeRate: 0.1, defectRate: 0.1 };

const parsed = function* (events: Iterable<IommuEventInput>): Generator<IommuEvent> {
  let i = 0;
  for (const input of events) {
    const r = parseEvent(input, `sim[${i++}]`);
    if (!r.ok) throw new Error(`the simulator produced an invalid event: ${r.error.message}`);
    yield r.value;
  }
};

const score = (options: SimulateFleetOptions): FindingScores => {
  const sim = createFleetSimulation(options);
  return scoreFindings(parsed(sim.events()), () => sim.labels());
};

export default defineFigure({
  name: 'precision-recall',
  issue: 18,
  sizes: { quick: [1e4], full: [1e6] },
  async measure(size, ctx) {
    const t0 = performance.now();
    const withMistakes = score({ ...OPTIONS, events: size });
    ctx.log(`${withMistakes.events} events with mistakes folded and scored in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const line of formatScores(withMistakes)) ctx.log(line);
    for (const v of withMistakes.unmatched.slice(0, 3)) ctx.log(`unmatched finding: ${v.ruleId} ${v.host} ${v.message}`);
    for (const l of withMistakes.missed.slice(0, 3)) ctx.log(`missed label: ${l.mistake} → ${l.ruleId} ${l.host} seq ${l.from.seq}`);
    const clean = score({ ...OPTIONS, events: size, mistakeRate: 0, defectRate: 0 });
    const cleanFindings = clean.perRule.reduce((n, r) => n + r.findings, 0);
    ctx.log(`fleet without mistakes: ${clean.events} events, ${cleanFindings} findings`);

    const measurements: Measurement[] = [];
    for (const r of withMistakes.perRule) {
      measurements.push(
        {
          label: `${r.ruleId}: findings matching a labelled mistake`,
          value: r.truePositives,
          unit: 'findings',
          higherIsBetter: true,
          reference: { label: 'findings raised (ratio = precision)', value: r.findings, kind: 'peer' },
          targetRatio: 0.99,
        },
        {
          label: `${r.ruleId}: labelled mistakes found`,
          value: r.labelsFound,
          unit: 'labels',
          higherIsBetter: true,
          reference: { label: 'mistakes labelled (ratio = recall)', value: r.labels, kind: 'peer' },
          targetRatio: 1,
        },
      );
    }
    measurements.push({
      label: 'findings on a fleet that made no mistakes',
      value: cleanFindings,
      unit: 'findings',
      higherIsBetter: false,
      reference: { label: 'events folded', value: clean.events, kind: 'raw-limit' },
      // zero findings: the ratio must stay below one finding per 1e9 events
      targetRatio: 1e-9,
    });
    return measurements;
  },
});
