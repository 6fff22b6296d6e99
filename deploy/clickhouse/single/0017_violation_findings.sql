-- the violations page of findings (severity info left out, the dashboard's default) read from the findings' own copy of
-- the violations rather than from every violation version with FINAL (issue 23, dash12: at 1e7 events three in four
-- rows are information records, which FINAL merged before the severity filter could drop them: ~80-100 ms of CPU per
-- page load, ~25 over the findings alone). violation_findings: the violations' rows of severity critical and warning,
-- every version as written, with the violations' key, version and columns but the evidence (the stories read it from
-- the violations), written by a materialized view on every insert into violations. A row's severity is the same in
-- every version of its key, so a key's versions are all here or none, and FINAL keeps the same latest version as over
-- the violations.
CREATE TABLE IF NOT EXISTS {{database}}.violation_findings
(
    violation_key      String,
    host               LowCardinality(String),
    group_id           Nullable(UInt32),
    device             Nullable(String),
    rule               LowCardinality(String),
    severity           LowCardinality(String),
    message            String,
    opened_at          DateTime64(9, 'UTC'),
    opened_event_id    String,
    opened_position    UInt64,
    closed_at          Nullable(DateTime64(9, 'UTC')),
    closed_event_id    Nullable(String),
    closed_position    Nullable(UInt64),
    duration_ns        Nullable(UInt64),
    version            UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (host, violation_key);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.violation_findings_mv TO {{database}}.violation_findings
AS SELECT violation_key, host, group_id, device, rule, severity, message, opened_at, opened_event_id, opened_position, closed_at, closed_event_id, closed_position, duration_ns, version FROM {{database}}.violations WHERE severity != 'info';

-- the backfill of an existing database, after the view exists: a row inserted meanwhile is here twice, one key and
-- version, which FINAL keeps once
INSERT INTO {{database}}.violation_findings SELECT violation_key, host, group_id, device, rule, severity, message, opened_at, opened_event_id, opened_position, closed_at, closed_event_id, closed_position, duration_ns, version FROM {{database}}.violations WHERE severity != 'info';
