// touch5: A/B of the fleet projection's fold (and the analyzer's) on the simulator's mix, two dist trees, same
// process, alternating, CPU time. usage: A=<tree> B=<tree> node ab.mjs <events> <projection|analyzer> <A|B first> [rounds]
import os from 'node:os';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
const [A, B] = [process.env.A, process.env.B];
const n = Number(process.argv[2] ?? 300000);
const mode = process.argv[3] ?? 'projection';
const first = process.argv[4] ?? 'A';
const rounds = Number(process.argv[5] ?? 7);
// the sink figure's cached fleet (bench/figures/sinkFleetCache.ts): 1e6 events over 20 hosts
const file = process.env.FLEET ?? `${process.env.HOME}/.cache/iommutrail/bench/sink-fleet-1000000-20-08948d157a15cd86.jsonl`;
// the first n events of the 1e6-event, 20-host simulated fleet (the sink figure's cache)
const events = [];
for await (const line of createInterface({ input: createReadStream(file) })) {
  if (events.length >= n) break;
  events.push(JSON.parse(line));
}
const trees = {};
for (const k of ['A', 'B']) {
  const t = k === 'A' ? A : B;
  trees[k] = { proj: (await import(`${t}/dist/projections/index.js`)).createFleetProjection, an: (await import(`${t}/dist/services/serve/analytics/fleetAnalyzer.js`)).createFleetAnalyzer };
}
const records = events.map((e, i) => ({ event: e, streamName: `host-${e.host}`, streamPosition: BigInt(i + 1), globalPosition: BigInt(i + 1) }));
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1e6; };
const fold = (k) => {
  const c0 = cpu();
  if (mode === 'projection') {
    const p = trees[k].proj();
    const states = new Map();
    const opened = [];
    for (const e of events) { opened.length = 0; states.set(e.host, p.evolve(states.get(e.host) ?? p.initialState(), e, undefined, opened)); }
  } else {
    const a = trees[k].an(trees[k].proj());
    for (let i = 0; i < records.length; i += 10_000) a.apply(records.slice(i, i + 10_000));
  }
  return events.length / (cpu() - c0);
};
const order = first === 'A' ? ['A', 'B'] : ['B', 'A'];
const rate = { A: [], B: [] };
for (let r = 0; r < rounds + 2; r++) for (const k of r % 2 ? [...order].reverse() : order) { const x = fold(k); if (r >= 2) rate[k].push(x); }
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`${mode} ${events.length} events, first ${first}: A ${(med(rate.A) / 1e6).toFixed(3)}M/CPU-s  B ${(med(rate.B) / 1e6).toFixed(3)}M/CPU-s  B/A ${(med(rate.B) / med(rate.A)).toFixed(3)}  load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
