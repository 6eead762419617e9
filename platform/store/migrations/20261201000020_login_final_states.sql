-- login-intake: a refusal under the code caps says when a login can get a code again
-- (LoginRejected.retry_after_secs, counted from the decision); and every attempt waiting on a
-- challenge is settled with it (approved once it is passed, rejected once it is locked...),
-- found by its challenge.
ALTER TABLE login_attempts ADD COLUMN retry_at TIMESTAMPTZ;
CREATE INDEX login_attempts_by_challenge ON login_attempts (challenge_id)
    WHERE challenge_id IS NOT NULL;
