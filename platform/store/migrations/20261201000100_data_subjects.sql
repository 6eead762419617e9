-- Issue 14: an erasure no in-flight login can outrun. One row per subject whose personal data
-- is sealed (`data_keys.subject`), and that row is the subject's tombstone once `erased_at` is
-- set (its account was deleted).
--
-- Why a row per live subject and not only a list of erased ones: the row is what a sealer and
-- the erasure serialise on. Everything that creates a key for the subject, or records an event
-- sealed under one, first takes `FOR SHARE` on this row in its own transaction and gives up if
-- `erased_at` is set; the erasure sets `erased_at` with an upsert, which locks the row
-- exclusively and so waits for every transaction holding it, and it does so before it
-- tombstones the keys and deletes the rows. Under READ COMMITTED each of the erasure's later
-- statements then sees what those transactions committed (a key made a moment ago is erased
-- with the others), and a sealer that comes later waits for the erasure and finds the
-- tombstone. A bare list of erased subjects could not do that: "not in the list, then insert a
-- key" is a check-then-act that a concurrent erasure slips between (neither statement sees
-- the other's uncommitted row), leaving a live key for a deleted user.
CREATE TABLE data_subjects (
    subject    TEXT PRIMARY KEY,       -- as in data_keys: 'user:<uuid>' or 'unknown:<32 hex>'
    erased_at  TIMESTAMPTZ             -- NULL while the subject lives; kept for good once set
);

-- Every subject that has keys already: its row, with its tombstone if it was deleted before
-- this migration (its keys all erased with 'subject_deleted').
INSERT INTO data_subjects (subject, erased_at)
SELECT subject, max(erased_at) FILTER (WHERE erased_why = 'subject_deleted')
FROM data_keys
GROUP BY subject;
