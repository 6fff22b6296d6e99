import { statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Router } from 'express';
import { UnavailableError } from '../../schemas/index.js';
import type { Config } from '../shared/config/config.js';
import { createLogger } from '../shared/config/logger.js';
import { bootstrapTokens, createTokenIndex } from '../shared/config/tokens.js';
import { openConfiguredStore, sqliteStorePath } from '../shared/eventStore/openConfiguredStore.js';
import type { EventStore } from '../shared/eventStore/eventStore.js';
import { createApp } from './http/app.js';
import { createIngestRouter } from './http/ingestRoutes.js';
import { createServiceMetrics, type ServiceMetrics } from './http/metrics.js';
import { createQueryRouter } from './http/queryRoutes.js';
import { createProofRouter } from './http/proofRoutes.js';
import type { SqliteEventStore } from '../shared/eventStore/sqlite/sqliteEventStore.js';
import { createReplayPool } from './http/replayPool.js';
import { createReplayRouter } from './http/replayRoutes.js';
import { createIngestService, type IngestService } from '../shared/ingest/ingestService.js';
import { createLiveProjection, type LiveProjection } from './query/liveProjection.js';
import { openSnapshotStore } from './query/snapshotStore.js';

export const VERSION = '0.1.0';

/** extra parts wired by other modules (analytics + dashboard, replay API), given the core services */
export interface ServiceExtension {
  readonly name: string;
  readonly routers?: readonly Router[];
  readonly start?: () => Promise<void>;
  readonly stop?: () => Promise<void>;
  readonly lag?: () => Promise<bigint> | bigint;
  /** this part's share of /readyz: not ready (with the reason) when it cannot do its work */
  readonly ready?: () => Promise<ExtensionReadiness> | ExtensionReadiness;
}

export interface ExtensionReadiness {
  readonly ready: boolean;
  readonly reason?: string;
}

export interface ServiceCore {
  readonly config: Config;
  readonly logger: Logger;
  readonly store: EventStore;
  readonly live: LiveProjection;
  readonly ingest: IngestService;
  readonly metrics: ServiceMetrics;
}

export interface RunningService extends ServiceCore {
  readonly server: Server;
  readonly url: string;
  /** the admin token minted on first start with no token configured (shown once) */
  readonly mintedToken?: string;
  /** stop accepting, finish in-flight requests, flush projections, close the store */
  shutdown(reason?: string): Promise<void>;
}

/**
 * The main job: event store, in-process projections, ingest and query API (and, when their modules are
 * present, analytics and the dashboard), listening on config.http. Nothing is acknowledged before the
 * store made it durable.
 */
export const startService = async (
  config: Config,
  options: { logger?: Logger; extensions?: (core: ServiceCore) => Promise<readonly ServiceExtension[]> } = {},
): Promise<RunningService> => {
  const logger = options.logger ?? createLogger({ level: config.logLevel, base: { service: 'iommutrail' } });
  const metrics = createServiceMetrics({ perHost: config.metrics.perHost });
  const { tokens, minted } = bootstrapTokens(config.dataDir, config.auth.tokens);
  const tokenIndex = createTokenIndex(tokens);
  const store = await openConfiguredStore(config, logger);
  const projectionLogger = logger.child({ component: 'projection' });
  const snapshots = openSnapshotStore(config.dataDir, { logger: projectionLogger });
  const live = createLiveProjection({
    store,
    snapshots,
    snapshotEvery: config.projections.snapshotEvery,
    projection: { closedViolationLimit: config.projections.closedViolationLimit },
    logger: projectionLogger,
    // sequence facts come from the projection (the store's events, whoever appended them)
    onSequence: metrics.countSequence,
  });
  metrics.watchViolations(() => live.openViolationEntries(), { byHost: config.metrics.violationsByHost });
  const ingest = createIngestService({
    store,
    facts: live,
    hooks: {
      onAccepted: (host, n) => metrics.countIngested(host, n),
      onDuplicate: (n) => metrics.duplicates.inc(n),
      onConflict: (n) => metrics.conflicts.inc(n),
      onRejected: (n) => metrics.rejected.inc(n),
    },
  });
  const core: ServiceCore = { config, logger, store, live, ingest, metrics };
  await live.start();
  const extensions = options.extensions ? await options.extensions(core) : [];
  for (const ext of extensions) await ext.start?.();

  let caughtUp = true;
  // replays run on worker threads with their own read connection when the store is a SQLite file
  const replayPool = config.store.kind === 'sqlite' ? createReplayPool({ path: sqliteStorePath(config.dataDir), size: config.http.heavyConcurrency }) : undefined;
  const app = createApp({
    version: VERSION,
    logger,
    metrics,
    identify: tokenIndex.identify,
    ratePerMinute: config.http.ratePerMinute,
    heavy: { concurrency: config.http.heavyConcurrency, queue: config.http.heavyQueue },
    ready: async () => {
      try {
        await store.headPosition();
        await store.ready?.();
      } catch (err) {
        // the exception's text goes to the log only: the open /readyz names the component and a stable code
        logger.warn({ err, component: 'event-store' }, 'readiness: event store unavailable');
        return { ready: false, component: 'event-store', reason: 'store_unavailable' };
      }
      for (const ext of extensions) {
        const r = await ext.ready?.();
        if (r !== undefined && !r.ready) return { ready: false, component: ext.name, reason: r.reason ?? 'not_ready' };
      }
      return caughtUp ? { ready: true } : { ready: false, component: 'projections', reason: 'catching_up' };
    },
    routers: [
      createIngestRouter({ ingest, bodyLimitBytes: config.http.bodyLimitBytes, maxBatch: config.http.maxBatch }),
      createQueryRouter({ live, store }),
      createReplayRouter({ store, ...(replayPool ? { pool: replayPool } : {}) }),
      createProofRouter({ db: 'db' in store ? (store as SqliteEventStore).db : undefined }),
      ...extensions.flatMap((e) => e.routers ?? []),
    ],
    beforeScrape: async () => {
      const head = await store.headPosition();
      metrics.storeHead.set(Number(head));
      metrics.subscriberLag.set({ subscriber: 'live-projection' }, Number(head - live.position()));
      for (const ext of extensions) if (ext.lag) metrics.subscriberLag.set({ subscriber: ext.name }, Number(await ext.lag()));
      if (config.store.kind === 'sqlite') {
        const base = sqliteStorePath(config.dataDir);
        let bytes = 0;
        for (const f of [base, `${base}-wal`]) {
          try {
            bytes += statSync(f).size;
          } catch {
            // no WAL file yet
          }
        }
        metrics.storeBytes.set(bytes);
      }
    },
  });
  caughtUp = true;

  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL'
          ? new UnavailableError(`http.port: cannot listen on ${config.http.host}:${config.http.port} (${err.code})`, { cause: err })
          : err,
      ),
    );
    server.listen(config.http.port, config.http.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.http.port;
  const url = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${port}`;
  logger.info({ url }, 'iommutrail listening');

  let stopping: Promise<void> | null = null;
  const shutdown = (reason = 'shutdown'): Promise<void> =>
    (stopping ??= (async () => {
      logger.info({ reason }, 'shutting down: no new connections, finishing in-flight requests');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.http.shutdownGraceMs).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
      // every step runs whatever the one before it did (a full disk fails the projection's last snapshot): the
      // store is always closed and sealed last; nothing it acknowledged depends on the steps before
      const step = async (what: string, f: () => Promise<void> | void): Promise<void> => {
        try {
          await f();
        } catch (err) {
          logger.error({ err }, `shutdown: ${what} failed; continuing`);
        }
      };
      for (const ext of [...extensions].reverse()) await step(`stopping ${ext.name}`, () => ext.stop?.());
      await step('stopping the replay workers', () => replayPool?.close());
      await step('stopping the live projection', () => live.stop());
      await step('closing the snapshot store', () => {
        snapshots.close();
      });
      await step('closing the event store', () => store.close());
      logger.info('stopped');
    })());

  return { ...core, server, url, ...(minted ? { mintedToken: minted } : {}), shutdown };
};
