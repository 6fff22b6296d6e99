-- the dashboard's trends (per UTC day: findings opened, closed, and the time to close of those closed that day; first
-- the whole range's row, the summary's time to close) read from a pre-aggregate per day, rule and severity rather than
-- from every violation version with FINAL (issue 23, dash12: at 1e7 events that statement cost ~104 ms of CPU per page
-- load, this ~25). violation_days holds, per day, rule and severity, `opened`: the occurrences opened that day (a
-- uniqExact set of (host, key)), and `closed`: those closed that day, each as (sipHash64 of (host, key), its time to
-- close), kept by a materialized view on every insert into violations and merged by the engine. An occurrence opens
-- once (every version has its opening) and its closed row is its last (a reopen is a new key), so its close and time
-- to close are those of any closed version: sets, not counts, so a row written twice (a batch replayed after a
-- restart), a backfilled row or an open and a closed version in either order only repeat a set member. (Two closed
-- occurrences of one day, rule and severity with the same hash: odds ~n²/2^65 for n of them.) No host: a host filter
-- and a period read the violations as before. Partitioned by severity, as host_rule_occurrences (0013): the findings
-- read no information record's set. Not compacted: every day's closes are the panel's, one member per occurrence.
CREATE TABLE IF NOT EXISTS {{database}}.violation_days
(
    day      Date,
    rule     LowCardinality(String),
    severity LowCardinality(String),
    opened   AggregateFunction(uniqExact, String, String),
    closed   AggregateFunction(groupUniqArray, Tuple(UInt64, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY severity
ORDER BY (day, rule, severity);

-- a row counts on the day it opened, and a closed row also on the day it closed (the sink writes a closed row with its
-- time to close: rows.ts)
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.violation_days_mv TO {{database}}.violation_days
AS SELECT counted.1 AS day, rule, severity, uniqExactStateIf(host, violation_key, counted.2 = 0) AS opened, groupUniqArrayStateIf((sipHash64(host, violation_key), assumeNotNull(duration_ns)), counted.2 = 1) AS closed FROM {{database}}.violations ARRAY JOIN arrayConcat([(toDate(opened_at), toUInt8(0))], if(closed_at IS NULL, CAST([], 'Array(Tuple(Date, UInt8))'), [(toDate(assumeNotNull(closed_at)), toUInt8(1))])) AS counted GROUP BY day, rule, severity;

-- the backfill of an existing database, after the view exists: a row inserted meanwhile reaches the sets twice, which
-- changes none
INSERT INTO {{database}}.violation_days SELECT counted.1 AS day, rule, severity, uniqExactStateIf(host, violation_key, counted.2 = 0) AS opened, groupUniqArrayStateIf((sipHash64(host, violation_key), assumeNotNull(duration_ns)), counted.2 = 1) AS closed FROM {{database}}.violations ARRAY JOIN arrayConcat([(toDate(opened_at), toUInt8(0))], if(closed_at IS NULL, CAST([], 'Array(Tuple(Date, UInt8))'), [(toDate(assumeNotNull(closed_at)), toUInt8(1))])) AS counted GROUP BY day, rule, severity;
