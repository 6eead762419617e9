-- risk-worker: the challenges it issued, to cap code emails per user (per hour, and a
-- minimum gap) and to reuse a pending challenge instead of emailing again. `closed_at` is set
-- when the challenge can no longer be passed (verified, locked, expired, superseded, its
-- email failed), as the verifier's and code worker's events report.
CREATE TABLE risk_challenges (
    challenge_id UUID PRIMARY KEY,
    user_id      UUID NOT NULL,
    issued_at    TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    closed_at    TIMESTAMPTZ
);
CREATE INDEX risk_challenges_by_user ON risk_challenges (user_id, issued_at);

-- risk-worker: wrong codes per account (from MfaFailed), for the daily ceiling.
CREATE TABLE risk_failed_codes (
    event_id    UUID PRIMARY KEY,
    user_id     UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX risk_failed_codes_by_user ON risk_failed_codes (user_id, occurred_at);

-- login-intake: the answer said a code was emailed recently (CodeThrottled).
ALTER TABLE login_attempts ADD COLUMN code_recently_sent BOOLEAN NOT NULL DEFAULT FALSE;
