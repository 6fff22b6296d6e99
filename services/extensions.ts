import { createFleetProjection } from '../projections/index.js';
import { createAnalyticsProjector } from './analytics/analyticsProjector.js';
import { createAnalyticsQueries } from './analytics/analyticsQueries.js';
import { getClickHouseAnalyticsSink } from './analytics/clickhouseAnalyticsSink.js';
import { clickHouseTargetFromEnv, createAnalyticsClient } from './analytics/clickhouseClient.js';
import { loadDemoFleet } from './analytics/demoFleet.js';
import { migrate } from './analytics/migrate.js';
import { createDashboardRouter } from './http/dashboard/dashboardRouter.js';
import type { ServiceCore, ServiceExtension } from './server.js';

/**
 * The parts of the service wired from the core services: analytics (ClickHouse sink, dashboard) when
 * enabled. Kept apart from server.ts so the core starts without them (tests, --no-analytics).
 */
export const loadExtensions = async (core: ServiceCore): Promise<readonly ServiceExtension[]> => {
  const extensions: ServiceExtension[] = [];
  if (core.config.analytics.enabled) extensions.push(await analyticsExtension(core));
  return extensions;
};

const analyticsExtension = async (core: ServiceCore): Promise<ServiceExtension> => {
  const { config, store, logger } = core;
  const env = { ...process.env, CLICKHOUSE_URL: config.analytics.url ?? '' };
  const ac = createAnalyticsClient({ target: clickHouseTargetFromEnv(env, config.dataDir) });
  await migrate(ac);
  const projector = createAnalyticsProjector({ store, sink: getClickHouseAnalyticsSink(ac), fold: createFleetProjection() });
  return {
    name: 'analytics',
    routers: [createDashboardRouter({ analytics: createAnalyticsQueries(ac), loadDemoFleet: () => loadDemoFleet(store).then((r) => (void core.live.notify(), r)) })],
    // the sink rebuilds its fold from the store before subscribing: don't hold the API back for it
    start: async () => {
      void projector.start().catch((err: unknown) => logger.error({ err }, 'analytics projector failed to start'));
    },
    stop: async () => {
      await projector.stop();
      await ac.close();
    },
    lag: async () => (await store.headPosition()) - projector.position(),
  };
};
