import { Writable } from 'node:stream';
import type { IommuEventInput } from '../../schemas/index.js';
import { createFleetSimulation, FLEET_ACTIVITY_MIX, type SimulateFleetOptions } from '../../services/simulator/simulateFleet.js';
import { writeJsonLines } from '../../services/simulator/sinks.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issues 10 and 23: the fleet simulator's own rate and memory at a size given in hosts (20, 1e4, 1e5), a realistic
 * fleet (FLEET_ACTIVITY_MIX: 70% idle, 25% busy, 5% heavy), streaming JSON Lines into a null sink (back-pressure
 * honoured), at EVENTS_PER_HOST events per host and at least MIN_EVENTS (SIMULATOR_BENCH_EVENTS overrides the
 * count: the one 1e7-event run). Rates are given in wall time and in CPU time (`process.cpuUsage`): on a machine
 * shared with other work the wall-clock rate measures the load as much as the simulator (issue 23: the 1,762
 * events/s once measured at 1e5 hosts at a load of 17-30 is about 27k events per CPU-second). References,
 * measured in the same run:
 * - rate: JSON.stringify of a sample of the same events (every k-th one, kept while streaming), cycled to the
 *   same count: what serialising this output costs at the least (wall and CPU);
 * - rate per host count (issue 23): the same fleet mix over PEER_HOSTS hosts, at most PEER_EVENTS events, per
 *   CPU-second, the mean of a run before the fleet and one after: what the hosts themselves cost;
 * - peak RSS: RSS before the run;
 * - heap per host: the same fleet at up to REFERENCE_HOSTS hosts with every host kept in memory (`residentQuiet:
 *   Infinity`, the simulator before issue 23), per host.
 */
const EVENTS_PER_HOST = 10;
const MIN_EVENTS = 200_000;
const SAMPLE = 20_000;
const REFERENCE_HOSTS = 2_000;
const PEER_HOSTS = 20;
const PEER_EVENTS = 200_000;
/** a small run before the measured ones, so that neither the fleet nor its peer pays the compiler's warm-up */
const WARM_UP_EVENTS = 20_000;
const OPTIONS: SimulateFleetOptions = { seed: 42, mistakeRate: 0.05, activity: FLEET_ACTIVITY_MIX };

/** heap in use after a full collection when the runner exposes gc (bench/run.ts does) */
const heapUsed = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
};

/** CPU seconds of this process (every thread: the collector's helpers included) since `from` */
const cpuSince = (from: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
};

/** a stream that accepts everything: the cost measured is the simulator's, not a disk's */
const nullSink = () =>
  new Writable({
    write(_chunk, _enc, callback) {
      callback();
    },
  });

/** events per CPU-second of the fleet mix over PEER_HOSTS hosts */
const peerRate = async (events: number): Promise<number> => {
  const sim = createFleetSimulation({ ...OPTIONS, hosts: PEER_HOSTS, events });
  const from = process.cpuUsage();
  await writeJsonLines(sim.events(), nullSink());
  return events / cpuSince(from);
};

/** heap per host of a fleet whose events all flowed, the simulation still referenced */
const heapPerHost = async (options: SimulateFleetOptions, hosts: number, events: number) => {
  const before = heapUsed();
  const sim = createFleetSimulation({ ...options, hosts, events });
  await writeJsonLines(sim.events(), nullSink());
  const bytes = (heapUsed() - before) / hosts;
  return { bytes, residency: sim.residency() };
};

export default defineFigure({
  name: 'simulator',
  issue: 23,
  sizes: { quick: [20, 1_000], full: [20, 10_000, 100_000] },
  async measure(hosts, ctx) {
    const events = Number(process.env.SIMULATOR_BENCH_EVENTS ?? Math.max(MIN_EVENTS, hosts * EVENTS_PER_HOST));
    const every = Math.max(1, Math.ceil(events / SAMPLE));
    const sample: IommuEventInput[] = [];
    await writeJsonLines(createFleetSimulation({ ...OPTIONS, hosts: PEER_HOSTS, events: WARM_UP_EVENTS }).events(), nullSink());
    // the same mix over a few hosts, run before and after the fleet (the process runs faster once its heap has
    // grown: the order alone moved a rate 1.6x): what the hosts themselves cost
    const peerEvents = Math.min(events, PEER_EVENTS);
    const peerBefore = hosts > PEER_HOSTS ? await peerRate(peerEvents) : 0;
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const heapBefore = heapUsed();
    const sim = createFleetSimulation({ ...OPTIONS, hosts, events });
    function* sampled(): Generator<IommuEventInput> {
      let n = 0;
      for (const e of sim.events()) {
        if (n++ % every === 0) sample.push(e);
        yield e;
      }
    }
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const { bytes } = await writeJsonLines(sampled(), nullSink(), {
      onProgress: () => {
        // rss() alone: memoryUsage() walks the heap's spaces on every call
        rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
      },
    });
    const genCpu = cpuSince(c0);
    const genSeconds = (performance.now() - t0) / 1000;
    const sampleSize = sample.length;

    // raw limit: serialising the same events, from the sample kept (untimed above), cycled to the same count
    let rawBytes = 0;
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    for (let i = 0; i < events; i++) rawBytes += JSON.stringify(sample[i % sample.length]).length + 1;
    const rawCpu = cpuSince(c1);
    const rawSeconds = (performance.now() - t1) / 1000;
    // the sample is the reference's input, not the simulator's state
    sample.length = 0;
    const heapHeld = (heapUsed() - heapBefore) / hosts;
    const residency = sim.residency();
    ctx.log(
      `${hosts} hosts, ${events} events, ${(bytes / 1e6).toFixed(0)} MB of JSON Lines (${Math.round(bytes / events)} B/event) in ${genSeconds.toFixed(1)} s (${genCpu.toFixed(1)} CPU-s); ` +
        `at the end ${residency.resident} host lives in memory (${residency.live} with something in flight), ${residency.parked} parked, ${residency.rebuilds} rebuilt from a parked record; ` +
        `peak RSS ${(rssPeak / 2 ** 20).toFixed(0)} MiB (${(rssBefore / 2 ** 20).toFixed(0)} MiB before); sample of ${sampleSize} events kept for the reference`,
    );

    const peerAfter = hosts > PEER_HOSTS ? await peerRate(peerEvents) : 0;
    const peer = (peerBefore + peerAfter) / 2;
    if (hosts > PEER_HOSTS) ctx.log(`peer: ${PEER_HOSTS} hosts, ${peerEvents} events: ${Math.round(peerBefore)} events/CPU-s run before the fleet, ${Math.round(peerAfter)} after (the reference is their mean)`);

    const refHosts = Math.min(hosts, REFERENCE_HOSTS);
    const refEvents = Math.round((events * refHosts) / hosts);
    const kept = await heapPerHost({ ...OPTIONS, residentQuiet: Infinity }, refHosts, refEvents);
    const parked = await heapPerHost(OPTIONS, refHosts, refEvents);
    ctx.log(
      `reference fleet of ${refHosts} hosts, ${refEvents} events: ${kept.bytes.toFixed(0)} B/host with every host kept, ${parked.bytes.toFixed(0)} B/host parked ` +
        `(${parked.residency.resident} in memory, ${parked.residency.live} live); JSON.stringify of the sample: ${(rawBytes / rawSeconds / 1e6).toFixed(1)} MB/s`,
    );
    const measurements: Measurement[] = [
      {
        label: `simulate → JSON Lines (${hosts} hosts)`,
        value: events / genSeconds,
        unit: 'events/s',
        higherIsBetter: true,
        reference: { label: 'JSON.stringify of the same events (a sample, cycled)', value: events / rawSeconds, kind: 'raw-limit' },
      },
      {
        label: `simulate → JSON Lines per CPU-second (${hosts} hosts)`,
        value: events / genCpu,
        unit: 'events/CPU-s',
        higherIsBetter: true,
        reference: { label: 'JSON.stringify of the same events (a sample, cycled) per CPU-second', value: events / rawCpu, kind: 'raw-limit' },
      },
      ...(hosts > PEER_HOSTS
        ? [
            {
              label: `simulate → JSON Lines per CPU-second (${hosts} hosts) beside ${PEER_HOSTS} hosts`,
              value: events / genCpu,
              unit: 'events/CPU-s',
              higherIsBetter: true,
              reference: { label: `the same mix over ${PEER_HOSTS} hosts (${peerEvents} events) per CPU-second, run before and after`, value: peer, kind: 'peer' as const },
            },
          ]
        : []),
      {
        label: `peak RSS while simulating (${hosts} hosts)`,
        value: rssPeak / 2 ** 20,
        unit: 'MiB',
        higherIsBetter: false,
        reference: { label: 'RSS before the run', value: rssBefore / 2 ** 20, kind: 'raw-limit' },
      },
      {
        label: `heap held per host after the run (${hosts} hosts)`,
        value: heapHeld,
        unit: 'bytes',
        higherIsBetter: false,
        reference: { label: `the same fleet at ${refHosts} hosts with every host kept in memory`, value: kept.bytes, kind: 'peer' },
      },
    ];
    return measurements;
  },
});
