-- the dashboard's open violations (per rule and severity, per host, the hosts with any) read from a pre-aggregate per
-- host, rule and severity rather than from every violation version with FINAL (issue 23, dash8: at 1e7 events six
-- statements of a page load passed over violations FINAL, ~100 ms of CPU each). host_rule_violations holds, per host,
-- rule and severity, the set of violation occurrences with a row (`seen`) and the set of those with a closed row
-- (`closed`), kept by a materialized view on every insert into violations and merged by the engine. Open = |seen| -
-- |closed|: an occurrence's key is new at every opening (a reopen is a new key) and its closed row is its last, so a
-- closed key stays closed. Sets, not +1/-1 counts: a row written twice (a batch replayed after a restart), a backfilled
-- row or an open and a closed version in either order only repeat a set member.
CREATE TABLE IF NOT EXISTS {{database}}.host_rule_violations
(
    host     LowCardinality(String),
    rule     LowCardinality(String),
    severity LowCardinality(String),
    seen     AggregateFunction(uniqExact, String),
    closed   AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (host, rule, severity);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.host_rule_violations_mv TO {{database}}.host_rule_violations
AS SELECT host, rule, severity, uniqExactState(violation_key) AS seen, uniqExactStateIf(violation_key, closed_at IS NOT NULL) AS closed FROM {{database}}.violations GROUP BY host, rule, severity;

-- the backfill of an existing database, after the view exists: a row inserted meanwhile reaches the sets twice,
-- which changes none
INSERT INTO {{database}}.host_rule_violations SELECT host, rule, severity, uniqExactState(violation_key) AS seen, uniqExactStateIf(violation_key, closed_at IS NOT NULL) AS closed FROM {{database}}.violations GROUP BY host, rule, severity;
