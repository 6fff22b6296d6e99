import { z } from 'zod';
import { IommuEventSchema } from '../../../schemas/index.js';
import { TABLE_NAMES } from '../analytics/analyticsQueries.js';

type Param = { name: string; in: 'path' | 'query'; description: string; required?: boolean; schema?: Record<string, unknown> };
interface Route {
  method: 'get' | 'post';
  path: string;
  summary: string;
  role: 'open' | 'ingest' | 'read' | 'admin';
  params?: Param[];
  body?: boolean;
}

const at: Param[] = [
  { name: 'at', in: 'query', description: 'state as of this time: ISO-8601 (up to ns; no zone means UTC), a date, a relative time (-1h, -7d, yesterday 03:00) or ns since the epoch; echoed resolved as asOfTime' },
  { name: 'position', in: 'query', description: 'state as of this store position (inclusive)' },
];
const pageParams: Param[] = [
  { name: 'limit', in: 'query', description: 'page size (1..10000, default 100)', schema: { type: 'integer' } },
  { name: 'cursor', in: 'query', description: 'nextCursor of the previous page' },
];
const hostP: Param = { name: 'host', in: 'path', description: 'host name', required: true };
const groupP: Param = { name: 'group', in: 'path', description: 'IOMMU group number', required: true, schema: { type: 'integer' } };
const deviceP: Param = { name: 'device', in: 'path', description: 'PCI address (0000:01:00.0) or mdev UUID', required: true };

// the dashboard's data: every figure the page shows comes from these
const analyticsTime = 'ISO-8601 with a zone, a UTC date (2024-11-24), now, relative (-24h, -7d) or ns since the epoch';
const analyticsFilters: Param[] = [
  { name: 'host', in: 'query', description: 'host names (repeated or comma separated); unknown ones are named in `warnings`' },
  { name: 'rule', in: 'query', description: 'rule ids (repeated or comma separated)' },
  { name: 'severity', in: 'query', description: 'critical | warning | info' },
  { name: 'from', in: 'query', description: `start of the period: ${analyticsTime} (default: the first event of the scope)` },
  { name: 'to', in: 'query', description: `end of the period and "as of" moment: ${analyticsTime} (default: the latest event)` },
  { name: 'staleAfter', in: 'query', description: 'a collector silent this long makes its host-days "not assessed" (30m, 6h, 2d); default: the service setting analytics.staleAfter (IOMMUTRAIL_STALE_AFTER, 24h)' },
];

export const ROUTES: Route[] = [
  { method: 'get', path: '/healthz', summary: 'liveness', role: 'open' },
  { method: 'get', path: '/readyz', summary: 'readiness: store reachable and projections caught up', role: 'open' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', role: 'read' },
  { method: 'post', path: '/v1/events', summary: 'ingest one event, a JSON array, or NDJSON; answers per event', role: 'ingest', body: true },
  { method: 'get', path: '/v1/hosts', summary: 'hosts tracked', role: 'read', params: pageParams },
  { method: 'get', path: '/v1/hosts/{host}/state', summary: 'a host state, now or as of a time/position', role: 'read', params: [hostP, ...at] },
  { method: 'get', path: '/v1/hosts/{host}/groups', summary: 'IOMMU groups of a host', role: 'read', params: [hostP, ...at, ...pageParams] },
  { method: 'get', path: '/v1/hosts/{host}/devices', summary: 'devices of a host', role: 'read', params: [hostP, ...at, ...pageParams] },
  { method: 'get', path: '/v1/hosts/{host}/groups/{group}', summary: 'a group with its devices and open violations', role: 'read', params: [hostP, groupP, ...at] },
  { method: 'get', path: '/v1/hosts/{host}/devices/{device}', summary: 'a device, with its vDEVICEs, the page tables it is nested under, its pending faults and reset fence', role: 'read', params: [hostP, deviceP, ...at] },
  { method: 'get', path: '/v1/hosts/{host}/objects', summary: 'the iommufd objects after 6.6 (vIOMMU, vDEVICE, nested hwpt, fault queue, vEVENTQ, HW queue) with owners and links', role: 'read', params: [hostP, ...at] },
  {
    method: 'get',
    path: '/v1/hosts/{host}/groups/{group}/timeline',
    summary: 'events that changed the group, each with its change',
    role: 'read',
    params: [hostP, groupP, { name: 'from', in: 'query', description: 'time' }, { name: 'to', in: 'query', description: 'time' }, ...pageParams],
  },
  {
    method: 'get',
    path: '/v1/hosts/{host}/devices/{device}/timeline',
    summary: 'events that changed the device, each with its change',
    role: 'read',
    params: [hostP, deviceP, { name: 'from', in: 'query', description: 'time' }, { name: 'to', in: 'query', description: 'time' }, ...pageParams],
  },
  {
    method: 'get',
    path: '/v1/hosts/{host}/groups/{group}/diff',
    summary: 'what changed in a group between two times or positions',
    role: 'read',
    params: [
      hostP,
      groupP,
      { name: 'from', in: 'query', description: 'time' },
      { name: 'to', in: 'query', description: 'time (default: now)' },
      { name: 'fromPosition', in: 'query', description: 'position' },
      { name: 'toPosition', in: 'query', description: 'position' },
    ],
  },
  {
    method: 'get',
    path: '/v1/violations',
    summary: 'violations filtered by host, rule, severity, status and time',
    role: 'read',
    params: [
      { name: 'host', in: 'query', description: 'host name' },
      { name: 'rule', in: 'query', description: 'rule id (see /v1/rules)' },
      { name: 'severity', in: 'query', description: 'critical | warning | info' },
      { name: 'status', in: 'query', description: 'open | closed | all (default)' },
      { name: 'from', in: 'query', description: 'time: open interval meets [from, to]' },
      { name: 'to', in: 'query', description: 'time' },
      { name: 'at', in: 'query', description: 'only those open at this time' },
      ...pageParams,
    ],
  },
  { method: 'get', path: '/v1/rules', summary: 'the violation rule catalogue', role: 'read' },
  {
    method: 'get',
    path: '/v1/analytics/summary',
    summary: 'fleet summary as of `to`: hosts, groups, open violations by rule and severity, the period’s compliance headline (README, "Compliance"), warnings for filter values that match nothing',
    role: 'read',
    params: analyticsFilters,
  },
  {
    method: 'get',
    path: '/v1/analytics/compliance',
    summary: 'compliance by the one definition: headline, per host, per UTC day, per host-day (compliant, non-compliant, not assessed with the reason)',
    role: 'read',
    params: analyticsFilters,
  },
  {
    method: 'get',
    path: '/v1/analytics/tables/{name}',
    summary: 'a dashboard table: one page as JSON ({ rows, total, offset, limit }) or every row as CSV (streamed; a failure mid-way ends the file with an INCOMPLETE line)',
    role: 'read',
    params: [
      { name: 'name', in: 'path', description: 'table name', required: true, schema: { type: 'string', enum: [...TABLE_NAMES] } },
      ...analyticsFilters,
      { name: 'subject', in: 'query', description: 'host of the drill-down tables (host-groups, group-timeline)' },
      { name: 'group', in: 'query', description: 'group of group-timeline', schema: { type: 'integer' } },
      { name: 'violation', in: 'query', description: 'violation key of violation-events' },
      { name: 'at', in: 'query', description: `state tables as of this moment: ${analyticsTime}` },
      { name: 'open', in: 'query', description: '1: only violations open as of `at`/`to`' },
      { name: 'limit', in: 'query', description: 'page size (1..100000, default 1000)', schema: { type: 'integer' } },
      { name: 'offset', in: 'query', description: 'rows skipped', schema: { type: 'integer' } },
      { name: 'format', in: 'query', description: 'json (default) | csv' },
    ],
  },
  {
    method: 'get',
    path: '/v1/analytics/violations/{key}/story',
    summary: 'a violation’s drill-down: the events before it, its opening, evidence and closing events, the actors, the rule in words, a link to the group at that moment',
    role: 'read',
    params: [{ name: 'key', in: 'path', description: 'violation key (violation_key of the violations table)', required: true }],
  },
  {
    method: 'get',
    path: '/v1/analytics/stories',
    summary: 'the stories of one page of the violations table at once ({ stories, total, offset, limit }): what a report of every finding reads, in a fixed number of queries',
    role: 'read',
    params: [
      ...analyticsFilters,
      { name: 'open', in: 'query', description: '1: only violations open as of `to`' },
      { name: 'limit', in: 'query', description: 'page size (1..100000, default 1000)', schema: { type: 'integer' } },
      { name: 'offset', in: 'query', description: 'violations skipped', schema: { type: 'integer' } },
      { name: 'context', in: 'query', description: 'events before each opening to include (0..100, default 0)', schema: { type: 'integer' } },
    ],
  },
  { method: 'get', path: '/v1/analytics/facets', summary: 'hosts, rules and severities with data, for the filter pickers', role: 'read' },
  { method: 'get', path: '/v1/analytics/status', summary: 'whether the analytics sink is writing, its last error, rows quarantined', role: 'read' },
  { method: 'post', path: '/v1/admin/demo-fleet', summary: 'append the simulator’s demo fleet to the store (the dashboard’s "Load demo fleet")', role: 'admin' },
  { method: 'get', path: '/v1/hosts/{host}/sequence', summary: 'per-host sequence gaps and reordering, as the projection folded the store\'s events (whatever path stored them)', role: 'read', params: [hostP] },
  {
    method: 'post',
    path: '/v1/hosts/{host}/replay',
    summary: "replay the host's history against a protocol variant",
    role: 'read',
    params: [hostP, { name: 'variant', in: 'query', description: 'legacy | stage1 | stage2 | stage3 | upstream, or upstream@<release> (every host judged as that kernel release, 5.19 to 7.3)', required: true }, { name: 'compareWith', in: 'query', description: 'a second variant or release stage' }],
  },
];

/** OpenAPI 3.1 (whose schemas are JSON Schema 2020-12, what zod emits) of the service */
export const buildOpenApi = (version: string): Record<string, unknown> => {
  const eventSchema = z.toJSONSchema(IommuEventSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  const problem = { $ref: '#/components/schemas/Problem' };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const responses: Record<string, unknown> = { 200: { description: 'OK' } };
    if (r.role !== 'open') {
      responses[401] = { description: 'no or unknown bearer token', content: { 'application/problem+json': { schema: problem } } };
      responses[403] = { description: `token lacks the ${r.role} role`, content: { 'application/problem+json': { schema: problem } } };
    }
    if (r.params?.length || r.body) responses[400] = { description: 'invalid parameter or body; `errors` names each field', content: { 'application/problem+json': { schema: problem } } };
    if (r.path.includes('{name}') || r.path.includes('{key}')) responses[404] = { description: 'unknown table or violation', content: { 'application/problem+json': { schema: problem } } };
    if (r.path.startsWith('/v1/analytics/')) responses[503] = { description: 'too many heavy reads at once (Retry-After)', content: { 'application/problem+json': { schema: problem } } };
    if (r.path.includes('{host}')) responses[404] = { description: 'unknown host, group or device', content: { 'application/problem+json': { schema: problem } } };
    if (r.path === '/v1/events') {
      responses[207] = { description: 'some events stored, some rejected or in conflict (see results)' };
      responses[409] = { description: 'every event is a conflict: its id is stored with other content (each result names the stored event)' };
      responses[413] = { description: 'body or batch too large', content: { 'application/problem+json': { schema: problem } } };
      responses[429] = { description: 'rate limit for this token exceeded', content: { 'application/problem+json': { schema: problem } } };
    }
    paths[r.path] = {
      ...(paths[r.path] ?? {}),
      [r.method]: {
        summary: r.summary,
        ...(r.role === 'open' ? { security: [] } : { 'x-required-role': r.role }),
        parameters: (r.params ?? []).map((p) => ({ name: p.name, in: p.in, description: p.description, required: p.required ?? p.in === 'path', schema: p.schema ?? { type: 'string' } })),
        ...(r.body
          ? {
              requestBody: {
                required: true,
                content: {
                  'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/IommuEvent' }, { type: 'array', items: { $ref: '#/components/schemas/IommuEvent' } }] } },
                  'application/x-ndjson': { schema: { type: 'string', description: 'one IommuEvent per line' } },
                },
              },
            }
          : {}),
        responses,
      },
    };
  }
  const { $schema: _drop, ...eventComponent } = eventSchema as Record<string, unknown>;
  return {
    openapi: '3.1.0',
    info: { title: 'iommutrail', version, description: 'Ingest and forensic queries over IOMMU ownership events. Roles: ingest, read, admin (admin implies all).' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        IommuEvent: eventComponent,
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
            requestId: { type: 'string' },
          },
        },
      },
    },
    paths,
  };
};
