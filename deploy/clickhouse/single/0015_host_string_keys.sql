-- the host of host_groups (0007) and host_compliance (0011) a String rather than LowCardinality(String) (issue 23,
-- dash11): in these tables of one row per host (1e5 distinct hosts) the dictionary is as large as the column, and a
-- page's hosts read by `host IN` a list (its 500 hosts' group sets, the ~100 changed hosts' stored rows) paid for the
-- dictionary beside the rows: at 1e6 events, CPU median of 21 runs, the page's group sets 28 ms, 19 with a String; the
-- changed hosts' stored rows 39 and 30. The same values and order (a key column's change the engine allows: the
-- sort is by the strings either way); its view writes the String as it wrote the dictionary. Run again, a no-op.
ALTER TABLE {{database}}.host_groups MODIFY COLUMN host String;

ALTER TABLE {{database}}.host_compliance MODIFY COLUMN host String;
