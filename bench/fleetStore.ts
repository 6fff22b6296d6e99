import { statSync } from 'node:fs';
import { join } from 'node:path';
import { historyEvents } from '../projections/testing/generateHistory.js';
import { hostStreamName, type IommuEvent } from '../schemas/index.js';
import { getSqliteEventStore } from '../services/shared/eventStore/index.js';

/** a file's size with its WAL beside it */
export const bytes = (file: string): number => {
  let n = 0;
  for (const f of [file, `${file}-wal`]) {
    try {
      n += statSync(f).size;
    } catch {
      // no WAL file
    }
  }
  return n;
};

/**
 * A SQLite event store in `dir` holding a generated history of `events` events over `hosts` hosts (small
 * hosts: 4 NIC groups and a GPU group each), appended one stream per host. Written as it is generated, a
 * few thousand events of each host at a time: 1e7 events never sit in memory at once.
 */
export const storeOfHistory = async (dir: string, options: { readonly events: number; readonly hosts: number }) => {
  const storeFile = join(dir, 'events.sqlite');
  const store = getSqliteEventStore({ path: storeFile, durability: 'normal', keyDir: false });
  const lastSeq = new Map<string, number>();
  const perHost = new Map<string, IommuEvent[]>();
  let pending: Promise<unknown>[] = [];
  let count = 0;
  const flush = (host: string, list: IommuEvent[]): void => {
    pending.push(store.appendToStream(hostStreamName(host), list));
    perHost.set(host, []);
  };
  for (const e of historyEvents({ events: options.events, hosts: options.hosts, nicGroups: 4, gpuGroups: 1 })) {
    count++;
    lastSeq.set(e.host, e.seq);
    let list = perHost.get(e.host);
    if (!list) perHost.set(e.host, (list = []));
    list.push(e);
    if (list.length >= CHUNK) flush(e.host, list);
    // a bounded backlog: the store writes while the next chunks are made
    if (pending.length >= 2 * options.hosts) {
      await Promise.all(pending);
      pending = [];
    }
  }
  for (const [host, list] of perHost) if (list.length > 0) flush(host, list);
  await Promise.all(pending);
  return { store, storeFile, lastSeq, events: count, hosts: perHost.size };
};

/** events of one host per append while writing a history */
const CHUNK = 4_000;
