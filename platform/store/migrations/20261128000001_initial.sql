-- One database, one migration history, and each table owned by one service. A service reads
-- another's table only where its code says so (search for "reads login-intake's users").

------------------------------------------------------------------------------------------
-- login-intake: companies, users, and the decision of every login attempt.
------------------------------------------------------------------------------------------
CREATE TABLE companies (
    company_id   TEXT PRIMARY KEY,
    uses_sso     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users (
    user_id       UUID PRIMARY KEY,
    -- Normalised (trimmed, lower-case) by the Email type: one address, one account.
    email         TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; NULL for accounts that only log in through SSO or Google.
    password_hash TEXT,
    company_id    TEXT NOT NULL REFERENCES companies (company_id),
    privileged    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE login_attempts (
    attempt_id   UUID PRIMARY KEY,
    user_id      UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL while pending; then approved, mfa_required or rejected (the risk decision), and
    -- approved again with approved_after_mfa once the verifier passed the challenge.
    status       TEXT CHECK (status IN ('approved', 'mfa_required', 'rejected')),
    approved_after_mfa BOOLEAN NOT NULL DEFAULT FALSE,
    challenge_id UUID,
    expires_at   TIMESTAMPTZ,
    reason       TEXT,
    decided_at   TIMESTAMPTZ
);

------------------------------------------------------------------------------------------
-- risk-worker: what each user has had approved logins from, recent failures, decisions.
------------------------------------------------------------------------------------------
CREATE TABLE risk_known_attributes (
    user_id    UUID NOT NULL,
    -- device, network or browser
    kind       TEXT NOT NULL CHECK (kind IN ('device', 'network', 'browser')),
    value      TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, kind, value)
);

CREATE TABLE risk_failed_logins (
    attempt_id  UUID PRIMARY KEY,
    user_id     UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX risk_failed_logins_by_user ON risk_failed_logins (user_id, occurred_at);

-- One row per decided attempt: makes a redelivered LoginAttempted republish the same
-- decision, and keeps what to learn once the user passes MFA.
CREATE TABLE risk_decisions (
    attempt_id     UUID PRIMARY KEY,
    user_id        UUID,
    decision_event JSONB NOT NULL,
    device_value   TEXT,
    network_value  TEXT,
    browser_value  TEXT,
    learned_at     TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

------------------------------------------------------------------------------------------
-- code-worker: challenges. The verifier reads and updates them (attempts, status).
------------------------------------------------------------------------------------------
CREATE TABLE challenges (
    challenge_id    UUID PRIMARY KEY,
    attempt_id      UUID NOT NULL,
    user_id         UUID NOT NULL,
    -- HMAC-SHA256(server secret, challenge_id || code); the code itself is never stored.
    code_hash       BYTEA NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'used', 'locked', 'superseded')),
    -- The event that caused the challenge (MfaRequired), for causation ids downstream.
    mfa_required_event_id UUID NOT NULL,
    email_sent_at   TIMESTAMPTZ,
    -- CodeSent or CodeDeliveryFailed, kept so a redelivered MfaRequired republishes it.
    outcome_event   JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ
);
CREATE INDEX challenges_pending_by_user ON challenges (user_id) WHERE status = 'pending';
