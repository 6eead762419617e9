-- login-intake: login rate limits, shared by every replica. One row per bucket (an end-user
-- IP, an account + IP, an account, an API key) and fixed window; the limiter weighs the
-- previous window into a sliding estimate. Rows older than two windows are useless and can be
-- pruned.
CREATE TABLE rate_limit_counters (
    bucket       TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
