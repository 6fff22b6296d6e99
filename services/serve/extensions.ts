import { Counter, Gauge } from 'prom-client';
import { createFleetProjection } from '../../projections/index.js';
import { createAnalyticsProjector, type AnalyticsProjectorOptions, type AnalyticsProjectorStatus } from './analytics/analyticsProjector.js';
import { createAnalyticsQueries } from './analytics/analyticsQueries.js';
import { getClickHouseAnalyticsSink } from './analytics/clickhouseAnalyticsSink.js';
import { clickHouseTargetFromEnv, createAnalyticsClient, type AnalyticsClient } from './analytics/clickhouseClient.js';
import { loadDemoFleet } from './analytics/demoFleet.js';
import { migrate } from './analytics/migrate.js';
import { startPeriodicTask, type PeriodicTask } from './analytics/periodicTask.js';
import { createDashboardRouter } from './http/dashboard/dashboardRouter.js';
import { parseDurationNs } from '../shared/time.js';
import type { ServiceCore, ServiceExtension } from './server.js';

/**
 * The parts of the service wired from the core services: analytics (ClickHouse sink, dashboard) when
 * enabled. Kept apart from server.ts so the core starts without them (tests, --no-analytics).
 */
export const loadExtensions = async (core: ServiceCore): Promise<readonly ServiceExtension[]> => {
  const extensions: ServiceExtension[] = [];
  if (core.config.analytics.enabled) extensions.push(await createAnalyticsExtension(core));
  return extensions;
};

export interface AnalyticsExtensionOptions {
  /** the ClickHouse client (tests inject one) @defaultValue built from config.analytics / the data folder */
  readonly client?: AnalyticsClient;
  readonly retry?: AnalyticsProjectorOptions['retry'];
}

/** the ClickHouse sink, its dashboard, readiness and metrics */
export const createAnalyticsExtension = async (core: ServiceCore, options: AnalyticsExtensionOptions = {}): Promise<ServiceExtension> => {
  const { config, store, logger } = core;
  const env = { ...process.env, CLICKHOUSE_URL: config.analytics.url ?? '' };
  const ac = options.client ?? createAnalyticsClient({ target: clickHouseTargetFromEnv(env, config.dataDir) });
  await migrate(ac);
  const metrics = analyticsMetrics(core);
  const projector = createAnalyticsProjector({
    store,
    sink: getClickHouseAnalyticsSink(ac),
    fold: createFleetProjection(),
    // each event folded once in serve: the sink takes the live projection's fold once it caught up with it
    live: core.live,
    logger: logger.child({ component: 'analytics' }),
    hooks: {
      onFailure: () => metrics.failures.inc(),
      onQuarantined: (rows) => {
        for (const r of rows) metrics.quarantined.inc({ table: r.table });
      },
    },
  }, options.retry !== undefined ? { retry: options.retry } : {});
  metrics.watch(() => projector.status());
  const queries = createAnalyticsQueries(ac, { staleAfterNs: parseDurationNs(config.analytics.staleAfter)! });
  const analyticsLog = logger.child({ component: 'analytics' });
  let compaction: PeriodicTask | undefined;
  return {
    name: 'analytics',
    routers: [
      createDashboardRouter({
        analytics: queries,
        loadDemoFleet: () => loadDemoFleet(core.ingest),
        sinkStatus: () => projector.status(),
      }),
    ],
    // not ready while the sink cannot write (it retries by itself); quarantined rows do not stop it
    ready: () => {
      const s = projector.status();
      // a stable code: the engine's error text is logged by the sink, never put in the open /readyz answer
      return s.state === 'retrying' || s.state === 'failed' ? { ready: false, reason: `sink_${s.state}` } : { ready: true };
    },
    // the sink rebuilds its fold from the store before following the live projection: don't hold the API back for it
    start: async () => {
      void projector.start().catch((err: unknown) => logger.error({ err }, 'analytics projector failed to start'));
      // the open violations' pre-aggregate kept bounded by what is open (analyticsQueries compactOccurrences)
      compaction = startPeriodicTask(
        Number(parseDurationNs(config.analytics.compactEvery)! / 1_000_000n),
        async () => {
          const { settled, kept } = await queries.compactOccurrences();
          analyticsLog.info({ settled, kept }, 'open violations pre-aggregate compacted');
        },
        (err) => analyticsLog.warn({ err }, 'open violations pre-aggregate compaction failed (tried again at its next interval)'),
      );
    },
    stop: async () => {
      await compaction?.stop();
      await projector.stop();
      await ac.close();
    },
    lag: async () => (await store.headPosition()) - projector.position(),
  };
};

/** the sink's metrics, on the service's registry: whether it writes, its failures, rows quarantined */
const analyticsMetrics = (core: ServiceCore) => {
  const registers = [core.metrics.registry];
  let status: () => AnalyticsProjectorStatus | undefined = () => undefined;
  new Gauge({
    name: 'iommutrail_analytics_sink_up',
    help: '1 while the analytics sink writes (or is caught up), 0 while its writes fail and are retried',
    registers,
    collect() {
      const s = status();
      this.set(s === undefined || s.state === 'ok' || s.state === 'starting' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'iommutrail_analytics_sink_consecutive_failures',
    help: 'failed attempts of the analytics sink since its last success',
    registers,
    collect() {
      this.set(status()?.consecutiveFailures ?? 0);
    },
  });
  return {
    failures: new Counter({ name: 'iommutrail_analytics_sink_failures_total', help: 'failed analytics sink writes, checkpoint reads and subscriptions (each retried)', registers }),
    quarantined: new Counter({ name: 'iommutrail_analytics_rows_quarantined_total', help: 'rows the analytics sink could not write, set aside in sink_quarantine', labelNames: ['table'], registers }),
    watch: (s: () => AnalyticsProjectorStatus) => {
      status = s;
    },
  };
};
