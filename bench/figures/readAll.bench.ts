import Database from 'better-sqlite3';
import { getSqliteEventStore } from '../../services/shared/eventStore/index.js';
import { historyStore } from '../fleetStore.js';
import { defineFigure } from '../harness.js';

/**
 * Issue 23: read all of a store's events through the port (`readAll`, trusted rows: each row's bytes checked
 * against the row check stored with them, then JSON.parse), beside the raw limit measured in the same run on
 * the same file: one better-sqlite3 SELECT of the same rows' JSON, each JSON.parse'd. A generated history of N
 * events over 20 hosts (bench/fleetStore.ts: cached between full runs, read-only here); the two reads alternate, three rounds (one at 1e7), the best of each kept
 * (the machine is shared: the best round is the one least disturbed). The aim: ≥ 0.7× the raw read.
 */
const HOSTS = 20;
// three rounds up to 1e6 events, one at 1e7 (each round reads the store twice)
const roundsAt = (size: number): number => Math.max(1, Math.min(3, Math.floor(3e6 / size)));

const perSecond = (n: number, start: bigint): number => n / (Number(process.hrtime.bigint() - start) / 1e9);

export default defineFigure({
  name: 'read all',
  issue: 23,
  sizes: { quick: [10_000], full: [100_000, 1_000_000, 10_000_000] },
  async measure(size, ctx) {
    const { storeFile, events } = await historyStore(ctx, { events: size, hosts: HOSTS }, 'read');
    const store = getSqliteEventStore({ path: storeFile, readOnly: true, keyDir: false });
    const raw = new Database(storeFile, { readonly: true });
    const rawSelect = raw.prepare<[], { json: string }>('SELECT json FROM events ORDER BY position');
    let ours = 0;
    let reference = 0;
    for (let round = 0, rounds = roundsAt(size); round < rounds; round++) {
      let t = process.hrtime.bigint();
      let n = 0;
      for (const row of rawSelect.iterate()) {
        JSON.parse(row.json);
        n++;
      }
      reference = Math.max(reference, perSecond(n, t));
      if (n !== events) throw new Error(`raw read ${n} of ${events}`);
      t = process.hrtime.bigint();
      n = 0;
      for await (const _ of store.readAll()) n++;
      ours = Math.max(ours, perSecond(n, t));
      if (n !== events) throw new Error(`read all gave ${n} of ${events}`);
      ctx.log(`round ${round + 1}: raw ${reference.toFixed(0)}/s, read all ${ours.toFixed(0)}/s (best so far)`);
    }
    raw.close();
    await store.close();
    return [
      {
        label: 'read all (trusted rows, parsed)',
        value: ours,
        unit: 'events/s',
        higherIsBetter: true,
        reference: { label: 'raw SELECT json + JSON.parse of the same rows', value: reference, kind: 'raw-limit' },
        targetRatio: 0.7,
      },
    ];
  },
});
