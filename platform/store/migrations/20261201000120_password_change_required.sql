-- Issue 17: "wasn't me" forces a password change, per company policy
-- (`CompanyRiskPolicy.password_change_on_takeover_report`).

-- risk-worker: the users whose password logins are refused (`password_change_required`) until
-- their password is changed. Set when a `LoginFeedback` `wasnt_me` is applied under a company
-- policy that asks for it, deleted by `AccountChanged` `password_changed` and with the account
-- (`deleted`); `risk-worker replay` keeps the same in memory, from the same events. No
-- retention: only a new password clears it (the reported attacker still has the old one).
CREATE TABLE risk_password_change_required (
    user_id     UUID PRIMARY KEY,
    -- The login reported as not theirs (the first report, if there were more).
    attempt_id  UUID NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL
);
