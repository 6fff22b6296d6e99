import { createEventBuilder, hostStreamName, type IommuEvent } from '../schemas/index.js';
import { getSqliteEventStore } from '../services/shared/eventStore/index.js';

/**
 * A large store for the tlog figure's `verify` timing (issue 20), built by the store itself (chains, index
 * rows, seals, then the Merkle tree and a signed checkpoint), without holding the events in memory: each of
 * HOSTS hosts appends batches of BATCH as its collector would, the hosts concurrently.
 *
 * The events go in without the tree (`merkleTree: false`) and the tree is built once at the next writable
 * open, as for a store from before the tree: the same leaves, and a fixture of events made earlier stays usable
 * after a change to how the tree is stored.
 *
 * `tsx bench/tlogStoreFixture.ts <path> <events> [--events-only]` makes one from the command line (the tree is
 * then built by the figure's first writable open).
 */
const HOSTS = 16;
const BATCH = 1000;

export const buildVerifyFixture = async (path: string, total: number, log: (line: string) => void = () => {}, withTree = true): Promise<void> => {
  const perHost = Math.ceil(total / HOSTS);
  const events = getSqliteEventStore({ path, durability: 'normal', merkleTree: false });
  await events.ready();
  const t = Date.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: HOSTS }, async (_, h) => {
      const b = createEventBuilder({ host: `bench-${h}` });
      const stream = hostStreamName(`bench-${h}`);
      for (let off = 0; off < perHost; off += BATCH) {
        const batch: IommuEvent[] = [];
        for (let i = off; i < Math.min(perHost, off + BATCH); i++) {
          const device = `0000:0${(i >> 4) % 8}:00.0`;
          const e = i % 3 === 0 ? b.raw('DriverBound', { device, driver: 'vfio-pci' }) : i % 3 === 1 ? b.raw('DriverUnbound', { device }) : b.raw('VfioGroupOpened', { group: (i >> 4) % 32, groupFd: '4242:3', outcome: { ok: true } });
          batch.push(e as IommuEvent);
        }
        await events.appendToStream(stream, batch);
        done += batch.length;
        if (done % 1_000_000 < BATCH) log(`${done} events in ${Math.round((Date.now() - t) / 1000)} s`);
      }
    }),
  );
  await events.close();
  log(`events appended in ${Math.round((Date.now() - t) / 1000)} s`);
  if (!withTree) return;
  const tree = getSqliteEventStore({ path, durability: 'normal' });
  await tree.ready();
  await tree.close();
  log(`done in ${Math.round((Date.now() - t) / 1000)} s`);
};

if (process.argv[1]?.endsWith('tlogStoreFixture.ts')) {
  const [path, n, flag] = process.argv.slice(2);
  if (!path || !n) throw new Error('usage: tlogStoreFixture.ts <path> <events> [--events-only]');
  await buildVerifyFixture(path, Number(n), (line) => console.log(`${new Date().toISOString()} ${line}`), flag !== '--events-only');
}
