-- The trace context of the code worker's span that created the challenge (it handled the
-- login's `MfaRequired`): the sender's span for the email and the verifier's span for each
-- try continue the login's trace from it. Null when written outside a traced span.
ALTER TABLE challenges ADD COLUMN traceparent TEXT;
