import { hash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createEventBuilder, hostStreamName, type IommuEvent } from '../../schemas/index.js';
import { getSqliteEventStore } from '../../services/shared/eventStore/index.js';
import { PUBLIC_KEY_FILE, readPublicKey } from '../../services/shared/eventStore/sqlite/tamper/signing.js';
import { inclusionProof, verifyInclusion } from '../../services/shared/eventStore/format/merkle.js';
import { hashReaderOf, leafFormatOf, logLeafHash, storedRoot, storedTreeSize } from '../../services/shared/eventStore/sqlite/tamper/tlogStore.js';
import { verifySqliteStore } from '../../services/shared/eventStore/sqlite/tamper/verifyStore.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 20: the transparency log's costs, each beside a same-run reference
 * - durable append with the Merkle tree and signed checkpoints vs the same store without them (the goal: 0.9x);
 *   each variant runs twice, alternating, best of two (the machine is shared);
 * - inclusion proof generation from the stored subtree hashes vs point reads of as many event rows by
 *   position (what serving the events themselves costs);
 * - inclusion proof verification vs the raw limit: as many SHA-256 of 65 bytes as the proofs hold nodes;
 * - `verify` of the whole store (chains, tree, derived columns, index rows) vs a raw SELECT + sha256 of every row.
 */
const HOSTS = 16;
const BATCH = 1000;
const PROOFS = 2000;

const workOf = (total: number): { stream: string; events: IommuEvent[] }[] => {
  const builders = Array.from({ length: HOSTS }, (_, h) => createEventBuilder({ host: `bench-${h}` }));
  const perHost: IommuEvent[][] = builders.map(() => []);
  for (let i = 0; i < total; i++) {
    const device = `0000:0${(i >> 4) % 8}:00.0`;
    perHost[i % HOSTS]!.push(builders[i % HOSTS]!.event('DriverBound', { device, driver: 'vfio-pci' }));
  }
  return perHost.map((events, h) => ({ stream: hostStreamName(`bench-${h}`), events }));
};

const perSecond = (n: number, start: bigint): number => n / (Number(process.hrtime.bigint() - start) / 1e9);

/** one append run: events per second of wall time and of CPU time (every thread of the process, the writer's too) */
interface Run {
  readonly wall: number;
  readonly cpu: number;
}

export const appendRun = async (path: string, work: { stream: string; events: IommuEvent[] }[], total: number, merkleTree: boolean): Promise<Run> => {
  const store = getSqliteEventStore({ path, durability: 'full', merkleTree });
  await store.ready();
  const t = process.hrtime.bigint();
  const c = process.cpuUsage();
  await Promise.all(
    work.map(async ({ stream, events }) => {
      for (let off = 0; off < events.length; off += BATCH) await store.appendToStream(stream, events.slice(off, off + BATCH));
    }),
  );
  // the final checkpoint (and seal) at close is part of the price
  await store.close();
  const cpu = process.cpuUsage(c);
  return { wall: perSecond(total, t), cpu: total / ((cpu.user + cpu.system) / 1e6) };
};

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * The append figure on a shared, loaded machine: ROUNDS rounds in one process, each running both variants
 * (which goes first alternates, so warm-up and background load fall on both alike), then the median of each
 * variant's rates. Wall time is what a user sees; CPU time (all threads) is what the tree costs, and varies
 * far less with the load of other processes.
 */
export const appendRounds = async (dir: string, work: { stream: string; events: IommuEvent[] }[], total: number, rounds: number) => {
  const runs = { with: [] as Run[], without: [] as Run[] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false];
    for (const tree of order) runs[tree ? 'with' : 'without'].push(await appendRun(join(dir, `${tree ? 'with' : 'without'}-${round}.sqlite`), work, total, tree));
  }
  return {
    runs,
    wall: { with: median(runs.with.map((r) => r.wall)), without: median(runs.without.map((r) => r.wall)) },
    cpu: { with: median(runs.with.map((r) => r.cpu)), without: median(runs.without.map((r) => r.cpu)) },
  };
};

const ROUNDS = { quick: 1, full: 5 };

export default defineFigure({
  name: 'transparency log (Merkle tree, checkpoints, proofs)',
  issue: 20,
  sizes: { quick: [4_000], full: [100_000] },
  async measure(size, ctx): Promise<readonly Measurement[]> {
    const work = workOf(size);
    const rounds = ROUNDS[ctx.mode];
    const ab = await appendRounds(ctx.tmpDir, work, size, rounds);
    const path = join(ctx.tmpDir, 'with-0.sqlite');
    const db = new Database(path, { readonly: true });
    db.defaultSafeIntegers(true);
    const n = storedTreeSize(db);
    const read = hashReaderOf(db);
    const root = storedRoot(db, n);
    const picks = Array.from({ length: PROOFS }, (_, i) => Math.floor(((i * 2654435761) % 4294967296) / 4294967296 * n));

    let t = process.hrtime.bigint();
    const proofs = picks.map((i) => inclusionProof(i, n, read));
    const gen = perSecond(PROOFS, t);
    const byPosition = db.prepare<[number], { json: string }>('SELECT json FROM events WHERE position = ?');
    t = process.hrtime.bigint();
    for (const i of picks) byPosition.get(i + 1);
    const rowReads = perSecond(PROOFS, t);

    const format = leafFormatOf(db);
    const leaves = picks.map((i) => {
      const r = db.prepare<[number], { position: bigint; stream: string; revision: bigint; json: string }>('SELECT position, stream, revision, json FROM events WHERE position = ?').get(i + 1)!;
      return logLeafHash(format, r.position, r.stream, r.revision, r.json);
    });
    t = process.hrtime.bigint();
    let ok = 0;
    picks.forEach((i, k) => {
      if (verifyInclusion(i, n, leaves[k]!, proofs[k]!, root)) ok++;
    });
    const check = perSecond(PROOFS, t);
    if (ok !== PROOFS) throw new Error(`${PROOFS - ok} inclusion proofs failed`);
    const nodes = proofs.reduce((a, p) => a + p.length, 0);
    const block = Buffer.alloc(65, 1);
    t = process.hrtime.bigint();
    for (let k = 0; k < nodes; k++) hash('sha256', block, 'buffer');
    const shaRate = perSecond(PROOFS, t);

    t = process.hrtime.bigint();
    const report = verifySqliteStore(db, readPublicKey(join(ctx.tmpDir, PUBLIC_KEY_FILE)));
    const verifyRate = perSecond(size, t);
    if (!report.ok) throw new Error(`verify found ${report.findings.length} finding(s) in an untouched store`);
    t = process.hrtime.bigint();
    for (const r of db.prepare<[], { json: string }>('SELECT json, prev_hash, hash FROM events').iterate()) hash('sha256', r.json, 'buffer');
    const scan = perSecond(size, t);
    db.close();
    const show = (rs: readonly Run[], k: keyof Run): string => rs.map((r) => Math.round(r[k])).join(', ');
    ctx.log(`append runs (wall) with tree: ${show(ab.runs.with, 'wall')}; without: ${show(ab.runs.without, 'wall')} events/s`);
    ctx.log(`append runs (CPU)  with tree: ${show(ab.runs.with, 'cpu')}; without: ${show(ab.runs.without, 'cpu')} events per CPU-second`);

    return [
      {
        label: 'append (batched, durable) with Merkle tree + checkpoints, wall time',
        value: ab.wall.with,
        unit: 'events/s',
        higherIsBetter: true,
        reference: { label: `the same store without the tree (same run, median of ${rounds} alternating rounds)`, value: ab.wall.without, kind: 'raw-limit' },
        targetRatio: 0.9,
      },
      {
        label: 'append (batched, durable) with Merkle tree + checkpoints, CPU time (all threads)',
        value: ab.cpu.with,
        unit: 'events/CPU-s',
        higherIsBetter: true,
        reference: { label: `the same store without the tree (same run, median of ${rounds} alternating rounds)`, value: ab.cpu.without, kind: 'raw-limit' },
        targetRatio: 0.9,
      },
      { label: 'inclusion proof generation', value: gen, unit: 'proofs/s', higherIsBetter: true, reference: { label: 'point reads of as many event rows by position', value: rowReads, kind: 'raw-limit' } },
      { label: 'inclusion proof verification', value: check, unit: 'proofs/s', higherIsBetter: true, reference: { label: 'as many SHA-256 of 65 bytes as the proofs hold nodes', value: shaRate, kind: 'raw-limit' } },
      { label: 'verify (chains, tree, columns, index rows)', value: verifyRate, unit: 'events/s', higherIsBetter: true, reference: { label: 'raw SELECT + sha256 of every row', value: scan, kind: 'raw-limit' } },
    ];
  },
});
