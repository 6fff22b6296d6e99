import { z } from 'zod';
import { IommuEventSchema } from '../../schemas/index.js';

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
  { method: 'get', path: '/v1/hosts/{host}/devices/{device}', summary: 'a device', role: 'read', params: [hostP, deviceP, ...at] },
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
  { method: 'get', path: '/v1/hosts/{host}/sequence', summary: 'per-host sequence gaps and reordering, as the projection folded the store\'s events (whatever path stored them)', role: 'read', params: [hostP] },
  {
    method: 'post',
    path: '/v1/hosts/{host}/replay',
    summary: "replay the host's history against a protocol variant",
    role: 'read',
    params: [hostP, { name: 'variant', in: 'query', description: 'legacy | stage1 | stage2 | stage3 | upstream', required: true }, { name: 'compareWith', in: 'query', description: 'a second variant' }],
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
