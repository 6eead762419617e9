-- Issue 17: "someone has your password". A challenge of a password login whose code was never
-- used (it expired, or locked after too many wrong codes) gets one notification email, with two
-- signed, single-use, expiring links ("this was me", "this wasn't me").

-- code-worker: whether the challenge still has to be looked at for a notification. Cleared
-- (in the statement that creates the notification) once it ended, whatever its end, so each
-- challenge is looked at once. Challenges that existed before this migration are not: nobody
-- was promised a notification for them.
ALTER TABLE challenges ADD COLUMN notice_due BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE challenges SET notice_due = FALSE;
CREATE INDEX challenges_notice_due ON challenges (expires_at) WHERE notice_due;

-- code-worker: one notification per challenge (the primary key makes it exactly once, however
-- often the detection runs or restarts), with its email's delivery state; the verifier consumes
-- its token when a link is followed.
CREATE TABLE login_notifications (
    challenge_id      UUID PRIMARY KEY,
    attempt_id        UUID NOT NULL,
    user_id           UUID NOT NULL,
    company_id        TEXT NOT NULL,
    -- 'expired' or 'locked'
    ended             TEXT NOT NULL CHECK (ended IN ('expired', 'locked')),
    -- When the login asked for the code: the time the email names.
    login_at          TIMESTAMPTZ NOT NULL,
    -- What the email says about the login (platform, address, user agent, language), as the
    -- challenge's code email said it.
    context           JSONB NOT NULL,
    device_id         TEXT,
    -- The links' token: signed with it (and the verdict and expiry) by the code worker,
    -- consumed once by the verifier.
    token_id          UUID NOT NULL UNIQUE,
    token_expires_at  TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The email: due at email_next_attempt_at (NULL once sent or given up).
    email_next_attempt_at TIMESTAMPTZ,
    email_attempts    INTEGER NOT NULL DEFAULT 0,
    email_sent_at     TIMESTAMPTZ,
    email_given_up_at TIMESTAMPTZ,
    email_last_error  TEXT,
    -- Set once, by the first link followed (or by feedback given over the API).
    feedback_verdict  TEXT CHECK (feedback_verdict IN ('was_me', 'wasnt_me')),
    feedback_at       TIMESTAMPTZ
);
CREATE INDEX login_notifications_due ON login_notifications (email_next_attempt_at)
    WHERE email_next_attempt_at IS NOT NULL;
CREATE INDEX login_notifications_by_attempt ON login_notifications (attempt_id);

-- verifier (email links) and login-intake (client and admin API): the one feedback a login
-- gets. Its primary key is what makes a second one refused, from whichever source.
CREATE TABLE login_feedback (
    attempt_id  UUID PRIMARY KEY,
    user_id     UUID NOT NULL,
    company_id  TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('was_me', 'wasnt_me')),
    source      TEXT NOT NULL CHECK (source IN ('email_link', 'client', 'admin')),
    given_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_feedback_by_user ON login_feedback (user_id);

-- risk-worker: the networks (/24, /48) and device ids a user reported a login from as not
-- theirs: a later login from either is high risk (`reported_network`, `reported_device`).
CREATE TABLE risk_reported (
    user_id     UUID NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('prefix', 'device')),
    value       TEXT NOT NULL,
    attempt_id  UUID NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, level, value)
);
