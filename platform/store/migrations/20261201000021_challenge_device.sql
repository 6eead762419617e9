-- risk-worker: the device of the login each challenge was issued for. Passing a challenge
-- approves every login waiting on it, so only a later login from that same device may wait on
-- it (issue 11.3: a second device sharing the code would be let in by the first one's user).
-- Challenges issued before this column existed have none, and are no device's.
ALTER TABLE risk_challenges ADD COLUMN device_id TEXT;
