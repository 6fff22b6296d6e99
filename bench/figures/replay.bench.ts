import { createFleetProjection } from '../../projections/index.js';
import { isModelEvent } from '../../projections/kernel/operations.js';
import type { ModelEvent, ModelState } from '../../projections/kernel/types.js';
import { upstreamDecider } from '../../projections/kernel/upstream.decider.js';
import { generateHistory } from '../../projections/testing/generateHistory.js';
import { replayHistory } from '../../replay/index.js';
import type { IommuEvent } from '../../schemas/index.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 4: replay throughput (operations/s) on the upstream model over a generated history, beside the
 * fleet projection's fold of the same events in the same run (the peer). Both are warmed first, then run
 * alternately a few rounds; the median round is kept. CPU time is measured beside wall clock: on a shared
 * machine wall-clock rates move with the neighbours' load, rates per CPU-second much less.
 */
const TARGET_OPS_PER_S = 500_000;

interface Round {
  readonly wallNs: number;
  readonly cpuUs: number;
}

const timed = async (work: () => unknown): Promise<Round> => {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await work();
  const wallNs = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  return { wallNs, cpuUs: c.user + c.system };
};

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const fold = (events: readonly IommuEvent[]): unknown => {
  const projection = createFleetProjection();
  let state = projection.initialState();
  for (const e of events) state = projection.evolve(state, e);
  return state;
};

/**
 * issue 16: the upstream model's `evolve` folded over the recorded events, one state per host, as the projection
 * folds it for every event once it derives its read model from the model (the recorded outcome's plan, applied)
 */
const foldModel = (events: readonly IommuEvent[]): unknown => {
  const hosts = new Map<string, ModelState>();
  for (const e of events) {
    if (!isModelEvent(e)) continue;
    let state = hosts.get(e.host);
    if (!state) hosts.set(e.host, (state = upstreamDecider.initialState()));
    upstreamDecider.evolve(state, e as unknown as ModelEvent);
  }
  return hosts;
};

const fmt = (n: number): string => Math.round(n).toLocaleString('en');

export default defineFigure({
  name: 'replay',
  issue: 4,
  sizes: { quick: [1e4], full: [1e5, 1e6] },
  async measure(size, ctx) {
    const events = generateHistory({ events: size, finishCycles: true });
    ctx.log(`history: ${events.length} events`);
    const warm = events.slice(0, Math.min(events.length, 100_000));
    await replayHistory({ variant: 'upstream', events: warm });
    fold(warm);
    foldModel(warm);

    const rounds = ctx.mode === 'quick' || size >= 1e6 ? 3 : 5;
    const replay: Round[] = [];
    const folds: Round[] = [];
    const modelFolds: Round[] = [];
    let ops = 0;
    for (let r = 0; r < rounds; r++) {
      replay.push(
        await timed(async () => {
          const report = await replayHistory({ variant: 'upstream', events });
          ops = report.summary.operations;
          if (r === 0 && (report.summary.divergences > 0 || report.summary.inputErrors > 0)) {
            ctx.log(`warning: ${report.summary.divergences} divergence(s), ${report.summary.inputErrors} input error(s) on upstream`);
          }
        }),
      );
      folds.push(await timed(() => fold(events)));
      modelFolds.push(await timed(() => foldModel(events)));
    }

    const replayOps = median(replay.map((x) => ops / (x.wallNs / 1e9)));
    const foldOps = median(folds.map((x) => ops / (x.wallNs / 1e9)));
    const replayCpuOps = median(replay.map((x) => ops / (x.cpuUs / 1e6)));
    const foldCpuOps = median(folds.map((x) => ops / (x.cpuUs / 1e6)));
    const modelCpuOps = median(modelFolds.map((x) => ops / (x.cpuUs / 1e6)));
    ctx.log(
      `replay ${fmt(replayOps)} ops/s (${fmt(replayCpuOps)} per CPU-second), projection fold of the same events ${fmt(foldOps)} ops/s ` +
        `(${fmt(foldCpuOps)} per CPU-second); median of ${rounds} rounds, ${ops} operations; target ${fmt(TARGET_OPS_PER_S)} ops/s`,
    );
    ctx.log(`upstream model fold (evolve of the recorded events) ${fmt(modelCpuOps)} per CPU-second: ${(foldCpuOps / modelCpuOps).toFixed(3)}× the projection fold's CPU`);
    const measurements: Measurement[] = [
      {
        label: 'replay on upstream (operations/s)',
        value: replayOps,
        unit: 'ops/s',
        higherIsBetter: true,
        reference: { label: 'fleet projection fold, same events (operations/s)', value: foldOps, kind: 'peer' },
      },
      {
        label: 'replay on upstream (operations per CPU-second)',
        value: replayCpuOps,
        unit: 'ops/CPU-s',
        higherIsBetter: true,
        reference: { label: 'fleet projection fold, same events (operations per CPU-second)', value: foldCpuOps, kind: 'peer' },
      },
      {
        label: 'upstream model fold, evolve of the recorded events (operations per CPU-second)',
        value: modelCpuOps,
        unit: 'ops/CPU-s',
        higherIsBetter: true,
        reference: { label: 'fleet projection fold, same events (operations per CPU-second)', value: foldCpuOps, kind: 'peer' },
      },
    ];
    return measurements;
  },
});
