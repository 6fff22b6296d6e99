// same final read model and violations with the prototype (FAST=1) as without (reference tree)
const { generateHistory } = await import('/work/wt/base/dist/projections/testing/generateHistory.js');
const events = generateHistory({ events: 100000, finishCycles: true });
const rep = (k, v) => (v instanceof Map ? [...v] : typeof v === "bigint" ? String(v) : k === "revision" ? 0 : v);
const fold = async (dir) => { const p = (await import(dir + '/dist/projections/index.js')).createFleetProjection(); let s = p.initialState(); const snaps = []; let i = 0; for (const e of events) { s = p.evolve(s, e); if (++i % 997 === 0) snaps.push(JSON.stringify(s, rep)); } snaps.push(JSON.stringify(s, rep)); return snaps; };
const a = await fold('/tmp/f17/ref'); const b = await fold(process.env.X ?? '/tmp/f17/exp');
let diff = -1; for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) { diff = i; break; }
console.log('snapshots', a.length, 'first differing', diff, globalThis.__FS);
if (diff >= 0) { const x = a[diff], y = b[diff]; let k = 0; while (x[k] === y[k]) k++; console.log(x.slice(k - 200, k + 200)); console.log('---'); console.log(y.slice(k - 200, k + 200)); }
