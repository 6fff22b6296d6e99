import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { NotFoundError, ValidationError, type FieldIssue } from '../../../../schemas/index.js';
import type { AnalyticsProjectorStatus } from '../../analytics/analyticsProjector.js';
import { isTableName, type AnalyticsFilters, type AnalyticsQueries, type TableParams } from '../../analytics/analyticsQueries.js';
import { formatTime } from '../../analytics/humanize.js';
import { parseDurationNs, parseTimeNs } from '../../../shared/time.js';

export interface DashboardRouterDeps {
  /** read side of the analytics tables */
  readonly analytics: AnalyticsQueries;
  /** appends the simulator's demo fleet to the store; absent → the action answers 404 */
  readonly loadDemoFleet?: () => Promise<unknown>;
  /** the sink's state (the dashboard shows a banner when it is not writing or quarantined rows) */
  readonly sinkStatus?: () => AnalyticsProjectorStatus;
}

const isoOf = (ms: number | undefined): string | null => (ms === undefined ? null : formatTime(BigInt(ms) * 1_000_000n));

/** the sink status as JSON: 64-bit position as a string, times as ISO-8601 */
export const toSinkStatusBody = (s: AnalyticsProjectorStatus) => ({
  state: s.state,
  writing: s.state === 'ok' || s.state === 'starting',
  position: s.position.toString(),
  consecutiveFailures: s.consecutiveFailures,
  lastError: s.lastError ?? null,
  failingSince: isoOf(s.failingSinceMs),
  nextAttemptAt: isoOf(s.nextAttemptAtMs),
  quarantinedRows: s.quarantinedRows,
  lastQuarantineReason: s.lastQuarantineReason ?? null,
});

const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'static');
const CHART_JS = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');

// a list parameter: repeated (?host=a&host=b) or comma separated (?host=a,b)
const List = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0))
  .pipe(z.array(z.string().max(256)).max(200));

const Time = z.string().transform((s, ctx) => {
  // one time rule (params.parseTimeNs): relative times and `now` resolve when the request is served
  const ns = s === '' ? undefined : parseTimeNs(s);
  if (s !== '' && ns === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected ISO-8601 with a zone (2024-11-24T00:00:00Z), a UTC date (2024-11-24), now, a relative time (-24h, -7d) or ns since the epoch, got ${JSON.stringify(s)}` });
  }
  return ns;
});

const Duration = z.string().transform((s, ctx) => {
  const ns = parseDurationNs(s);
  if (ns === undefined || ns === 0n) ctx.addIssue({ code: 'custom', message: `expected a duration such as 30m, 6h or 2d, got ${JSON.stringify(s)}` });
  return ns ?? 0n;
});

const QuerySchema = z.object({
  host: List.optional(),
  rule: List.optional(),
  severity: List.optional(),
  from: Time.optional(),
  to: Time.optional(),
  at: Time.optional(),
  subject: z.string().min(1).max(256).optional(),
  group: z.coerce.number().int().min(0).max(4_294_967_295).optional(),
  violation: z.string().min(1).max(512).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).optional(),
  open: z.enum(['1', 'true', '0', 'false', '']).optional(),
  /** information records (severity info) counted too */
  info: z.enum(['1', 'true', '0', 'false', '']).optional(),
  staleAfter: Duration.optional(),
  format: z.enum(['json', 'csv']).optional(),
  context: z.coerce.number().int().min(0).max(100).optional(),
});

const parseQuery = (req: Request): z.output<typeof QuerySchema> => {
  const r = QuerySchema.safeParse(req.query);
  if (!r.success) {
    const issues: FieldIssue[] = r.error.issues.map((i) => ({ path: `query.${i.path.join('.')}`, message: i.message }));
    throw new ValidationError(`invalid analytics query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return r.data;
};

const toFilters = (q: z.output<typeof QuerySchema>): AnalyticsFilters => ({
  ...(q.host && q.host.length > 0 ? { hosts: q.host } : {}),
  ...(q.rule && q.rule.length > 0 ? { rules: q.rule } : {}),
  ...(q.severity && q.severity.length > 0 ? { severities: q.severity } : {}),
  ...(q.from !== undefined ? { fromNs: q.from } : {}),
  ...(q.to !== undefined ? { toNs: q.to } : {}),
  ...(q.staleAfter !== undefined ? { staleAfterNs: q.staleAfter } : {}),
  ...(q.info === '1' || q.info === 'true' ? { includeInfo: true } : {}),
});

/** JSON with 64-bit values as decimal strings */
const sendJson = (res: Response, body: unknown): void => {
  res.type('application/json').send(JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
};

const toTableParams = (q: z.output<typeof QuerySchema>): TableParams => ({
  ...toFilters(q),
  ...(q.subject !== undefined ? { host: q.subject } : {}),
  ...(q.group !== undefined ? { group: q.group } : {}),
  ...(q.violation !== undefined ? { violationKey: q.violation } : {}),
  ...(q.at !== undefined ? { atNs: q.at } : {}),
  ...(q.limit !== undefined ? { limit: q.limit } : {}),
  ...(q.offset !== undefined ? { offset: q.offset } : {}),
  ...(q.open === '1' || q.open === 'true' ? { openOnly: true } : {}),
});

/**
 * Every row, page by page, as it is read: the first page is read before the status line, so an error there is
 * an ordinary problem answer; a failure later ends the file with an `INCOMPLETE` line and aborts the
 * connection, so a partial export never passes for a complete one.
 */
const streamCsv = async (res: Response, name: string, chunks: AsyncGenerator<string>): Promise<void> => {
  const first = await chunks.next();
  res.type('text/csv').attachment(`${name}.csv`);
  res.write(first.done === true ? '' : first.value);
  try {
    for await (const chunk of chunks) {
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
  } catch (e) {
    res.write(`"INCOMPLETE EXPORT: ${String((e as Error).message).replaceAll('"', '""').slice(0, 300)}"\n`);
    res.destroy();
  }
};

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap =
  (h: Handler) =>
  (req: Request, res: Response, next: NextFunction): void => {
    h(req, res).catch(next);
  };

/**
 * The compliance dashboard: the page at `/dashboard` (static HTML + JS, chart.js served from
 * node_modules) and its JSON/CSV API under `/v1/analytics` (auth applies there, in front of this router).
 *
 * - `GET /v1/analytics/summary?host=&rule=&severity=&from=&to=&staleAfter=` fleet summary as of `to`, with the
 *   period's compliance headline and warnings for filter values that match nothing
 * - `GET /v1/analytics/compliance?…` the period's compliance by the one definition: headline, per host, per day, per host-day
 * - `GET /v1/analytics/violations/:key/story` a violation's drill-down: events around it, actors, the rule in words
 * - `GET /v1/analytics/stories?…&limit=&offset=&context=` the stories of one page of the violations table at once
 *   (a report's findings), with the total
 * - `GET /v1/analytics/facets` values for the filter pickers
 * - `GET /v1/analytics/status` whether the sink is writing, its last error, rows quarantined
 * - `GET /v1/analytics/tables/:name?…&format=csv` every table, JSON (one page: `limit`, `offset`, with `total`)
 *   or CSV (every row, streamed page by page; a failure mid-way ends the file with an INCOMPLETE line);
 *   drill-down subjects: `subject` (host), `group`, `violation`, `at`; `open=1` keeps open violations
 * - `POST /v1/admin/demo-fleet` loads the simulator's demo fleet (admin role)
 */
export const createDashboardRouter = (deps: DashboardRouterDeps): Router => {
  const router = express.Router();

  router.get('/dashboard', (_req, res) => {
    res.sendFile(join(STATIC_DIR, 'index.html'));
  });
  router.get('/dashboard/assets/chart.umd.min.js', (_req, res) => {
    res.type('application/javascript').sendFile(CHART_JS);
  });
  router.use('/dashboard/assets', express.static(STATIC_DIR, { index: false, fallthrough: true }));

  router.get(
    '/v1/analytics/summary',
    wrap(async (req, res) => {
      res.json(await deps.analytics.summary(toFilters(parseQuery(req))));
    }),
  );
  router.get(
    '/v1/analytics/compliance',
    wrap(async (req, res) => {
      const f = toFilters(parseQuery(req));
      const [result, warnings] = await Promise.all([deps.analytics.compliance(f), deps.analytics.warnings(f)]);
      sendJson(res, { ...result, warnings });
    }),
  );
  router.get(
    '/v1/analytics/violations/:key/story',
    wrap(async (req, res) => {
      const key = String(req.params.key);
      if (key.length === 0 || key.length > 512) throw new ValidationError('violation key: expected 1 to 512 characters', [{ path: 'path.key', message: 'length' }]);
      sendJson(res, await deps.analytics.story(key));
    }),
  );
  router.get(
    '/v1/analytics/stories',
    wrap(async (req, res) => {
      const q = parseQuery(req);
      sendJson(res, await deps.analytics.stories(toTableParams(q), q.context ?? 0));
    }),
  );
  router.get(
    '/v1/analytics/facets',
    wrap(async (_req, res) => {
      res.json(await deps.analytics.facets());
    }),
  );
  router.get(
    '/v1/analytics/status',
    wrap(async (_req, res) => {
      if (deps.sinkStatus === undefined) throw new NotFoundError('this service was started without the analytics sink');
      res.json(toSinkStatusBody(deps.sinkStatus()));
    }),
  );
  router.get(
    '/v1/analytics/tables/:name',
    wrap(async (req, res) => {
      const name = String(req.params.name);
      if (!isTableName(name)) throw new NotFoundError(`no analytics table ${JSON.stringify(name)}`);
      const q = parseQuery(req);
      const params = toTableParams(q);
      if (q.format === 'csv') {
        await streamCsv(res, name, deps.analytics.csvChunks(name, params));
        return;
      }
      const page = await deps.analytics.page(name, params);
      res.json({ table: name, ...page });
    }),
  );
  router.post(
    '/v1/admin/demo-fleet',
    wrap(async (_req, res) => {
      if (deps.loadDemoFleet === undefined) throw new NotFoundError('this service was started without a demo fleet loader');
      res.status(202).json(await deps.loadDemoFleet());
    }),
  );
  return router;
};
