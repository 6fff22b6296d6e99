-- the dashboard reads a host's days (their last event, the fleet's first and last) from compliance_daily, a table
-- of hosts × days, rather than scanning every event (issue 23): each day's row gains its first and last event
-- time, folded with its counts. Rows written before this migration keep NULL, and the queries go back to the
-- events table while any row in their scope lacks them. An old table is altered in place, nothing is rewritten.
ALTER TABLE {{database}}.compliance_daily ADD COLUMN IF NOT EXISTS first_event_at Nullable(DateTime64(9, 'UTC')) AFTER events;
ALTER TABLE {{database}}.compliance_daily ADD COLUMN IF NOT EXISTS last_event_at Nullable(DateTime64(9, 'UTC')) AFTER first_event_at;
