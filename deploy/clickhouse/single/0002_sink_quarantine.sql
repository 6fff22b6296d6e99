-- rows the sink could not write (a value its column cannot hold, or one the engine refused on its own),
-- kept with the reason instead of stopping the sink: the rows after a bad one are written. One row per
-- table and key; `row` is the row as JSON. Nothing here is lost data of record: the event store keeps
-- every event, so a quarantined row can be rebuilt once the cause is fixed.
CREATE TABLE IF NOT EXISTS {{database}}.sink_quarantine
(
    table_name      LowCardinality(String),
    row_key         String,
    global_position UInt64,
    reason          String,
    row             String,
    quarantined_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (table_name, row_key);
