-- When the login's `MfaRequired` happened (its occurred_at): the code worker times each code
-- email's delivery from it (`mfa_code_delivery_seconds`), the wait the user sees, however
-- long the email sat queued or was retried. Null for challenges stored before this column.
ALTER TABLE challenges ADD COLUMN mfa_required_at TIMESTAMPTZ;
