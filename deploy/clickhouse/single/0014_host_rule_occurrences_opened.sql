-- the hosts page's "open since" (the oldest opening among a host's open violations) from the open violations'
-- pre-aggregate (0013) rather than from the violations (issue 23, dash11: for a page's 1,000 candidate hosts spread over
-- 1e5, that read passed over every violation's key and versions, ~65-170 ms of CPU at 1e7 events). Beside 0013's sets,
-- per host, rule and severity: `opened`, each occurrence with a row as (its opening, a 64-bit hash of its key), and
-- `closed_keys`, the hashes of those with a closed row. An occurrence opens once (every version has its opening), so its
-- pair is one set member whatever rows repeat it; open since = the least opening whose hash is not closed. Sets, as
-- 0013's: a replayed row, a backfilled one, or an open and a closed version in either order change nothing. (Two keys
-- of one host, rule and severity with the same hash: odds ~n²/2^65 for n occurrences there.) A compaction
-- (analyticsQueries compactOccurrences) takes the settled occurrences out of these sets too.
ALTER TABLE {{database}}.host_rule_occurrences ADD COLUMN IF NOT EXISTS opened AggregateFunction(groupUniqArray, Tuple(DateTime64(9, 'UTC'), UInt64));

ALTER TABLE {{database}}.host_rule_occurrences ADD COLUMN IF NOT EXISTS closed_keys AggregateFunction(groupUniqArray, UInt64);

-- the view writing every column, made before 0013's is dropped, so that no insert into the violations meets no view
-- (meanwhile a row reaches 0013's sets twice, which changes none)
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.host_rule_occurrences_opened_mv TO {{database}}.host_rule_occurrences
AS SELECT host, rule, severity, uniqExactState(violation_key) AS seen, uniqExactStateIf(violation_key, closed_at IS NOT NULL) AS closed, toUInt64(0) AS settled, groupUniqArrayState((opened_at, sipHash64(violation_key))) AS opened, groupUniqArrayStateIf(sipHash64(violation_key), closed_at IS NOT NULL) AS closed_keys FROM {{database}}.violations GROUP BY host, rule, severity;

DROP TABLE IF EXISTS {{database}}.host_rule_occurrences_mv;

-- the backfill of the new sets alone (0013's sets and count left as they are: a compaction may have settled some of
-- their occurrences, which are closed and so change no opening here until the next compaction takes them out)
INSERT INTO {{database}}.host_rule_occurrences SELECT host, rule, severity, uniqExactStateIf(violation_key, false) AS seen, uniqExactStateIf(violation_key, false) AS closed, toUInt64(0) AS settled, groupUniqArrayState((opened_at, sipHash64(violation_key))) AS opened, groupUniqArrayStateIf(sipHash64(violation_key), closed_at IS NOT NULL) AS closed_keys FROM {{database}}.violations GROUP BY host, rule, severity;
