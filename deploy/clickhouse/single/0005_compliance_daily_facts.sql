-- the dashboard's compliance (its headline, the per-day panel and the per-host panel) is worked out in SQL from
-- compliance_daily, a table of hosts × days, rather than in TypeScript over every event (issue 23): each day's row
-- gains the day's last topology snapshot (its time and whether it found an IOMMU; NULL: none that day), and `facts`,
-- 1 on a row written with them. Rows written before this migration keep 0, and the compliance figures go back to
-- the events while any row in their scope lacks them. An old table is altered in place, nothing is rewritten.
ALTER TABLE {{database}}.compliance_daily ADD COLUMN IF NOT EXISTS snapshot_at Nullable(DateTime64(9, 'UTC')) AFTER last_event_at;
ALTER TABLE {{database}}.compliance_daily ADD COLUMN IF NOT EXISTS snapshot_iommu Nullable(UInt8) AFTER snapshot_at;
ALTER TABLE {{database}}.compliance_daily ADD COLUMN IF NOT EXISTS facts UInt8 DEFAULT 0 AFTER snapshot_iommu;
