import { Writable } from 'node:stream';
import type { IommuEventInput } from '../../schemas/index.js';
import { simulateFleet, type SimulateFleetOptions } from '../../services/simulator/simulateFleet.js';
import { writeJsonLines } from '../../services/simulator/sinks.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 10: the fleet simulator streaming JSON Lines (generation + serialisation, back-pressure honoured by a
 * null sink) beside the raw limit of JSON.stringify-ing the same, already built event objects. Above
 * SAMPLE_EVENTS the raw side cycles through the first SAMPLE_EVENTS events, so it never holds a large history in
 * memory. Heap after streaming beside heap before shows that memory stays flat whatever the count.
 */
const SAMPLE_EVENTS = 100_000;
const OPTIONS: SimulateFleetOptions = { seed: 42, hosts: 20, mistakeRate: 0.05 };

/** heap in use after a full collection when the runner exposes gc (bench/run.ts does) */
const heapMiB = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** a stream that accepts everything: the cost measured is the simulator's, not a disk's */
const nullSink = () =>
  new Writable({
    write(_chunk, _enc, callback) {
      callback();
    },
  });

export default defineFigure({
  name: 'simulator',
  issue: 10,
  sizes: { quick: [1e3, 1e4], full: [1e4, 1e5, 1e6, 1e7] },
  async measure(size, ctx) {
    const heapBefore = heapMiB();
    const t0 = performance.now();
    const { bytes } = await writeJsonLines(simulateFleet({ ...OPTIONS, events: size }), nullSink());
    const genSeconds = (performance.now() - t0) / 1000;
    const heapAfter = heapMiB();
    ctx.log(`${size} events, ${bytes} bytes of JSON Lines (${Math.round(bytes / size)} B/event) in ${genSeconds.toFixed(2)} s`);

    // raw limit: serialising the same objects, built beforehand (untimed)
    const sample: IommuEventInput[] = [...simulateFleet({ ...OPTIONS, events: Math.min(size, SAMPLE_EVENTS) })];
    let rawBytes = 0;
    const t1 = performance.now();
    for (let i = 0; i < size; i++) rawBytes += JSON.stringify(sample[i % sample.length]).length + 1;
    const rawSeconds = (performance.now() - t1) / 1000;

    const measurements: Measurement[] = [
      {
        label: 'simulate → JSON Lines (streamed)',
        value: size / genSeconds,
        unit: 'events/s',
        higherIsBetter: true,
        reference: { label: 'JSON.stringify of the same pre-built events', value: size / rawSeconds, kind: 'raw-limit' },
      },
      {
        label: 'JSON Lines output',
        value: bytes / 1e6 / genSeconds,
        unit: 'MB/s',
        higherIsBetter: true,
        reference: { label: 'JSON.stringify of the same pre-built events', value: rawBytes / 1e6 / rawSeconds, kind: 'raw-limit' },
      },
      {
        label: 'heap used after streaming',
        value: heapAfter,
        unit: 'MiB',
        higherIsBetter: false,
        reference: { label: 'heap used before streaming', value: heapBefore, kind: 'raw-limit' },
      },
    ];
    return measurements;
  },
});
