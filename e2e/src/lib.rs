//! End-to-end tests live in `tests/`: they start the four services in this process (each on a
//! random port, with its own database and topic namespace) against the real broker,
//! PostgreSQL and SMTP server that `scripts/stack up` starts. Two test binaries, each a
//! folder of modules by concern: `tests/flows/` (the login flow, codes, SSO, bad requests,
//! the event log, replay, resilience) and `tests/security/` (attacks and their defences, see
//! SECURITY.md); both share `tests/support/` (`spawn_system` and the client's calls) and the
//! `mfa-testkit` crate (the proxies, the topic reader, the code in an email).
