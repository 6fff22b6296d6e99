// touch5: the same answers from two dist trees on the simulator's mix: every host's fleet state, the violations each
// event opened, and (analyzer) every row, compared. usage: A=<tree> B=<tree> node eq.mjs <events>
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { isDeepStrictEqual } from 'node:util';
const [A, B] = [process.env.A, process.env.B];
const n = Number(process.argv[2] ?? 300000);
// the sink figure's cached fleet (bench/figures/sinkFleetCache.ts): 1e6 events over 20 hosts
const file = process.env.FLEET ?? `${process.env.HOME}/.cache/iommutrail/bench/sink-fleet-1000000-20-08948d157a15cd86.jsonl`;
const events = [];
for await (const line of createInterface({ input: createReadStream(file) })) {
  if (events.length >= n) break;
  events.push(JSON.parse(line));
}
const run = async (t) => {
  const p = (await import(`${t}/dist/projections/index.js`)).createFleetProjection();
  const states = new Map();
  const opened = [];
  for (const e of events) { const o = []; states.set(e.host, p.evolve(states.get(e.host) ?? p.initialState(), e, undefined, o)); opened.push(o.map((v) => v.key)); }
  const an = (await import(`${t}/dist/services/serve/analytics/fleetAnalyzer.js`)).createFleetAnalyzer((await import(`${t}/dist/projections/index.js`)).createFleetProjection());
  const rows = [];
  const records = events.map((e, i) => ({ event: e, streamName: `host-${e.host}`, streamPosition: BigInt(i + 1), globalPosition: BigInt(i + 1) }));
  for (let i = 0; i < records.length; i += 10_000) rows.push(an.apply(records.slice(i, i + 10_000)));
  return { states: [...states], opened, rows };
};
const [a, b] = [await run(A), await run(B)];
const open = a.states.reduce((s, [, st]) => s + Object.keys(st.violations.open).length, 0);
const closed = a.states.reduce((s, [, st]) => s + st.violations.closed.length, 0);
const nrows = a.rows.reduce((s, o) => s + o.violations.length + o.groupStates.length + o.compliance.length, 0);
console.log(`${events.length} events: states ${isDeepStrictEqual(a.states, b.states)}, opened ${isDeepStrictEqual(a.opened, b.opened)}, rows ${isDeepStrictEqual(a.rows, b.rows)} (${open} open, ${closed} closed, ${nrows} rows)`);
