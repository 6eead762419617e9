-- Issue 14: crypto-shredding. Each subject (a user, or an unknown email's keyed hash) has one
-- data key per calendar month (UTC), which seals the personal fields (address, user agent,
-- device id) of the events of that month (`shared::personal`). The key is stored wrapped
-- under a master key from configuration (`MFA_MASTER_KEYS`). Erasing it (deleting the user,
-- or the month passing the retention period) sets `wrapped` to NULL and keeps the row, so a
-- reader tells an erased key from one it was never given.
CREATE TABLE data_keys (
    key_id        TEXT PRIMARY KEY,          -- '<subject>/<YYYY-MM>'
    subject       TEXT NOT NULL,             -- 'user:<uuid>' or 'unknown:<32 hex>'
    period_end    TIMESTAMPTZ NOT NULL,      -- the first instant after the month
    master_key_id TEXT,
    wrapped       BYTEA,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    erased_at     TIMESTAMPTZ,
    erased_why    TEXT CHECK (erased_why IN ('subject_deleted', 'retention')),
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL)),
    CHECK ((wrapped IS NULL) = (master_key_id IS NULL))
);
CREATE INDEX data_keys_by_subject ON data_keys (subject);
CREATE INDEX data_keys_live_by_period ON data_keys (period_end) WHERE wrapped IS NOT NULL;
CREATE INDEX data_keys_by_master ON data_keys (master_key_id) WHERE wrapped IS NOT NULL;

-- risk-worker: the global counts and the failures by address are now kept by keyed hash
-- (MFA_PSEUDONYM_KEY), never by value, since they outlive the users whose logins they count.
-- The raw rows of earlier versions go: the global counts start afresh (each user's own
-- history is kept), and failures are only read over minutes.
DELETE FROM risk_global_values;
DELETE FROM risk_global_levels;
DELETE FROM risk_learned_users;
UPDATE risk_global_totals SET logins = 0, users = 0;
DELETE FROM risk_failed_attempts;
