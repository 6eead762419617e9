-- risk-worker: the statistical model (Freeman et al.) replaces the sets of known devices,
-- networks and browsers. Its state mirrors what `risk-worker replay` keeps in memory.

DROP TABLE risk_known_attributes;
DROP TABLE risk_failed_logins;

ALTER TABLE risk_decisions
    DROP COLUMN device_value,
    DROP COLUMN network_value,
    DROP COLUMN browser_value,
    -- The login's features and time, learned once the user passes MFA.
    ADD COLUMN features JSONB,
    ADD COLUMN occurred_at TIMESTAMPTZ;

-- Each user's approved logins; the model reads those of the history window (180 days by
-- default) and housekeeping deletes older ones.
CREATE TABLE risk_login_history (
    attempt_id  UUID PRIMARY KEY,
    user_id     UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    features    JSONB NOT NULL
);
CREATE INDEX risk_login_history_by_user ON risk_login_history (user_id, occurred_at);

-- Global likelihoods: how many approved logins had each value of each level, how many
-- distinct values each level has, and how many logins and users there are in all.
CREATE TABLE risk_global_values (
    level TEXT NOT NULL,
    value TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (level, value)
);
CREATE TABLE risk_global_levels (
    level           TEXT PRIMARY KEY,
    distinct_values BIGINT NOT NULL
);
CREATE TABLE risk_global_totals (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    logins    BIGINT NOT NULL,
    users     BIGINT NOT NULL
);
INSERT INTO risk_global_totals (singleton, logins, users) VALUES (TRUE, 0, 0);
-- Users counted in risk_global_totals.users (so each is counted once).
CREATE TABLE risk_learned_users (
    user_id UUID PRIMARY KEY
);

-- Wrong passwords and unknown accounts, for the velocity signals. `account` is the user id,
-- or a key per attempt for an unknown email.
CREATE TABLE risk_failed_attempts (
    attempt_id  UUID PRIMARY KEY,
    account     TEXT NOT NULL,
    ip          TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX risk_failed_attempts_by_account ON risk_failed_attempts (account, occurred_at);
CREATE INDEX risk_failed_attempts_by_ip ON risk_failed_attempts (ip, occurred_at);
