-- Issue 23: the tables whose rows grow with the history merge their parts up to a bound and no further, so a row is
-- merged a bounded number of times however long the history (unbounded, the engine's merges went from 3.6 to 6.8 µs
-- per event from 1e6 to 1e7: every tenfold of rows added merges of every row, and each small insert into a small
-- table was merged again and again into that table's one big part). Readers use FINAL (or -Merge) across parts, as
-- they must anyway. The events and group states reach 16 MiB by ~2e5 events; the violations and their findings, a few
-- MiB at 1e6 events, stop at 4 MiB. The views' pre-aggregates (a row per host, per host and rule, per day) are left
-- as they are: they stay small.
ALTER TABLE {{database}}.events MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 16777216;
ALTER TABLE {{database}}.group_states MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 16777216;
ALTER TABLE {{database}}.violations MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 4194304;
ALTER TABLE {{database}}.violation_findings MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 4194304;
