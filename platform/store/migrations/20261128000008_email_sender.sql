-- code-worker: the code email is a job of its own. The consumer stores the challenge with
-- its pending email in one transaction; a sender loop sends it, retrying with back-off, and
-- records CodeSent (or, past the retry deadline, CodeDeliveryFailed); the outcome is then
-- published, and marked so, by the same loop.
ALTER TABLE challenges
    -- The code sealed under the HMAC secret (shared::code_hash), erased once sent or given up.
    ADD COLUMN email_code_sealed     BYTEA,
    -- What the email says about the login: platform, ip, user_agent.
    ADD COLUMN email_context         JSONB,
    ADD COLUMN email_attempts        INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN email_next_attempt_at TIMESTAMPTZ,
    ADD COLUMN email_give_up_at      TIMESTAMPTZ,
    ADD COLUMN email_last_error      TEXT,
    ADD COLUMN outcome_published_at  TIMESTAMPTZ;

-- Outcomes recorded before this migration were published then.
UPDATE challenges SET outcome_published_at = created_at WHERE outcome_event IS NOT NULL;

CREATE INDEX challenges_email_due ON challenges (email_next_attempt_at)
    WHERE email_code_sealed IS NOT NULL;
CREATE INDEX challenges_outcome_unpublished ON challenges (created_at)
    WHERE outcome_event IS NOT NULL AND outcome_published_at IS NULL;
