-- the drill-down names the process behind an event by pid as well as by comm (issue 21): the events table
-- gains the actor's pid. Rows written before this migration keep NULL (no pid recorded); an old table is
-- altered in place, nothing is rewritten.
ALTER TABLE {{database}}.events ADD COLUMN IF NOT EXISTS actor_pid Nullable(UInt32) AFTER errno;
