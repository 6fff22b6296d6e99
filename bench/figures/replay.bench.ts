import { createFleetProjection } from '../../projections/index.js';
import { generateHistory } from '../../projections/testing/generateHistory.js';
import { replayHistory } from '../../replay/index.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 4: replay throughput (operations/s) on the upstream model over a generated history, beside the
 * fleet projection's fold of the same events in the same run (the peer). Both are warmed first.
 */
const TARGET_OPS_PER_S = 500_000;

export default defineFigure({
  name: 'replay',
  issue: 4,
  sizes: { quick: [1e4], full: [1e5, 1e6] },
  async measure(size, ctx) {
    const events = generateHistory({ events: size, finishCycles: true });
    ctx.log(`history: ${events.length} events`);
    const warm = events.slice(0, Math.min(events.length, 100_000));
    await replayHistory({ variant: 'upstream', events: warm });

    const projection = createFleetProjection();
    let ws = projection.initialState();
    for (const e of warm) ws = projection.evolve(ws, e);

    const r0 = process.hrtime.bigint();
    const report = await replayHistory({ variant: 'upstream', events });
    const r1 = process.hrtime.bigint();
    let state = projection.initialState();
    for (const e of events) state = projection.evolve(state, e);
    const r2 = process.hrtime.bigint();

    const ops = report.summary.operations;
    if (report.summary.divergences > 0 || report.summary.inputErrors > 0) {
      ctx.log(`warning: ${report.summary.divergences} divergence(s), ${report.summary.inputErrors} input error(s) on upstream`);
    }
    const replayOps = ops / (Number(r1 - r0) / 1e9);
    const foldOps = ops / (Number(r2 - r1) / 1e9);
    ctx.log(`replay ${replayOps.toFixed(0)} ops/s, projection fold of the same events ${foldOps.toFixed(0)} ops/s (target ${TARGET_OPS_PER_S} ops/s)`);
    const measurement: Measurement = {
      label: 'replay on upstream (operations/s)',
      value: replayOps,
      unit: 'ops/s',
      higherIsBetter: true,
      reference: { label: 'fleet projection fold, same events (operations/s)', value: foldOps, kind: 'peer' },
    };
    return [measurement];
  },
});
