import path from 'node:path';
import type { Logger } from 'pino';
import { ValidationError } from '../../../schemas/index.js';
import type { Config } from '../config/config.js';
import { connectEsdbEventStore } from './esdb/esdbEventStore.js';
import type { EventStore } from './eventStore.js';
import { getSqliteEventStore } from './sqlite/sqliteEventStore.js';

/** where the SQLite store lives in a data folder */
export const sqliteStorePath = (dataDir: string): string => path.join(dataDir, 'events.sqlite');

/**
 * The store the configuration names: EventStoreDB/KurrentDB when `store.kind` is `eventstoredb`, otherwise the
 * SQLite file `<dataDir>/events.sqlite` (or `sqlitePath`), ready to append when this resolves. One place, so
 * `serve`, `ingest` and `ingest-kafka` always open the same store for the same configuration.
 */
export const openConfiguredStore = async (config: Pick<Config, 'store' | 'dataDir'>, logger?: Logger, sqlitePath?: string): Promise<EventStore> => {
  if (config.store.kind === 'eventstoredb' && sqlitePath === undefined) {
    if (!config.store.url) {
      throw new ValidationError('store.url: required when store.kind is eventstoredb (set EVENTSTORE_URL, e.g. esdb://localhost:2113?tls=false)', [
        { path: 'store.url', message: 'required when store.kind is eventstoredb' },
      ]);
    }
    logger?.info({ url: config.store.url.replace(/\/\/[^@]*@/, '//***@') }, 'event store: EventStoreDB/KurrentDB');
    return connectEsdbEventStore(config.store.url);
  }
  const file = sqlitePath ?? sqliteStorePath(config.dataDir);
  logger?.info({ file, durability: config.store.durability }, 'event store: SQLite');
  const store = getSqliteEventStore({
    path: file,
    durability: config.store.durability,
    ...(config.store.checkpointIntervalMs !== undefined ? { sealIntervalMs: config.store.checkpointIntervalMs } : {}),
    ...(config.store.keyDir !== undefined ? { keyDir: config.store.keyDir } : {}),
    ...(config.store.origin !== undefined ? { origin: config.store.origin } : {}),
    ...(logger ? { logger } : {}),
  });
  const { checked, bytes, ms } = store.integrity;
  if (checked) logger?.info({ file, bytes, ms: Math.round(ms) }, 'event store: quick_check ok');
  else logger?.warn({ file, bytes }, 'event store: quick_check skipped (file larger than the start-up budget); run `iommutrail verify` to check it');
  try {
    // the writer thread is up before the caller starts taking work
    await store.ready();
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return store;
};
