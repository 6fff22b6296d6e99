const { generateHistory } = await import('/work/wt/base/dist/projections/testing/generateHistory.js');
const events = generateHistory({ events: 100000, finishCycles: true });
const p = (await import('/tmp/f17/exp4c/dist/projections/index.js')).createFleetProjection(); let s = p.initialState(); for (const e of events) s = p.evolve(s, e);
console.log([...globalThis.__MISS].sort((a,b)=>b[1]-a[1]).join('\n'));
