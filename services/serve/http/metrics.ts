import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RULES } from '../../../projections/index.js';

/** what the open-violation gauges read at each scrape: every host's open violations */
export type OpenViolationSource = () => Iterable<readonly [string, { readonly violations: { readonly open: Readonly<Record<string, { readonly ruleId: string; readonly severity: string }>> } }]>;

/** open violations counted by rule (with its severity), added to `into` */
const countOpen = (open: Readonly<Record<string, { readonly ruleId: string; readonly severity: string }>>, into: Map<string, { severity: string; n: number }>) => {
  for (const v of Object.values(open)) {
    const c = into.get(v.ruleId) ?? { severity: v.severity, n: 0 };
    c.n += 1;
    into.set(v.ruleId, c);
  }
  return into;
};

/** the service's Prometheus metrics, on their own registry (tests create one per app) */
export const createServiceMetrics = (options: { readonly perHost?: boolean } = {}) => {
  const registry = new Registry();
  // a label per host makes /metrics grow with the fleet (593 kB at 1e4 hosts): fleet-wide by default,
  // per host only when asked (metrics.perHost)
  const hostLabel = options.perHost === true ? ['host'] : [];
  const hostLabels = (host: string): Record<string, string> => (options.perHost === true ? { host } : {});
  // prom-client's default names start with process_ / nodejs_ already: the prefix is the product's name only
  collectDefaultMetrics({ register: registry, prefix: 'iommutrail_' });
  const metrics = {
    registry,
    ingested: new Counter({ name: 'iommutrail_ingest_events_total', help: 'events accepted (stored) by ingest (by host with metrics.perHost)', labelNames: hostLabel, registers: [registry] }),
    duplicates: new Counter({ name: 'iommutrail_ingest_duplicates_total', help: 'events already stored (idempotent retries)', registers: [registry] }),
    conflicts: new Counter({ name: 'iommutrail_ingest_conflicts_total', help: 'events whose id is stored with other content (nothing of them stored)', registers: [registry] }),
    rejected: new Counter({ name: 'iommutrail_ingest_rejected_total', help: 'events rejected by validation', registers: [registry] }),
    sequenceGaps: new Counter({ name: 'iommutrail_sequence_gaps_total', help: 'sequence gaps opened (by host with metrics.perHost)', labelNames: hostLabel, registers: [registry] }),
    outOfOrder: new Counter({ name: 'iommutrail_out_of_order_total', help: 'events that arrived after a later one of their host (by host with metrics.perHost)', labelNames: hostLabel, registers: [registry] }),
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
  let source: OpenViolationSource = () => [];
  let byHost = false;
  // every rule of the catalogue with its severity, at 0 when none is open: a fixed set of series (bounded
  // cardinality) that alert rules can match without "absent()" tricks
  new Gauge({
    name: 'iommutrail_violations_open',
    help: 'violations open now, by rule and severity (the whole fleet)',
    labelNames: ['rule', 'severity'],
    registers: [registry],
    collect() {
      const counts = new Map<string, { severity: string; n: number }>(Object.values(RULES).map((r) => [r.id, { severity: r.severity, n: 0 }]));
      for (const [, state] of source()) countOpen(state.violations.open, counts);
      this.reset();
      for (const [rule, c] of counts) this.set({ rule, severity: c.severity }, c.n);
    },
  });
  // per host only when asked (metrics.violationsByHost): series only for the hosts with a violation open
  new Gauge({
    name: 'iommutrail_violations_open_by_host',
    help: 'violations open now, by host, rule and severity (only with metrics.violationsByHost; hosts with none open have no series)',
    labelNames: ['host', 'rule', 'severity'],
    registers: [registry],
    collect() {
      this.reset();
      if (!byHost) return;
      for (const [host, state] of source()) {
        for (const [rule, c] of countOpen(state.violations.open, new Map())) this.set({ host, rule, severity: c.severity }, c.n);
      }
    },
  });
  return {
    ...metrics,
    /** events stored for a host (one fleet-wide series unless metrics.perHost) */
    countIngested: (host: string, n: number): void => metrics.ingested.inc(hostLabels(host), n),
    /** a sequence fact the projection found for a host: a gap opened, or an event that came after a later one */
    countSequence: (host: string, kind: 'gap' | 'out-of-order'): void => (kind === 'gap' ? metrics.sequenceGaps : metrics.outOfOrder).inc(hostLabels(host)),
    /** where the open-violation gauges read from (the live projection's hosts), and whether per host too */
    watchViolations: (from: OpenViolationSource, options: { readonly byHost: boolean }): void => {
      source = from;
      byHost = options.byHost;
    },
  };
};
export type ServiceMetrics = ReturnType<typeof createServiceMetrics>;
