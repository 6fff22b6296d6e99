import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { ValidationError, joinPath } from '../../../schemas/index.js';
import { parseDurationNs } from '../time.js';

export const ROLES = ['ingest', 'read', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const TokenSchema = z.strictObject({
  name: z.string().min(1).max(64),
  /** sha256 of the bearer token, hex: tokens are never stored in clear; upper-case hex is normalised to lower-case */
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, { error: 'expected the sha256 of the token as 64 hex digits' })
    .transform((s) => s.toLowerCase()),
  roles: z.array(z.enum(ROLES)).min(1),
});
export type TokenConfig = z.output<typeof TokenSchema>;

/** a list of tokens: names and hashes unique (two entries for one hash would make its roles ambiguous) */
export const TokenListSchema = z.array(TokenSchema).superRefine((tokens, ctx) => {
  const names = new Set<string>();
  const hashes = new Set<string>();
  tokens.forEach((t, i) => {
    if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate token name ${JSON.stringify(t.name)}` });
    if (hashes.has(t.sha256)) ctx.addIssue({ code: 'custom', path: [i, 'sha256'], message: 'the same hash as an earlier token' });
    names.add(t.name);
    hashes.add(t.sha256);
  });
});

/** zod issues as field issues under `base` (a file or a settings path), unknown keys named as such */
export const toSettingIssues = (base: string, error: z.ZodError): { path: string; message: string }[] =>
  error.issues.map((i) => ({
    path: i.code === 'unrecognized_keys' ? joinPath(base, [...i.path, i.keys[0]!]) : joinPath(base, i.path),
    message: i.code === 'unrecognized_keys' ? 'unknown setting' : i.message,
  }));

/**
 * The one configuration of the service, validated at startup. Sources, later wins: defaults, the YAML/JSON
 * file (`--config` or IOMMUTRAIL_CONFIG), then IOMMUTRAIL_* environment variables. A wrong setting stops
 * startup with a message naming it.
 */
export const ConfigSchema = z.strictObject({
  dataDir: z.string().min(1).default('.data'),
  http: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8377),
      /** largest accepted request body */
      bodyLimitBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
      /** most events in one ingest request */
      maxBatch: z.number().int().min(1).default(10_000),
      /** requests per token per minute */
      ratePerMinute: z.number().int().min(1).default(6_000),
      /** grace for in-flight requests at shutdown */
      shutdownGraceMs: z.number().int().min(0).default(10_000),
      /** heavy reads (replays, timelines, past states, analytics tables) served at once */
      heavyConcurrency: z.number().int().min(1).default(2),
      /** heavy reads waiting for a slot; beyond, 503 with Retry-After */
      heavyQueue: z.number().int().min(0).default(8),
    })
    .prefault({}),
  store: z
    .strictObject({
      kind: z.enum(['sqlite', 'eventstoredb']).default('sqlite'),
      /** 'full': nothing acknowledged is lost on power failure; 'normal': a process crash loses nothing, a power failure may lose the last commits */
      durability: z.enum(['full', 'normal']).default('full'),
      /** esdb://… connection string when kind is eventstoredb */
      url: z.string().optional(),
      /**
       * folder of the signing key pair (default: the data folder). Put it outside the data folder, where whoever
       * can write the store cannot read the private key: then an edit of the store cannot be re-signed.
       */
      keyDir: z.string().min(1).optional(),
      /** how often a signed checkpoint (and seal) is cut while appends flow (default 1000); one is always cut at shutdown */
      checkpointIntervalMs: z.number().int().min(0).optional(),
      /** the transparency log's origin line, fixed when the store is created (default: iommutrail.local/log-<random>) */
      origin: z.string().regex(/^[^\s+]+$/, 'expected an origin without spaces or +').optional(),
    })
    .prefault({}),
  analytics: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** a ClickHouse server (http://…); when absent, chdb's embedded engine on <dataDir>/clickhouse */
      url: z.string().url().optional(),
      /**
       * a collector silent longer than this (no event, no heartbeat) makes its host-days "not assessed": the
       * default of the API, dashboard, CSV and report (a query's staleAfter overrides it)
       */
      staleAfter: z
        .string()
        .default('24h')
        .refine((s) => (parseDurationNs(s) ?? 0n) > 0n, 'expected a duration such as 30m, 6h or 2d'),
      /**
       * how often serve compacts the open violations' pre-aggregate (occurrences closed before the sink's
       * checkpoint leave its sets for a count: issue 23, it stays bounded by what is open, not by history)
       */
      compactEvery: z
        .string()
        .default('1h')
        .refine((s) => (parseDurationNs(s) ?? 0n) >= 60_000_000_000n, 'expected a duration of at least 1m such as 30m, 1h or 1d'),
    })
    .prefault({}),
  projections: z
    .strictObject({
      /** a snapshot of each host's state every N of its events: `?at=` costs a snapshot load plus at most N events */
      snapshotEvery: z.number().int().min(100).default(500),
      /**
       * closed violations kept in memory per host, the newest (issue 23: bounded per host, ~670 B each); older
       * ones are answered from snapshots (`?at=`), the analytics `violations` table and the host's replay
       */
      closedViolationLimit: z.number().int().min(1).default(20),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /** also export open violations per host (one series per host, rule and severity with any open): fleets of thousands want it off */
      violationsByHost: z.boolean().default(false),
      /** label the ingest and sequence counters by host (one series per host: /metrics then grows with the fleet) */
      perHost: z.boolean().default(false),
    })
    .prefault({}),
  auth: z
    .strictObject({
      tokens: TokenListSchema.default([]),
    })
    .prefault({}),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** IOMMUTRAIL_HTTP_PORT=9000 → { http: { port: 9000 } }; only these names are read */
const ENV_SETTINGS: Record<string, { path: string[]; type: 'string' | 'int' | 'bool' | 'tokens' }> = {
  IOMMUTRAIL_DATA_DIR: { path: ['dataDir'], type: 'string' },
  IOMMUTRAIL_HTTP_HOST: { path: ['http', 'host'], type: 'string' },
  IOMMUTRAIL_HTTP_PORT: { path: ['http', 'port'], type: 'int' },
  IOMMUTRAIL_HTTP_BODY_LIMIT_BYTES: { path: ['http', 'bodyLimitBytes'], type: 'int' },
  IOMMUTRAIL_HTTP_MAX_BATCH: { path: ['http', 'maxBatch'], type: 'int' },
  IOMMUTRAIL_HTTP_RATE_PER_MINUTE: { path: ['http', 'ratePerMinute'], type: 'int' },
  IOMMUTRAIL_HTTP_HEAVY_CONCURRENCY: { path: ['http', 'heavyConcurrency'], type: 'int' },
  IOMMUTRAIL_HTTP_HEAVY_QUEUE: { path: ['http', 'heavyQueue'], type: 'int' },
  IOMMUTRAIL_STORE_KIND: { path: ['store', 'kind'], type: 'string' },
  IOMMUTRAIL_STORE_DURABILITY: { path: ['store', 'durability'], type: 'string' },
  EVENTSTORE_URL: { path: ['store', 'url'], type: 'string' },
  IOMMUTRAIL_KEY_DIR: { path: ['store', 'keyDir'], type: 'string' },
  IOMMUTRAIL_CHECKPOINT_INTERVAL_MS: { path: ['store', 'checkpointIntervalMs'], type: 'int' },
  IOMMUTRAIL_LOG_ORIGIN: { path: ['store', 'origin'], type: 'string' },
  CLICKHOUSE_URL: { path: ['analytics', 'url'], type: 'string' },
  IOMMUTRAIL_ANALYTICS: { path: ['analytics', 'enabled'], type: 'bool' },
  IOMMUTRAIL_STALE_AFTER: { path: ['analytics', 'staleAfter'], type: 'string' },
  IOMMUTRAIL_COMPACT_EVERY: { path: ['analytics', 'compactEvery'], type: 'string' },
  IOMMUTRAIL_SNAPSHOT_EVERY: { path: ['projections', 'snapshotEvery'], type: 'int' },
  IOMMUTRAIL_METRICS_VIOLATIONS_BY_HOST: { path: ['metrics', 'violationsByHost'], type: 'bool' },
  IOMMUTRAIL_METRICS_PER_HOST: { path: ['metrics', 'perHost'], type: 'bool' },
  IOMMUTRAIL_LOG_LEVEL: { path: ['logLevel'], type: 'string' },
  /** `name:role+role:sha256hex` entries separated by commas */
  IOMMUTRAIL_TOKENS: { path: ['auth', 'tokens'], type: 'tokens' },
};

const setPath = (target: Record<string, unknown>, keys: string[], value: unknown): void => {
  let cur = target;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys.at(-1)!] = value;
};

const fromEnv = (name: string, raw: string, type: 'string' | 'int' | 'bool' | 'tokens'): unknown => {
  switch (type) {
    case 'string':
      return raw;
    case 'int': {
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) throw new ValidationError(`${name}: expected an integer, got ${JSON.stringify(raw)}`, [{ path: name, message: 'expected an integer' }]);
      return n;
    }
    case 'bool':
      if (!['true', 'false', '1', '0'].includes(raw)) throw new ValidationError(`${name}: expected true or false, got ${JSON.stringify(raw)}`, [{ path: name, message: 'expected true or false' }]);
      return raw === 'true' || raw === '1';
    case 'tokens':
      return raw
        .split(',')
        .filter((s) => s.trim() !== '')
        .map((entry) => {
          const [tokenName, roles, sha256] = entry.trim().split(':');
          return { name: tokenName, roles: (roles ?? '').split('+'), sha256 };
        });
  }
};

export interface LoadConfigOptions {
  readonly file?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly overrides?: ConfigInput;
}

/** defaults ← file ← environment ← overrides; throws a ValidationError naming each wrong setting */
export const loadConfig = (options: LoadConfigOptions = {}): Config => {
  const env = options.env ?? process.env;
  const file = options.file ?? env.IOMMUTRAIL_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) {
    if (!existsSync(file)) throw new ValidationError(`config: file ${file} does not exist`, [{ path: 'config', message: 'file does not exist' }]);
    const text = readFileSync(file, 'utf8');
    try {
      raw = (path.extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text)) ?? {};
    } catch (e) {
      throw new ValidationError(`config: ${file} is not valid ${path.extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
    }
  }
  for (const [name, setting] of Object.entries(ENV_SETTINGS)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, setting.path, fromEnv(name, value, setting.type));
  }
  const merged = mergeDeep(raw, (options.overrides ?? {}) as Record<string, unknown>);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = toSettingIssues('', parsed.error);
    throw new ValidationError(`config: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return parsed.data;
};

const mergeDeep = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? mergeDeep(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
};
