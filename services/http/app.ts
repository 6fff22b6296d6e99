import express, { type Express, type RequestHandler, type Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Role } from '../config/config.js';
import type { TokenIdentity } from '../config/tokens.js';
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
  /** ready when the store answers and the projections caught up once */
  readonly ready: () => Promise<{ ready: boolean; reason?: string }>;
  /** API routers under /v1: behind auth (role from {@link roleFor}) and the per-token rate limit */
  readonly routers: readonly Router[];
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
  app.get('/readyz', async (_req, res) => {
    const r = await deps.ready();
    res.status(r.ready ? 200 : 503).json(r.ready ? { status: 'ready' } : { status: 'not ready', reason: r.reason });
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
  app.use('/v1', (req, res, next) => guards.get(roleFor(req.method, req.path))!(req, res, next), limiter);
  for (const router of deps.routers) app.use(router);

  app.use((_req, res) => sendProblem(res, 404, 'not found', 'no such route; see /openapi.json'));
  app.use(problemMiddleware);
  return app;
};

const API_REFERENCE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iommutrail API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="api"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#api', deepLinking: true });</script>
</body></html>`;
