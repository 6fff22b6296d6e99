-- the open violations' pre-aggregate of 0012 again, partitioned by severity (issue 23, dash9): a page load's counts
-- (findings only, severity info left out unless asked for) read the sets of the critical and warning partitions only.
-- In 0012's one part every read deserialized every set, information records' too: at 1e7 events they held three in
-- four occurrences, ~7 ms of CPU of ~22 per statement. The same rows and reading (open = |seen| - |closed|, see 0012);
-- the sort key, and so the sharding of a cluster, stays the host's. `settled`: the occurrences a compaction took out of
-- both sets (closed at or before the sink's checkpoint: analyticsQueries compactOccurrences), counted rather than kept,
-- so that the sets hold the open and recently closed occurrences rather than every one ever seen; 0 as the view writes.
CREATE TABLE IF NOT EXISTS {{database}}.host_rule_occurrences
(
    host     LowCardinality(String),
    rule     LowCardinality(String),
    severity LowCardinality(String),
    seen     AggregateFunction(uniqExact, String),
    closed   AggregateFunction(uniqExact, String),
    settled  SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY severity
ORDER BY (host, rule, severity);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.host_rule_occurrences_mv TO {{database}}.host_rule_occurrences
AS SELECT host, rule, severity, uniqExactState(violation_key) AS seen, uniqExactStateIf(violation_key, closed_at IS NOT NULL) AS closed FROM {{database}}.violations GROUP BY host, rule, severity;

-- the backfill, after the view exists (a row inserted meanwhile reaches the sets twice, which changes none), from the
-- violations rather than 0012's table, so that a run again after an interruption (0012's gone) makes the same sets
INSERT INTO {{database}}.host_rule_occurrences SELECT host, rule, severity, uniqExactState(violation_key) AS seen, uniqExactStateIf(violation_key, closed_at IS NOT NULL) AS closed, toUInt64(0) AS settled FROM {{database}}.violations GROUP BY host, rule, severity;

-- 0012's view and table, replaced: the view first, so that no insert into the violations meets a view without its table
DROP TABLE IF EXISTS {{database}}.host_rule_violations_mv;

DROP TABLE IF EXISTS {{database}}.host_rule_violations;
