import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IllegalStateError, ValidationError } from '../../../schemas/index.js';
import type { AnalyticsClient } from './clickhouseClient.js';

/**
 * `single`: one node (chdb or one server), the files in deploy/clickhouse/single as written;
 * `cluster`: the same files turned into Replicated `<name>_local` tables plus Distributed `<name>` tables,
 * all `ON CLUSTER` (see {@link toClusterStatement})
 */
export type MigrationVariant = 'single' | 'cluster';

export interface MigrateOptions {
  /** @defaultValue 'single' */
  readonly variant?: MigrationVariant;
  /** the cluster name for `ON CLUSTER` (required with variant 'cluster') */
  readonly cluster?: string;
  /** folder holding `single/` @defaultValue the repo's deploy/clickhouse */
  readonly dir?: string;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly statements: readonly string[];
}

export interface MigrateResult {
  readonly applied: readonly string[];
  readonly alreadyApplied: readonly string[];
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** finds deploy/clickhouse from this module, both from sources and from the built dist/ */
export const defaultMigrationsDir = (): string => {
  const candidates = ['../../../deploy/clickhouse', '../../../../deploy/clickhouse'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) throw new IllegalStateError(`deploy/clickhouse not found (looked in ${candidates.join(', ')})`);
  return found;
};

/** splits a migration into statements: a statement ends with `;` at the end of a line; `--` comments dropped */
export const splitStatements = (sql: string): string[] =>
  sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** a cluster name as `ON CLUSTER` takes it (one of remote_servers); anything else is refused by the field's name */
export const checkClusterName = (cluster: string | undefined, field = 'cluster'): string => {
  if (cluster === undefined || !NAME.test(cluster)) throw new ValidationError('the cluster variant needs a cluster name', [{ path: field, message: 'expected a cluster name from remote_servers' }]);
  return cluster;
};

const CREATE_DATABASE = /^CREATE DATABASE IF NOT EXISTS (\w+)$/;
const ALTER_TABLE = /^ALTER TABLE (\w+)\.(\w+) ((?:ADD COLUMN IF NOT EXISTS|MODIFY COLUMN) [\s\S]*)$/;
const CREATE_VIEW = /^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) TO (\w+)\.(\w+)\s+AS SELECT ([\s\S]*?) FROM (\w+)\.(\w+)\b([\s\S]*)$/;
const INSERT_SELECT = /^INSERT INTO \w+\.\w+ SELECT [\s\S]*$/;
const DROP_TABLE = /^DROP TABLE IF EXISTS (\w+)\.(\w+)$/;
const DROP_PARTITION = /^ALTER TABLE (\w+)\.(\w+) (DROP PARTITION [\s\S]*)$/;
const DELETE_ROWS = /^DELETE FROM (\w+)\.(\w+) (WHERE [\s\S]*)$/;
const CREATE_TABLE = /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*(\([\s\S]*\))\s*ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?([\s\S]*?ORDER BY \(?(\w+)[\s\S]*)$/;

/**
 * The cluster form of one single-node statement, derived rather than kept as a second copy so the two
 * can never drift: a table `db.t` becomes `db.t_local` (Replicated engine, `{shard}`/`{replica}` macros
 * of the server) plus `db.t`, a Distributed table over it sharded by the first ORDER BY column (host for
 * every fleet table), so all rows of one key land on one shard and ReplacingMergeTree/FINAL stay correct.
 * An `ALTER TABLE db.t ADD COLUMN IF NOT EXISTS` (or `MODIFY COLUMN`, a column's type) runs on both tables, ON CLUSTER; a materialized view `TO db.t`
 * over `db.s` runs on each shard from `db.s_local` into `db.t_local`; an `INSERT INTO db.t SELECT` (a backfill) runs
 * once, through the Distributed tables; a `DROP TABLE IF EXISTS db.t` (a table rebuilt) drops the Distributed table,
 * then the local one. A change of rows in place at run time (an `ALTER TABLE db.t DROP PARTITION`, a `DELETE FROM db.t
 * WHERE`: the stored compliance's eviction) goes to the local tables ON CLUSTER: a Distributed table has no parts.
 */
export const toClusterStatement = (statement: string, cluster: string): string[] => {
  const db = CREATE_DATABASE.exec(statement);
  if (db !== null) return [`CREATE DATABASE IF NOT EXISTS ${db[1]} ON CLUSTER '${cluster}'`];
  // a column added to a table (or its type changed): to the replicated local table first, then to the Distributed table over it
  const alter = ALTER_TABLE.exec(statement);
  if (alter !== null) {
    const [, database, table, change] = alter as unknown as [string, string, string, string];
    return [`ALTER TABLE ${database}.${table}_local ON CLUSTER '${cluster}' ${change}`, `ALTER TABLE ${database}.${table} ON CLUSTER '${cluster}' ${change}`];
  }
  // a materialized view: on each shard, from its local source table into its local target (both sharded by host)
  const view = CREATE_VIEW.exec(statement);
  if (view !== null) {
    const [, database, name, targetDb, target, columns, sourceDb, source, rest] = view as unknown as [string, string, string, string, string, string, string, string, string];
    return [`CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.${name} ON CLUSTER '${cluster}' TO ${targetDb}.${target}_local\nAS SELECT ${columns} FROM ${sourceDb}.${source}_local${rest}`];
  }
  // a backfill: once, through the Distributed tables (each row lands on its key's shard)
  if (INSERT_SELECT.test(statement)) return [statement];
  // a table rebuilt: SYNC, so that the replicated table made again under the same name finds its replica path free
  const drop = DROP_TABLE.exec(statement);
  if (drop !== null) {
    const [, database, table] = drop as unknown as [string, string, string];
    return [`DROP TABLE IF EXISTS ${database}.${table} ON CLUSTER '${cluster}' SYNC`, `DROP TABLE IF EXISTS ${database}.${table}_local ON CLUSTER '${cluster}' SYNC`];
  }
  // rows changed in place: on every shard's local table (each holds its hosts' rows)
  const inPlace = DROP_PARTITION.exec(statement) ?? DELETE_ROWS.exec(statement);
  if (inPlace !== null) {
    const [, database, table, change] = inPlace as unknown as [string, string, string, string];
    return [statement.startsWith('DELETE') ? `DELETE FROM ${database}.${table}_local ON CLUSTER '${cluster}' ${change}` : `ALTER TABLE ${database}.${table}_local ON CLUSTER '${cluster}' ${change}`];
  }
  const t = CREATE_TABLE.exec(statement);
  if (t === null) throw new IllegalStateError(`cannot derive the cluster form of: ${statement.slice(0, 80)}`);
  const [, database, table, columns, engine, engineArgs, rest, shardKey] = t as unknown as [string, string, string, string, string, string | undefined, string, string];
  const local = `${table}_local`;
  const replicatedArgs = [`'/clickhouse/tables/{shard}/${database}/${local}'`, `'{replica}'`, ...(engineArgs ? [engineArgs] : [])].join(', ');
  return [
    `CREATE TABLE IF NOT EXISTS ${database}.${local} ON CLUSTER '${cluster}'\n${columns}\nENGINE = Replicated${engine}(${replicatedArgs})${rest}`,
    `CREATE TABLE IF NOT EXISTS ${database}.${table} ON CLUSTER '${cluster}' AS ${database}.${local}\nENGINE = Distributed('${cluster}', '${database}', '${local}', cityHash64(${shardKey}))`,
  ];
};

/** reads and renders the numbered migrations of a variant, in order */
export const loadMigrations = (options: MigrateOptions & { readonly database: string }): Migration[] => {
  const variant = options.variant ?? 'single';
  if (variant === 'cluster') checkClusterName(options.cluster);
  const dir = `${options.dir ?? defaultMigrationsDir()}/single`;
  const cluster = options.cluster ?? '';
  return readdirSync(dir)
    .filter((f) => FILE_NAME.test(f))
    .sort()
    .map((file) => {
      const m = FILE_NAME.exec(file);
      const text = readFileSync(`${dir}/${file}`, 'utf8');
      const statements = splitStatements(text.replaceAll('{{database}}', options.database));
      return {
        version: Number(m?.[1]),
        name: file,
        checksum: createHash('sha256').update(text).digest('hex'),
        statements: variant === 'cluster' ? statements.flatMap((s) => toClusterStatement(s, cluster)) : statements,
      };
    });
};

/**
 * Applies the migrations not yet recorded in `<database>.schema_migrations`, in order. Each statement is
 * idempotent, so a migration interrupted before its row is recorded is simply re-run. A recorded migration
 * whose file changed since is refused: migrations are append-only.
 */
export const migrate = async (ac: AnalyticsClient, options: MigrateOptions = {}): Promise<MigrateResult> => {
  const { client, database } = ac;
  const migrations = loadMigrations({ ...options, database });
  const onCluster = options.variant === 'cluster' ? ` ON CLUSTER '${options.cluster ?? ''}'` : '';
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}${onCluster}` });
  const engine = options.variant === 'cluster' ? `ReplicatedReplacingMergeTree('/clickhouse/tables/all/${database}/schema_migrations', '{replica}')` : 'ReplacingMergeTree';
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${database}.schema_migrations${onCluster}
      (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'))
      ENGINE = ${engine} ORDER BY version`,
  });
  const rs = await client.query({ query: `SELECT version, name, checksum FROM ${database}.schema_migrations FINAL`, format: 'JSONEachRow' });
  const recorded = new Map((await rs.json<{ version: number; name: string; checksum: string }>()).map((r) => [Number(r.version), r]));
  const applied: string[] = [];
  const alreadyApplied: string[] = [];
  for (const m of migrations) {
    const done = recorded.get(m.version);
    if (done !== undefined) {
      if (done.checksum !== m.checksum) {
        throw new IllegalStateError(`migration ${m.name} was changed after it was applied (recorded ${done.name}); add a new migration instead`);
      }
      alreadyApplied.push(m.name);
      continue;
    }
    for (const statement of m.statements) await client.command({ query: statement });
    await client.insert({
      table: `${database}.schema_migrations`,
      format: 'JSONEachRow',
      values: [{ version: m.version, name: m.name, checksum: m.checksum, applied_at: String(Date.now()) }],
    });
    applied.push(m.name);
  }
  return { applied, alreadyApplied };
};
