import { statSync } from 'node:fs';
import { join } from 'node:path';
import { generateHistory } from '../projections/testing/generateHistory.js';
import { hostStreamName, type IommuEvent } from '../schemas/index.js';
import { getSqliteEventStore } from '../services/eventStore/index.js';

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
 * hosts: 4 NIC groups and a GPU group each), appended one stream per host.
 */
export const storeOfHistory = async (dir: string, options: { readonly events: number; readonly hosts: number }) => {
  const events = generateHistory({ events: options.events, hosts: options.hosts, nicGroups: 4, gpuGroups: 1 });
  const storeFile = join(dir, 'events.sqlite');
  const store = getSqliteEventStore({ path: storeFile, durability: 'normal', keyDir: false });
  const lastSeq = new Map<string, number>();
  const perHost = new Map<string, IommuEvent[]>();
  for (const e of events) {
    lastSeq.set(e.host, e.seq);
    const list = perHost.get(e.host);
    if (list) list.push(e);
    else perHost.set(e.host, [e]);
  }
  const pending: Promise<unknown>[] = [];
  for (const [host, list] of perHost) pending.push(store.appendToStream(hostStreamName(host), list));
  await Promise.all(pending);
  return { store, storeFile, lastSeq, events: events.length, hosts: perHost.size };
};
