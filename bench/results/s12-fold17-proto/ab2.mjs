// A vs B (two dist trees), same process, both orders in separate processes; geometric mean of the two ratios
const [A, B, first] = [process.env.A, process.env.B, process.argv[2] ?? 'A'];
const { generateHistory } = await import('/work/wt/base/dist/projections/testing/generateHistory.js');
const events = generateHistory({ events: 100000, finishCycles: true });
const trees = { A: (await import(A + '/dist/projections/index.js')).createFleetProjection, B: (await import(B + '/dist/projections/index.js')).createFleetProjection };
const order = first === 'A' ? ['A', 'B'] : ['B', 'A'];
const rate = { A: [], B: [] };
for (let r = 0; r < 11; r++) for (const k of (r % 2 ? [...order].reverse() : order)) {
  const p = trees[k](); let s = p.initialState(); const c0 = process.cpuUsage(); for (const e of events) s = p.evolve(s, e); const c = process.cpuUsage(c0);
  if (r >= 2) rate[k].push(events.length / ((c.user + c.system) / 1e6));
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log((med(rate.B) / med(rate.A)).toFixed(3));
