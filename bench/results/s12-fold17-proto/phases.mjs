const { generateHistory } = await import('/work/wt/base/dist/projections/testing/generateHistory.js');
const events = generateHistory({ events: 100000, finishCycles: true });
const create = (await import('/tmp/f17/exp/dist/projections/index.js')).createFleetProjection;
const now = process.hrtime.bigint;
for (let r = 0; r < 6; r++) { if (r === 3) globalThis.__P = new Map(); const p = create(); let s = p.initialState(); for (const e of events) s = p.evolve(s, e); }
// timer overhead per call
let t = now(); for (let i = 0; i < 1e6; i++) now(); const oh = Number(now() - t) / 1e6;
console.log('timer overhead ns', oh.toFixed(0));
console.log('type'.padEnd(28), 'n'.padStart(7), 'follow', ' model', 'derive', ' after', 'checks', ' (ns/event, minus 1 timer each; 3 folds)');
const rows = [...globalThis.__P].sort((a, b) => (b[1][2]+b[1][3]+b[1][4]+b[1][5]) - (a[1][2]+a[1][3]+a[1][4]+a[1][5]));
let tot = [0,0,0,0,0];
for (const [ty, r] of rows) { const n = r[0]; const c = [1,2,3,4,5].map(i => Math.max(0, r[i] / n - oh)); c.forEach((v,i)=>tot[i]+=v*n/3/1e6); console.log(ty.padEnd(28), String(n/3).padStart(7), ...c.map(v => v.toFixed(0).padStart(6))); }
console.log('ms per fold: follow, model, derive, after, checks', tot.map(v=>v.toFixed(1)).join(' '));
