import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../schemas/index.js';
import { createAnalyticsQueries } from './analyticsQueries.js';
import type { AnalyticsClient } from './clickhouseClient.js';
import { deleteOverviewsSql, dropPeriodSql } from './complianceSql.js';
import { loadMigrations, splitStatements, toClusterStatement } from './migrate.js';

describe('Analytics > migrations', () => {
  it('given a file with comments and several statements, when split, then each statement comes out once without its ;', () => {
    const sql = '-- header\nCREATE DATABASE IF NOT EXISTS d;\n\n-- t\nCREATE TABLE IF NOT EXISTS d.t\n(\n    a String, -- why\n    b UInt8\n)\nENGINE = MergeTree\nORDER BY a;\n';
    expect(splitStatements(sql)).toEqual(['CREATE DATABASE IF NOT EXISTS d', 'CREATE TABLE IF NOT EXISTS d.t\n(\n    a String, -- why\n    b UInt8\n)\nENGINE = MergeTree\nORDER BY a']);
  });

  it('given a versioned ReplacingMergeTree table, when turned into its cluster form, then a replicated local table and a distributed table sharded by the first key column come out', () => {
    const [local, distributed] = toClusterStatement(
      'CREATE TABLE IF NOT EXISTS db.violations\n(\n    host String,\n    version UInt64\n)\nENGINE = ReplacingMergeTree(version)\nORDER BY (host, violation_key)',
      'prod',
    );
    expect(local).toBe(
      "CREATE TABLE IF NOT EXISTS db.violations_local ON CLUSTER 'prod'\n(\n    host String,\n    version UInt64\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/violations_local', '{replica}', version)\nORDER BY (host, violation_key)",
    );
    expect(distributed).toBe("CREATE TABLE IF NOT EXISTS db.violations ON CLUSTER 'prod' AS db.violations_local\nENGINE = Distributed('prod', 'db', 'violations_local', cityHash64(host))");
  });

  it('given an unversioned table with a partition, when turned into its cluster form, then the engine takes no version and the partition stays', () => {
    const [local] = toClusterStatement('CREATE TABLE IF NOT EXISTS db.events\n(\n    host String\n)\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(time)\nORDER BY (host, time)', 'c1');
    expect(local).toContain("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/events_local', '{replica}')\nPARTITION BY toYYYYMM(time)\nORDER BY (host, time)");
  });

  it('given the database statement, when turned into its cluster form, then it runs ON CLUSTER', () => {
    expect(toClusterStatement('CREATE DATABASE IF NOT EXISTS db', 'c1')).toEqual(["CREATE DATABASE IF NOT EXISTS db ON CLUSTER 'c1'"]);
  });

  it('given a statement of another shape, when turned into its cluster form, then it is refused by name', () => {
    expect(() => toClusterStatement('ALTER TABLE db.t DROP COLUMN x', 'c1')).toThrow(/cannot derive the cluster form of: ALTER TABLE/);
  });

  it('issue 21 actors: given a column added to a table, when turned into its cluster form, then the local and the distributed table both gain it ON CLUSTER', () => {
    expect(toClusterStatement('ALTER TABLE db.events ADD COLUMN IF NOT EXISTS actor_pid Nullable(UInt32) AFTER errno', 'c1')).toEqual([
      "ALTER TABLE db.events_local ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS actor_pid Nullable(UInt32) AFTER errno",
      "ALTER TABLE db.events ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS actor_pid Nullable(UInt32) AFTER errno",
    ]);
  });

  it('dash11 #23: given a column\'s type changed, when turned into its cluster form, then the local and then the distributed table change it ON CLUSTER', () => {
    expect(toClusterStatement('ALTER TABLE db.host_groups MODIFY COLUMN host String', 'c1')).toEqual([
      "ALTER TABLE db.host_groups_local ON CLUSTER 'c1' MODIFY COLUMN host String",
      "ALTER TABLE db.host_groups ON CLUSTER 'c1' MODIFY COLUMN host String",
    ]);
  });

  it('dash7 #23: given a table rebuilt (dropped, then made again), when turned into its cluster form, then the distributed and then the local table are dropped ON CLUSTER, SYNC so the replica path is free for the new one', () => {
    expect(toClusterStatement('DROP TABLE IF EXISTS db.host_compliance', 'c1')).toEqual([
      "DROP TABLE IF EXISTS db.host_compliance ON CLUSTER 'c1' SYNC",
      "DROP TABLE IF EXISTS db.host_compliance_local ON CLUSTER 'c1' SYNC",
    ]);
  });

  it('dash3 #23: given a materialized view into a pre-aggregate and its backfill, when turned into their cluster form, then the view runs on each shard from the local source into the local target and the backfill runs once through the distributed tables', () => {
    expect(toClusterStatement('CREATE MATERIALIZED VIEW IF NOT EXISTS db.host_groups_mv TO db.host_groups\nAS SELECT host, groupBitmapState(group_id) AS groups FROM db.group_states GROUP BY host', 'c1')).toEqual([
      "CREATE MATERIALIZED VIEW IF NOT EXISTS db.host_groups_mv ON CLUSTER 'c1' TO db.host_groups_local\nAS SELECT host, groupBitmapState(group_id) AS groups FROM db.group_states_local GROUP BY host",
    ]);
    const backfill = 'INSERT INTO db.host_groups SELECT host, groupBitmapState(group_id) AS groups FROM db.group_states GROUP BY host';
    expect(toClusterStatement(backfill, 'c1')).toEqual([backfill]);
    // and every migration of the repo has a cluster form
    expect(() => loadMigrations({ database: 'db', variant: 'cluster', cluster: 'c1' })).not.toThrow();
  });
  it('dash8 #23: given the stored compliance\'s eviction (a period\'s partitions dropped, its overview rows deleted), when turned into its cluster form, then it runs ON CLUSTER on the local tables (a Distributed table has no parts)', () => {
    expect(toClusterStatement(dropPeriodSql('db'), 'c1')).toEqual([
      "ALTER TABLE db.host_compliance_local ON CLUSTER 'c1' DROP PARTITION ({evicted:String}, 1), DROP PARTITION ({evicted:String}, 0)",
    ]);
    expect(toClusterStatement(deleteOverviewsSql('db'), 'c1')).toEqual(["DELETE FROM db.compliance_overview_local ON CLUSTER 'c1' WHERE period IN {evicted:Array(String)}"]);
  });

  it('dash8 #23: given a cluster name that ON CLUSTER cannot take, when the dashboard queries are made for it, then they are refused naming the field', () => {
    const ac = { client: {}, database: 'db' } as unknown as AnalyticsClient;
    expect(() => createAnalyticsQueries(ac, { cluster: "c1' SYNC" })).toThrow(ValidationError);
    expect(() => createAnalyticsQueries(ac, { cluster: "c1' SYNC" })).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'cluster' })] }) as Error);
    expect(() => createAnalyticsQueries(ac, { cluster: 'c1' })).not.toThrow();
  });
});
