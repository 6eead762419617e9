-- Responses to requests sent with an Idempotency-Key header, so that a retry gets the same
-- answer and repeats no effect. Each HTTP service owns the rows of its own scope
-- ('login-intake:...' or 'verifier:...'); the scope also names the API key and the route, so
-- keys of different clients never collide.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_digest  BYTEA NOT NULL,
    -- NULL while the first request is in flight.
    status_code     SMALLINT,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, idempotency_key)
);
