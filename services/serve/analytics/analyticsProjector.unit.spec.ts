import { describe, expect, it, vi } from 'vitest';
import { createFleetProjection } from '../../../projections/index.js';
import { createEventBuilder } from '../../../schemas/index.js';
import { getInMemoryEventStore } from '../../shared/eventStore/inMemory/inMemoryEventStore.js';
import { createAnalyticsProjector } from './analyticsProjector.js';
import type { AnalyticsSink, SinkBatch } from './analyticsSink.js';
import type { FleetFold } from './fleetAnalyzer.js';

/** a sink whose writes wait until the test lets them go, recording what was written and how many at once */
const gatedSink = (): { sink: AnalyticsSink; written: SinkBatch[]; started: number; maxAtOnce: number; release(): void } => {
  const gates: (() => void)[] = [];
  let active = 0;
  const s = {
    written: [] as SinkBatch[],
    started: 0,
    maxAtOnce: 0,
    release: () => gates.shift()?.(),
    sink: {
      write: async (batch: SinkBatch) => {
        s.started++;
        active++;
        s.maxAtOnce = Math.max(s.maxAtOnce, active);
        await new Promise<void>((resolve) => gates.push(resolve));
        active--;
        s.written.push(batch);
        return { quarantined: [] };
      },
      readCheckpoint: async () => 0n,
      close: async () => {},
    } satisfies AnalyticsSink,
  };
  return s;
};

describe('Analytics > projector', () => {
  it('sink #23: the next store batch is folded while the write of the one before runs, and the writes still go one at a time, in order', async () => {
    // given 6 events in batches of 2, a sink that holds each write until let go, and a fold that records what it folded
    const store = getInMemoryEventStore();
    const b = createEventBuilder({ host: 'h1' });
    await store.appendToStream('host-h1', Array.from({ length: 6 }, (_, i) => b.event('DriverBound', { device: `0000:0${i}:00.0`, driver: 'vfio-pci' })));
    const inner = createFleetProjection();
    const folded: bigint[] = [];
    const fold: FleetFold = {
      initialState: () => inner.initialState(),
      evolve: (state, event, position, opened) => {
        folded.push(position ?? -1n);
        return inner.evolve(state, event, position, opened);
      },
    };
    const gated = gatedSink();
    const projector = createAnalyticsProjector({ store, sink: gated.sink, fold }, { batchSize: 2 });
    await projector.start();
    // when the first write is held: the second batch is folded meanwhile, its write waits for the first
    await vi.waitFor(() => expect(folded).toContain(4n), { timeout: 5_000 });
    expect(gated.started).toBe(1);
    expect(gated.written).toHaveLength(0);
    // then each write let go lets the next start; once caught up every batch is written, in order, one at a time
    const caughtUp = projector.caughtUp();
    for (let i = 0; i < 3; i++) {
      await vi.waitFor(() => expect(gated.started).toBe(i + 1), { timeout: 5_000 });
      gated.release();
    }
    await caughtUp;
    expect(gated.written.map((w) => w.checkpoint.position)).toEqual([2n, 4n, 6n]);
    expect(gated.maxAtOnce).toBe(1);
    expect(projector.position()).toBe(6n);
    await projector.stop();
    await store.close();
  });
});
