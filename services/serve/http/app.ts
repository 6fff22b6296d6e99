import express, { type Express, type RequestHandler, type Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Role } from '../../shared/config/config.js';
import { scrubSecrets } from '../../shared/config/logger.js';
import type { TokenIdentity } from '../../shared/config/tokens.js';
import { createAdmission } from './admission.js';
import { requireRole } from './auth.js';
import type { ServiceMetrics } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { problemMiddleware, sendProblem } from './problem.js';

const require = createRequire(import.meta.url);

export interface AppDeps {
  readonly version: string;
  readonly logger: Logger;
  readonly metrics: ServiceMetrics;
  readonly identify: (token: string) => TokenIdentity | undefined;
  /** requests per token per minute */
  readonly ratePerMinute: number;
  /** ready when the store answers and the projections caught up once; a failure names the component and a stable reason code */
  readonly ready: () => Promise<Readiness>;
  /** API routers under /v1: behind auth (role from {@link roleFor}) and the per-token rate limit */
  readonly routers: readonly Router[];
  /** the admission limit shared by the heavy reads ({@link isHeavyRequest}) */
  readonly heavy: { readonly concurrency: number; readonly queue: number };
  /** refreshed before each /metrics scrape */
  readonly beforeScrape?: () => Promise<void> | void;
}

/**
 * The role each API call needs, in one place: writing events needs ingest, admin operations admin,
 * everything else (reads, replays, which change nothing) read. admin implies every role.
 */
export const roleFor = (method: string, path: string): Role => {
  // express matches routes case-insensitively and with a trailing slash: judge the path the same way
  const p = path.toLowerCase().replace(/\/+$/, '');
  if (p.startsWith('/admin')) return 'admin';
  if (method === 'POST' && p === '/events') return 'ingest';
  return 'read';
};

/**
 * A readiness answer: when not ready, the failing component and a stable reason code, never an exception's text
 * (the checker logs that instead), so probes can match on it and nothing internal leaks to an open route.
 */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly component: string; readonly reason: string };

/**
 * The reads that may fold or scan a whole history, in one place: replays, timelines, diffs, states as of a past
 * point, violations as of a time, analytics tables. They share one admission limit; everything else (health,
 * ingest, current state) never waits behind them.
 */
export const isHeavyRequest = (method: string, path: string, query: Record<string, unknown>): boolean => {
  const p = path.toLowerCase().replace(/\/+$/, '');
  if (method === 'POST') return /^\/hosts\/[^/]+\/replay$/.test(p);
  if (method !== 'GET') return false;
  if (/^\/hosts\/[^/]+\/(groups|devices)\/[^/]+\/(timeline|diff)$/.test(p) || p.startsWith('/analytics/')) return true;
  const past = query.at !== undefined || query.position !== undefined;
  return past && (/^\/hosts\/[^/]+\/(state|groups|devices)(\/[^/]+)?$/.test(p) || p === '/violations');
};

export const createApp = (deps: AppDeps): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', 'strong');
  app.set('query parser', 'simple');
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
      // whatever logger was given: no credential in a request line or an error line
      serializers: { req: toSafeRequestLog, err: toSafeErrorLog },
    }),
  );
  app.use((req, res, next) => {
    const end = deps.metrics.requestSeconds.startTimer();
    res.on('finish', () => end({ method: req.method, route: req.route?.path ?? 'unmatched', status: String(res.statusCode) }));
    next();
  });

  // open: health only
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (req, res) => {
    let r: Readiness;
    try {
      r = await deps.ready();
    } catch (err) {
      req.log.warn({ err }, 'readiness check failed');
      r = { ready: false, component: 'service', reason: 'check_failed' };
    }
    res.status(r.ready ? 200 : 503).json(r.ready ? { status: 'ready' } : { status: 'not ready', component: r.component, reason: r.reason });
  });
  const openapi = buildOpenApi(deps.version);
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  const swaggerDir = (require('swagger-ui-dist') as { getAbsoluteFSPath(): string }).getAbsoluteFSPath();
  app.use('/docs/assets', express.static(swaggerDir, { index: false }));
  app.get('/docs', (_req, res) => {
    res.type('html').send(API_REFERENCE_PAGE);
  });

  const limiter: RequestHandler = rateLimit({
    windowMs: 60_000,
    limit: deps.ratePerMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => req.identity?.name ?? 'anonymous',
    handler: (_req, res) => sendProblem(res, 429, 'too many requests', `more than ${deps.ratePerMinute} requests a minute for this token; retry after the Retry-After header`),
  });

  app.get('/metrics', requireRole(deps.identify, 'read'), async (_req, res) => {
    await deps.beforeScrape?.();
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  const guards = new Map<Role, RequestHandler>((['ingest', 'read', 'admin'] as const).map((r) => [r, requireRole(deps.identify, r)]));
  const admission = createAdmission({ ...deps.heavy, retryAfterSeconds: 1, onRejected: () => deps.metrics.heavyRejected.inc() });
  app.use(
    '/v1',
    (req, res, next) => guards.get(roleFor(req.method, req.path))!(req, res, next),
    limiter,
    (req, res, next) => (isHeavyRequest(req.method, req.path, req.query) ? admission.gate(req, res, next) : next()),
  );
  for (const router of deps.routers) app.use(router);

  app.use((_req, res) => sendProblem(res, 404, 'not found', 'no such route; see /openapi.json'));
  app.use(problemMiddleware);
  return app;
};

const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

/** a request as logged: its headers without credentials, its URL scrubbed (the query is in the URL, not repeated) */
const toSafeRequestLog = (req: { id?: unknown; method?: string; url?: string; headers?: Record<string, unknown>; remoteAddress?: string; remotePort?: number }) => ({
  id: req.id,
  method: req.method,
  url: typeof req.url === 'string' ? scrubSecrets(req.url) : req.url,
  headers: Object.fromEntries(Object.entries(req.headers ?? {}).map(([k, v]) => [k, SECRET_HEADERS.has(k.toLowerCase()) ? '[redacted]' : typeof v === 'string' ? scrubSecrets(v) : v])),
  remoteAddress: req.remoteAddress,
  remotePort: req.remotePort,
});

/** an error as logged: every string in it scrubbed (a library may quote a header or a URL in its message) */
const toSafeErrorLog = (err: Record<string, unknown>): unknown => {
  try {
    return JSON.parse(scrubSecrets(JSON.stringify(err, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))) as unknown;
  } catch {
    return { type: err.type, message: scrubSecrets(String(err.message)), stack: scrubSecrets(String(err.stack)) };
  }
};

const API_REFERENCE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iommutrail API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="api"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#api', deepLinking: true });</script>
</body></html>`;
