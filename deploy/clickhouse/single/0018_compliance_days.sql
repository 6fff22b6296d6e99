-- the compliance's per-host inputs of a few hosts scattered over the fleet (the changed hosts worked out again on every
-- page load: complianceSql.ts perHostSql) read from a copy of compliance_daily's compliance columns with a fine index
-- (issue 23, dash12): compliance_daily's granules of 8192 rows hold ~8192 hosts each, so ~100 hosts spread over 1e5
-- read every granule (at 1e7 events, CPU median of 15 runs, a count of 100 hosts' rows 33 ms, min 15; 14 and 6.5 over
-- granules of 128 rows). compliance_days: per host and day, the columns the compliance reads (its last event and its
-- last snapshot), every version as written, host a String (a key of 1e5 distinct values: see 0015), written by a
-- materialized view on every insert into compliance_daily. Read without FINAL, as compliance_daily is there (a day's
-- versions not merged yet repeat it with an earlier last event and snapshot, which the maxima pass over).
CREATE TABLE IF NOT EXISTS {{database}}.compliance_days
(
    host           String,
    day            Date,
    last_event_at  Nullable(DateTime64(9, 'UTC')),
    snapshot_at    Nullable(DateTime64(9, 'UTC')),
    snapshot_iommu Nullable(UInt8),
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (host, day)
SETTINGS index_granularity = 128;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.compliance_days_mv TO {{database}}.compliance_days
AS SELECT host, day, last_event_at, snapshot_at, snapshot_iommu, version FROM {{database}}.compliance_daily;

-- the backfill of an existing database, after the view exists: a row inserted meanwhile is here twice, one key and
-- version, which changes no maximum
INSERT INTO {{database}}.compliance_days SELECT host, day, last_event_at, snapshot_at, snapshot_iommu, version FROM {{database}}.compliance_daily;
