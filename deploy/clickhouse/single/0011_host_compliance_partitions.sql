-- host_compliance (0009) rebuilt with a partition per period and kind of row (issue 23, dash7). A whole computation
-- writes its ~1e5 rows (`whole` = 1) into a partition of their own, which the engine never merges again: the changed
-- hosts' rows and the period's own row (`whole` = 0) go to the period's second partition, small parts merged among
-- themselves. Before, each page load's few new rows were merged sooner or later with the period's 1e5-row part, the
-- background work behind the dashboard's p99. FINAL still takes a (period, host)'s latest version over both
-- partitions (the engine merges across partitions when reading FINAL). An evicted period's partitions are dropped
-- whole (DROP PARTITION) rather than deleted row by row.
--
-- Nothing to carry over: the table is a cache worked out on demand, and a period without rows is worked out whole at
-- its next load. Dropped first so the new partition key takes effect; run again after an interruption, it drops the
-- new, possibly empty, table and makes it again, which loses nothing that is not worked out again.
DROP TABLE IF EXISTS {{database}}.host_compliance;

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
    whole              UInt8 DEFAULT 0,
    computed_at        DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY (period, whole)
ORDER BY (period, host);
