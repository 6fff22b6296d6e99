// per recorded event type: µs per event in the old (base) and new projection fold, same process.
// Each event is timed with hrtime (which inflates every event alike), then each tree's column is scaled so that
// its total equals that tree's own untimed fold CPU time (median of 7): the shares are the timed ones.
const trees = { old: process.env.BASE ?? '/work/wt/base/dist', new: process.env.T ?? '/work/wt/fold16/dist' };
const { generateHistory } = await import('/work/wt/base/dist/projections/testing/generateHistory.js');
const events = generateHistory({ events: 100000, finishCycles: true });
const mods = {};
for (const [k, t] of Object.entries(trees)) mods[k] = (await import(t + '/projections/index.js')).createFleetProjection;
const now = process.hrtime.bigint;
const timed = { old: new Map(), new: new Map() }; const cpu = { old: [], new: [] }; const count = new Map();
for (const e of events) count.set(e.type, (count.get(e.type) ?? 0) + 1);
for (let r = 0; r < 7; r++) for (const [k, create] of Object.entries(mods)) {
  { const p = create(); let s = p.initialState(); const c0 = process.cpuUsage(); for (const e of events) s = p.evolve(s, e); const c = process.cpuUsage(c0); if (r >= 2) cpu[k].push((c.user + c.system) * 1000); }
  const p = create(); let s = p.initialState();
  for (const e of events) { const t0 = now(); s = p.evolve(s, e); const dt = now() - t0; if (r >= 2) timed[k].set(e.type, (timed[k].get(e.type) ?? 0n) + dt); }
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const scale = {}; for (const k of ['old', 'new']) { let tot = 0n; for (const v of timed[k].values()) tot += v; scale[k] = med(cpu[k]) * 5 / Number(tot); }
const rows = [...count].map(([ty, n]) => { const o = Number(timed.old.get(ty)) * scale.old / 5 / n / 1000, nn = Number(timed.new.get(ty)) * scale.new / 5 / n / 1000; return [ty, n, o, nn]; }).sort((a, b) => (b[3] - b[2]) * b[1] - (a[3] - a[2]) * a[1]);
console.log(`events ${events.length}; untimed fold CPU: old ${(med(cpu.old) / 1e6).toFixed(1)} ms, new ${(med(cpu.new) / 1e6).toFixed(1)} ms (new/old ${(med(cpu.new) / med(cpu.old)).toFixed(2)}x time)`);
console.log('type'.padEnd(30), 'events'.padStart(7), 'old µs'.padStart(8), 'new µs'.padStart(8), 'new/old'.padStart(8), 'extra ms'.padStart(9));
for (const [ty, n, o, nn] of rows) console.log(ty.padEnd(30), String(n).padStart(7), o.toFixed(2).padStart(8), nn.toFixed(2).padStart(8), (nn / o).toFixed(2).padStart(8), ((nn - o) * n / 1000).toFixed(1).padStart(9));
