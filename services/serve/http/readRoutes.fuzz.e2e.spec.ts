import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateHistory } from '../../../projections/testing/generateHistory.js';
import { startTestService, type TestService } from '../testing/service.js';

/**
 * Hardening #14: a query-parameter fuzz of every read route of the query and replay API (the /v1/analytics
 * routes have their own, beside the dashboard router). Values are mostly of the right kind, so requests get
 * past parsing into the folds and reads, with garbage mixed in; every answer must be a 2xx or a 4xx.
 */
const ROUTES = [
  { path: () => '/v1/hosts', params: ['limit', 'cursor'] },
  { path: (h: string) => `/v1/hosts/${h}/state`, params: ['at', 'position'] },
  { path: (h: string) => `/v1/hosts/${h}/groups`, params: ['at', 'position', 'limit', 'cursor'] },
  { path: (h: string) => `/v1/hosts/${h}/devices`, params: ['at', 'position', 'limit', 'cursor'] },
  { path: (h: string, g: string) => `/v1/hosts/${h}/groups/${g}`, params: ['at', 'position'] },
  { path: (h: string, _g: string, d: string) => `/v1/hosts/${h}/devices/${d}`, params: ['at', 'position'] },
  { path: (h: string, g: string) => `/v1/hosts/${h}/groups/${g}/timeline`, params: ['from', 'to', 'limit', 'cursor'] },
  { path: (h: string, _g: string, d: string) => `/v1/hosts/${h}/devices/${d}/timeline`, params: ['from', 'to', 'limit', 'cursor'] },
  { path: (h: string, g: string) => `/v1/hosts/${h}/groups/${g}/diff`, params: ['from', 'to', 'fromPosition', 'toPosition'] },
  { path: () => '/v1/violations', params: ['host', 'rule', 'severity', 'status', 'from', 'to', 'at', 'limit', 'cursor'] },
  { path: (h: string) => `/v1/hosts/${h}/sequence`, params: [] },
  { path: (h: string) => `/v1/hosts/${h}/objects`, params: ['at', 'position'] },
  { path: () => '/v1/rules', params: [] },
  { path: (h: string) => `/v1/hosts/${h}/replay`, params: ['variant', 'stage'], method: 'POST' },
] as const;

describe('Query API > query-parameter fuzz of every read route', () => {
  let svc: TestService;
  let hosts: string[];

  beforeAll(async () => {
    svc = await startTestService({ http: { ratePerMinute: 1_000_000 } });
    const events = generateHistory({ events: 1_500, hosts: 3 });
    const res = await svc.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
    expect(res.status).toBe(200);
    hosts = [...new Set(events.map((e) => e.host))];
  });
  afterAll(async () => {
    await svc.dispose();
  });

  const value = fc.oneof(
    fc.constantFrom('0', '1', '-1', '2', '20', '1000', '9223372036854775807', '9223372036854775808', '99999999999999999999'),
    fc.constantFrom('2025-11-23T03:12:00Z', '2025-11-23', '2099-12-31T00:00:00Z', '1970-01-01T00:00:00Z', '-1h', 'yesterday', 'now'),
    fc.constantFrom('open', 'closed', 'all', 'critical', 'warning', 'info', 'upstream', 'stage2', 'legacy', 'bogus', 'group-not-viable'),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
    fc.string({ maxLength: 30 }),
    fc.constantFrom('', ' ', '%', "'", '"; DROP TABLE events; --', '\u0000', 'a'.repeat(300)),
  );

  it('hardening #14: arbitrary query parameters on every read route give 2xx or 4xx, never 5xx', async () => {
    const answered = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: ROUTES.length - 1 }),
        fc.oneof(fc.constantFrom(...[0, 1, 2]), fc.constant(-1)),
        fc.oneof(fc.constantFrom('1', '7', '12', '0', '-1', '99999999999', 'x'), fc.nat({ max: 40 }).map(String)),
        fc.oneof(fc.constantFrom('0000:01:00.0', '0000:00:02.0', '0000:03:00.0', 'zz', '..'), fc.string({ maxLength: 12 })),
        fc.array(fc.tuple(fc.oneof(fc.constantFrom('at', 'position', 'limit', 'cursor', 'from', 'to', 'status', 'host', 'rule'), fc.string({ maxLength: 8 })), value), { maxLength: 4 }),
        async (routeIndex, hostIndex, group, device, extra) => {
          const route = ROUTES[routeIndex]!;
          const host = hostIndex >= 0 ? hosts[hostIndex % hosts.length]! : 'no-such-host';
          const query = new URLSearchParams();
          for (const [k, v] of extra) query.append(route.params.length > 0 && k.length === 0 ? route.params[0]! : k, v);
          const path = `${route.path(encodeURIComponent(host), encodeURIComponent(group), encodeURIComponent(device))}?${query.toString()}`;
          const res = await svc.call(path, { method: 'method' in route ? route.method : 'GET', as: 'read' });
          const body = await res.text();
          const kind = `${res.status >= 200 && res.status < 300 ? '2xx' : res.status}`;
          answered.set(kind, (answered.get(kind) ?? 0) + 1);
          if (res.status >= 500 && res.status !== 503) expect.fail(`${res.status} for ${path}: ${body.slice(0, 300)}`);
          // 503 only as the admission limit's answer (with Retry-After), never as a failure
          if (res.status === 503) expect(res.headers.get('retry-after')).not.toBeNull();
        },
      ),
      { numRuns: 400 },
    );
    // the fuzz reached the routes' work, not only their parsers
    expect(answered.get('2xx') ?? 0).toBeGreaterThan(40);
    expect((await svc.call('/healthz', { as: 'none' })).status).toBe(200);
  });
});
