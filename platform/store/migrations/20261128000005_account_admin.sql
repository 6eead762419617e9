-- login-intake: an admin can disable an account (it can't log in until enabled again).
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;
