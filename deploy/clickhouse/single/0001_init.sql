-- iommutrail analytics. Written for one node (embedded chdb or one ClickHouse server); the migration step
-- derives the cluster form (Replicated *_local tables + Distributed tables ON CLUSTER, sharded by the first
-- ORDER BY column) from these same statements: see deploy/clickhouse/README.md.
-- {{database}} is replaced by the migration step. Every statement is idempotent (IF NOT EXISTS) so a
-- migration interrupted half-way can run again. Tables are ReplacingMergeTree keyed by a natural key:
-- a batch re-written after a crash (possibly cut at different boundaries) collapses into one row per key;
-- queries read with FINAL (or argMax by version) so duplicates not yet merged never show.

CREATE DATABASE IF NOT EXISTS {{database}};

-- one row per stored event, flattened for search; the raw data stays as JSON text
CREATE TABLE IF NOT EXISTS {{database}}.events
(
    event_id        String,
    global_position UInt64,
    stream_position UInt64,
    host            LowCardinality(String),
    seq             UInt64,
    type            LowCardinality(String),
    time            DateTime64(9, 'UTC'),
    source          LowCardinality(String),
    group_id        Nullable(UInt32),
    device          Nullable(String),
    outcome_ok      Nullable(UInt8),
    errno           Nullable(String),
    actor_comm      Nullable(String),
    actor_vm        Nullable(String),
    actor_tenant    Nullable(String),
    correlation_id  Nullable(String),
    labels          Array(String),
    data            String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (host, time, event_id);

-- one row per violation version: the open row, then the closed row with a higher version (the global
-- position of the event that produced it); FINAL keeps the latest
CREATE TABLE IF NOT EXISTS {{database}}.violations
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
    evidence_event_ids Array(String),
    version            UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (host, violation_key);

-- one row per change of a group's state; the state as of time T is argMax(..., global_position) over time <= T
CREATE TABLE IF NOT EXISTS {{database}}.group_states
(
    host            LowCardinality(String),
    group_id        UInt32,
    global_position UInt64,
    event_id        String,
    event_type      LowCardinality(String),
    time            DateTime64(9, 'UTC'),
    state           LowCardinality(String),
    owner           String,
    domain          String,
    owner_cnt       UInt32,
    devices         Array(String),
    detail          String
)
ENGINE = ReplacingMergeTree
ORDER BY (host, group_id, global_position);

-- per host and UTC day on which the host had events: violations opened/closed that day, the most open at
-- once, open at the end of the day's last event; version = the last global position folded into the row
CREATE TABLE IF NOT EXISTS {{database}}.compliance_daily
(
    host        LowCardinality(String),
    day         Date,
    opened      UInt32,
    closed      UInt32,
    max_open    UInt32,
    open_at_end UInt32,
    events      UInt64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (host, day);

-- the sink's own checkpoint: the last global position whose rows are all written
CREATE TABLE IF NOT EXISTS {{database}}.sink_checkpoints
(
    subscriber String,
    position   UInt64,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(position)
ORDER BY subscriber;
