// A/B of the fleet projection fold: BASE and NEW dist trees, same process, alternating, CPU time.
// usage: BASE=/work/wt/base NEW=/work/wt/fold17 npx tsx /work/briefs/s12/ab.mts [events=100000] [rounds=7] [first=base|new]
import os from 'node:os';
const base = process.env.BASE ?? '/work/wt/base';
const neu = process.env.NEW ?? '/work/wt/fold17';
const n = Number(process.argv[2] ?? 100000);
const rounds = Number(process.argv[3] ?? 7);
const first = process.argv[4] ?? 'base';
const { generateHistory } = await import(`${base}/dist/projections/testing/generateHistory.js`);
const events = generateHistory({ events: n, finishCycles: true });
const trees: Record<string, any> = {
  base: (await import(`${base}/dist/projections/index.js`)).createFleetProjection,
  new: (await import(`${neu}/dist/projections/index.js`)).createFleetProjection,
};
const order = first === 'base' ? ['base', 'new'] : ['new', 'base'];
const rate: Record<string, number[]> = { base: [], new: [] };
const fold = (k: string): number => {
  const p = trees[k]();
  let s = p.initialState();
  const c0 = process.cpuUsage();
  for (const e of events) s = p.evolve(s, e);
  const c = process.cpuUsage(c0);
  return events.length / ((c.user + c.system) / 1e6);
};
for (let r = 0; r < rounds + 2; r++) {
  const o = r % 2 === 0 ? order : [...order].reverse();
  for (const k of o) {
    const x = fold(k);
    if (r >= 2) rate[k].push(x);
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const ratios = rate.new.map((x, i) => x / rate.base[i]!);
console.log(`events ${events.length}, rounds ${rounds}, first ${first}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`base events/CPU-s median ${(med(rate.base) / 1e6).toFixed(3)}M  [${rate.base.map((x) => (x / 1e6).toFixed(2)).join(' ')}]`);
console.log(`new  events/CPU-s median ${(med(rate.new) / 1e6).toFixed(3)}M  [${rate.new.map((x) => (x / 1e6).toFixed(2)).join(' ')}]`);
console.log(`new/base ratio of medians ${(med(rate.new) / med(rate.base)).toFixed(3)}, per-round median ${med(ratios).toFixed(3)}`);
