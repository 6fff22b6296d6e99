-- the dashboard's per-host figures from tables of one row per host rather than every host-day and violation version
-- on every page load (issue 23: at 1e5 hosts the per-host compliance was ~300 ms of CPU per load, paid twice).
--
-- host_activity: per host, the highest row version (global position) written for it in compliance_daily or
-- violations, and its first and last event, kept by materialized views on every insert into those tables and merged
-- by the engine (max and min only: a row written twice, or a backfilled row, changes nothing). It gives the fleet's
-- first and last event and its hosts without a pass over the hosts × days table, and says which hosts have rows
-- newer than a given position.
CREATE TABLE IF NOT EXISTS {{database}}.host_activity
(
    host           LowCardinality(String),
    version        SimpleAggregateFunction(max, UInt64),
    first_event_at SimpleAggregateFunction(min, Nullable(DateTime64(9, 'UTC'))),
    last_event_at  SimpleAggregateFunction(max, Nullable(DateTime64(9, 'UTC')))
)
ENGINE = AggregatingMergeTree
ORDER BY host;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.host_activity_daily_mv TO {{database}}.host_activity
AS SELECT host, version, first_event_at, last_event_at FROM {{database}}.compliance_daily;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.host_activity_violations_mv TO {{database}}.host_activity
AS SELECT host, version, CAST(NULL AS Nullable(DateTime64(9, 'UTC'))) AS first_event_at, CAST(NULL AS Nullable(DateTime64(9, 'UTC'))) AS last_event_at FROM {{database}}.violations;

-- the backfill of an existing database, after the views exist: a row inserted meanwhile is counted twice, which
-- changes no maximum or minimum
INSERT INTO {{database}}.host_activity SELECT host, max(version) AS version, min(first_event_at) AS first_event_at, max(last_event_at) AS last_event_at FROM {{database}}.compliance_daily GROUP BY host;
INSERT INTO {{database}}.host_activity SELECT host, max(version) AS version, CAST(NULL AS Nullable(DateTime64(9, 'UTC'))) AS first_event_at, CAST(NULL AS Nullable(DateTime64(9, 'UTC'))) AS last_event_at FROM {{database}}.violations GROUP BY host;

-- host_compliance: each host's compliance over a period (complianceSql.ts), as the dashboard's queries last worked it
-- out, kept so that a page load works out again only the hosts whose figures can have changed since: those with rows
-- newer than the sink's checkpoint of that time, and those a later period end makes stale. `period` names the period
-- and limit (first day, days, start, stale limit); the row with host '' says up to which sink checkpoint (`version`)
-- and period end (`to_ns`) the rows of its period hold. The latest version of a (period, host) wins.
CREATE TABLE IF NOT EXISTS {{database}}.host_compliance
(
    period             String,
    host               LowCardinality(String),
    version            UInt64,
    to_ns              Int64,
    hc                 UInt8,
    findings           UInt64,
    compliant_days     Array(UInt32),
    non_compliant_days Array(UInt32),
    codes              Array(UInt8),
    computed_at        DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (period, host);
