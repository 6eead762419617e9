-- code-worker: a challenge whose account was changed while its code was pending (password
-- changed, sign-in disabled) is 'revoked', not 'superseded': no newer code was sent, and the
-- verifier tells the user which of the two happened.
ALTER TABLE challenges DROP CONSTRAINT challenges_status_check;
ALTER TABLE challenges ADD CONSTRAINT challenges_status_check
    CHECK (status IN ('pending', 'used', 'locked', 'superseded', 'revoked'));
