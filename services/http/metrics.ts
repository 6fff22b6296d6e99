import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** the service's Prometheus metrics, on their own registry (tests create one per app) */
export const createServiceMetrics = () => {
  const registry = new Registry();
  // prom-client's default names start with process_ / nodejs_ already: the prefix is the product's name only
  collectDefaultMetrics({ register: registry, prefix: 'iommutrail_' });
  const metrics = {
    registry,
    ingested: new Counter({ name: 'iommutrail_ingest_events_total', help: 'events accepted (stored) by ingest, by host', labelNames: ['host'], registers: [registry] }),
    duplicates: new Counter({ name: 'iommutrail_ingest_duplicates_total', help: 'events already stored (idempotent retries)', registers: [registry] }),
    conflicts: new Counter({ name: 'iommutrail_ingest_conflicts_total', help: 'events whose id is stored with other content (nothing of them stored)', registers: [registry] }),
    rejected: new Counter({ name: 'iommutrail_ingest_rejected_total', help: 'events rejected by validation', registers: [registry] }),
    sequenceGaps: new Counter({ name: 'iommutrail_sequence_gaps_total', help: 'per-host sequence gaps opened', labelNames: ['host'], registers: [registry] }),
    outOfOrder: new Counter({ name: 'iommutrail_out_of_order_total', help: 'per-host events that arrived after a later one', labelNames: ['host'], registers: [registry] }),
    requestSeconds: new Histogram({
      name: 'iommutrail_http_request_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    heavyRejected: new Counter({ name: 'iommutrail_http_heavy_rejected_total', help: 'heavy reads refused with 503 because every slot and queue place was taken', registers: [registry] }),
    subscriberLag: new Gauge({ name: 'iommutrail_subscriber_lag_events', help: 'events between the store head and each subscriber', labelNames: ['subscriber'], registers: [registry] }),
    storeBytes: new Gauge({ name: 'iommutrail_store_bytes', help: 'size of the event store on disk', registers: [registry] }),
    storeHead: new Gauge({ name: 'iommutrail_store_head_position', help: 'global position of the newest stored event', registers: [registry] }),
  };
  return metrics;
};
export type ServiceMetrics = ReturnType<typeof createServiceMetrics>;
