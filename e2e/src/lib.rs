//! End-to-end tests live in `tests/`: they start the four services in this process (each on a
//! random port, with its own database and topic namespace) against the real broker,
//! PostgreSQL and SMTP server that `scripts/stack up` starts.
