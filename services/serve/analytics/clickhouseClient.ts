import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions, type ClickHouseSettings } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { ValidationError } from '../../../schemas/index.js';

/**
 * Where analytics live: chdb's embedded engine on a data folder (the default, nothing to install), or a
 * ClickHouse server/cluster over HTTP. Both are driven through `@clickhouse/client` with the same SQL.
 */
export type ClickHouseTarget =
  | { readonly kind: 'embedded'; readonly path: string }
  | { readonly kind: 'server'; readonly url: string; readonly username?: string; readonly password?: string };

export interface AnalyticsClientOptions {
  readonly target: ClickHouseTarget;
  /** database holding the analytics tables @defaultValue 'iommutrail' */
  readonly database?: string;
}

/**
 * Settings sent with every query, so both backends answer alike: chdb's default leaves 64-bit integers
 * unquoted in JSONEachRow (they would round through `number`), a server quotes them.
 */
export const BASE_SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 1,
};

/**
 * The embedded engine's queries also skip its JIT (issue 23, dash7): chdb compiles an expression, an aggregate or a
 * sort the third time it meets it and keeps the code for its process only, so the third and fourth dashboard loads of
 * every process each paid ~140 ms of CPU compiling (the dashboard figure's p99, 340-400 vs ~220 ms; the figure at 1e6
 * p99 CPU ~290 instead of ~500 ms without it, p50 unchanged or lower). A server keeps its compiled code for all its
 * clients: left as it is there.
 */
const EMBEDDED_SETTINGS: ClickHouseSettings = { ...BASE_SETTINGS, compile_expressions: 0, compile_aggregate_expressions: 0, compile_sort_description: 0 };

/**
 * Settings for inserts: the query-only settings above unset (both backends skip an undefined setting).
 * Over chdb every setting becomes a `SET k = v;` in front of the statement, and a multi-statement INSERT
 * with its data inline costs ~4× the fixed time of a plain one (13 vs 3.5 ms) and parses the body slower.
 */
export const INSERT_SETTINGS = Object.fromEntries(Object.keys(EMBEDDED_SETTINGS).map((k) => [k, undefined])) as ClickHouseSettings;

/**
 * The insert settings for a target. The sink sends an event's data as a JSON object into a String column (rows.ts
 * `isJsonObject`), which `input_format_json_read_objects_as_strings` lets through: on by default in the embedded
 * engine (a test holds that; a `SET` per insert would cost chdb ~4× its fixed time), said explicitly to a server,
 * whose default depends on its version. No target (a test's stand-in client): the embedded engine's.
 */
export const insertSettingsFor = (target: ClickHouseTarget | undefined): ClickHouseSettings =>
  target?.kind === 'server' ? { ...INSERT_SETTINGS, input_format_json_read_objects_as_strings: 1 } : INSERT_SETTINGS;

export interface AnalyticsClient {
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly target: ClickHouseTarget;
  /** never throws: a failed ping is a result */
  ping(): Promise<{ success: true } | { success: false; error: Error }>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

// chdb types its Connection against the standalone @clickhouse/client-common, the client against its bundled
// copy of the same interface; identical at runtime, distinct nominally under exactOptionalPropertyTypes
type ClientConnection = NonNullable<ClickHouseClientConfigOptions['connection']>;
const chdbConnection = (path: string): ClientConnection => createChdbConnection({ path }) as unknown as ClientConnection;

const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Builds the one `@clickhouse/client` the analytics code uses.
 *
 * **WARNING**: chdb binds one data folder per process; opening a second embedded client on a different
 * path while one is open fails. Share one client per process.
 */
export const createAnalyticsClient = (options: AnalyticsClientOptions): AnalyticsClient => {
  const database = options.database ?? 'iommutrail';
  if (!DATABASE_NAME.test(database)) {
    throw new ValidationError(`invalid ClickHouse database name ${JSON.stringify(database)}`, [
      { path: 'database', message: 'expected letters, digits and _ (not starting with a digit), at most 64' },
    ]);
  }
  const { target } = options;
  const client =
    target.kind === 'embedded'
      ? createClient({ connection: chdbConnection(target.path), clickhouse_settings: EMBEDDED_SETTINGS })
      : createClient({
          url: target.url,
          ...(target.username !== undefined ? { username: target.username } : {}),
          ...(target.password !== undefined ? { password: target.password } : {}),
          clickhouse_settings: BASE_SETTINGS,
        });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await client.close();
  };
  return {
    client,
    database,
    target,
    ping: async () => {
      try {
        const r = await client.ping();
        return r.success ? { success: true } : { success: false, error: r.error };
      } catch (error) {
        return { success: false, error: error instanceof Error ? error : new Error(String(error)) };
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
};

/**
 * The target from the environment: `CLICKHOUSE_URL` (with optional `CLICKHOUSE_USER`/`CLICKHOUSE_PASSWORD`)
 * selects a server; otherwise the embedded engine on `<dataDir>/clickhouse`.
 */
export const clickHouseTargetFromEnv = (env: NodeJS.ProcessEnv, dataDir: string): ClickHouseTarget => {
  const url = env.CLICKHOUSE_URL?.trim();
  if (url === undefined || url === '') return { kind: 'embedded', path: `${dataDir.replace(/\/+$/, '')}/clickhouse` };
  try {
    new URL(url);
  } catch {
    throw new ValidationError(`CLICKHOUSE_URL is not a URL: ${JSON.stringify(url)}`, [{ path: 'CLICKHOUSE_URL', message: 'expected e.g. http://localhost:8123' }]);
  }
  return {
    kind: 'server',
    url,
    ...(env.CLICKHOUSE_USER !== undefined ? { username: env.CLICKHOUSE_USER } : {}),
    ...(env.CLICKHOUSE_PASSWORD !== undefined ? { password: env.CLICKHOUSE_PASSWORD } : {}),
  };
};
