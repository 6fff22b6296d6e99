-- the dashboard's compliance overview (the headline and the per-day counts) of a period stored in host_compliance, kept
-- beside its per-host rows rather than summed over every host's row on every page load (issue 23: 1e5 hosts, ~100 ms
-- of CPU per load). The overview is a sum over hosts of each host's row, so a load that works out again a few hosts
-- adds their new rows and takes away their old ones. `figures` is the overview's row as JSON (complianceSql.ts
-- overviewSql); a row holds for the period's rows stored at checkpoint `version` and period end `to_ns` and is used
-- only then (else it is summed again from the rows). Nothing to backfill: a period without its row is summed whole at
-- its next load, as before this table.
CREATE TABLE IF NOT EXISTS {{database}}.compliance_overview
(
    period      String,
    version     UInt64,
    to_ns       Int64,
    figures     String,
    computed_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY period;
