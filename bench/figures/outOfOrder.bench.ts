import { createFleetProjection } from '../../projections/index.js';
import { swapChunks } from '../../projections/testing/swapChunks.js';
import type { IommuEvent, RecordedEvent } from '../../schemas/index.js';
import { createFleetAnalyzer } from '../../services/serve/analytics/fleetAnalyzer.js';
import { simulateFleet } from '../../services/simulator/simulateFleet.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Hardening #1: the analytics fold (fleet projection + the analyzer's rows, what the ClickHouse sink runs on
 * the main thread per event) when each host's events arrive in 500-event chunks with every pair of chunks
 * swapped (each later chunk waits in its host's reorder buffer until the earlier one fills the gap), beside
 * the same events in order, in the same run. Folded in the sink's store batches; rows are produced and
 * dropped (no engine), so the figure is the fold's own cost. Aim: the swapped delivery at 0.8× or better.
 * The fleet projection alone over both deliveries and the analyzer's own µs per event (the difference)
 * say which part a shortfall comes from.
 */
const CHUNK = 500;
const BATCH = 10_000;
const ROUNDS = 3;

const recorded = (events: readonly IommuEvent[]): RecordedEvent[] =>
  events.map((event, i) => ({ event, streamName: `host-${event.host}`, streamPosition: BigInt(i), globalPosition: BigInt(i + 1) }));

/** folds the delivery in store batches; returns events/s and the violations left open */
const fold = (delivery: readonly RecordedEvent[]): { rate: number; open: number } => {
  const analyzer = createFleetAnalyzer(createFleetProjection());
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < delivery.length; i += BATCH) analyzer.apply(delivery.slice(i, i + BATCH));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rate: delivery.length / s, open: Object.keys(analyzer.state().violations.open).length };
};

/** the fleet projection alone over the same delivery (its share of the fold above), events/s */
const projectionOnly = (delivery: readonly RecordedEvent[]): number => {
  const projection = createFleetProjection();
  let state = projection.initialState();
  const t0 = process.hrtime.bigint();
  for (const r of delivery) state = projection.evolve(state, r.event, r.globalPosition);
  return delivery.length / (Number(process.hrtime.bigint() - t0) / 1e9);
};

/** µs per event the analyzer adds on top of the projection */
const analyzerUs = (full: number, projection: number): number => Math.max(0, (1 / full - 1 / projection) * 1e6);

export default defineFigure({
  name: 'out-of-order',
  issue: 1,
  sizes: { quick: [2e4], full: [2e5, 1e6] },
  async measure(size, ctx) {
    // the simulator's events are valid by construction: no parse in a benchmark loop
    const events = [...simulateFleet({ events: size, hosts: Math.max(4, Math.round(size / 50_000)), seed: 7, mistakeRate: 0.1 })] as unknown as IommuEvent[];
    const inOrder = recorded(events);
    const swapped = recorded(swapChunks(events, CHUNK));
    // alternate the two deliveries and keep each one's best round: the machine is shared
    const best = { inOrder: 0, swapped: 0, projectionInOrder: 0, projectionSwapped: 0 };
    let open = { inOrder: 0, swapped: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const a = fold(inOrder);
      const b = fold(swapped);
      best.inOrder = Math.max(best.inOrder, a.rate);
      best.swapped = Math.max(best.swapped, b.rate);
      best.projectionInOrder = Math.max(best.projectionInOrder, projectionOnly(inOrder));
      best.projectionSwapped = Math.max(best.projectionSwapped, projectionOnly(swapped));
      open = { inOrder: a.open, swapped: b.open };
    }
    const ownInOrder = analyzerUs(best.inOrder, best.projectionInOrder);
    const ownSwapped = analyzerUs(best.swapped, best.projectionSwapped);
    const rate = (n: number): string => Math.round(n).toLocaleString('en');
    ctx.log(
      `${size} events: analytics fold ${rate(best.swapped)} events/s with pairs of ${CHUNK}-event chunks swapped ` +
        `(${open.swapped} violations left open) vs ${rate(best.inOrder)} events/s in order (${open.inOrder} open): ${(best.swapped / best.inOrder).toFixed(2)}×; ` +
        `of which the fleet projection alone ${rate(best.projectionSwapped)} vs ${rate(best.projectionInOrder)} events/s (${(best.projectionSwapped / best.projectionInOrder).toFixed(2)}×) ` +
        `and the analyzer's own rows ${ownSwapped.toFixed(2)} vs ${ownInOrder.toFixed(2)} µs/event`,
    );
    const measurements: Measurement[] = [
      {
        label: `analytics fold (projection + rows), pairs of ${CHUNK}-event chunks swapped`,
        value: best.swapped,
        unit: 'events/s',
        higherIsBetter: true,
        reference: { label: 'the same events in order', value: best.inOrder, kind: 'peer' },
        targetRatio: 0.8,
      },
      {
        label: `fleet projection alone, pairs of ${CHUNK}-event chunks swapped`,
        value: best.projectionSwapped,
        unit: 'events/s',
        higherIsBetter: true,
        reference: { label: 'the same events in order', value: best.projectionInOrder, kind: 'peer' },
        targetRatio: 0.8,
      },
      {
        label: `the analyzer's own rows per event (fold minus projection), chunks swapped`,
        value: ownSwapped,
        unit: 'µs',
        higherIsBetter: false,
        reference: { label: 'the same, events in order', value: ownInOrder, kind: 'peer' },
      },
    ];
    return measurements;
  },
});
