//! The whole login flow across the four services, against the real broker, PostgreSQL and
//! SMTP server. Each test starts its own system (own database, own topics); the shared
//! set-up is in `tests/support/`. One module per concern:
//!
//! - [`load_generator`]: a smoke run of `mfa-bench load` (issue 12).
//! - [`logins`]: first login, known and new contexts, wrong password vs unknown email.
//! - [`codes`]: wrong, expired, used and superseded codes.
//! - [`sso`]: SSO logins over HTTP and over Kafka.
//! - [`sso_risk`]: non-privileged SSO logins are scored; a high-risk one asks for a code.
//! - [`bad_requests`]: every platform, and each kind of bad request with its error code.
//! - [`idempotency`]: redelivered events and retried requests.
//! - [`event_log`]: what the topics hold.
//! - [`housekeeping`]: pruning the short-lived tables.
//! - [`replay_parity`]: `risk-worker replay` decides as the live worker did.
//! - [`resilience`]: shutdown, database and SMTP outages, the outbox (issue 5).
//! - [`admin_outbox`]: each producer prunes only its own outbox rows (10.4).
//! - [`observability`]: `/metrics` of each service, one trace per login, a real Prometheus
//!   against the alert rules and the dashboard (issue 15).
//! - [`policy`]: a company's risk policy over the admin API, and its logins decided under it
//!   (trusted network, observe-only, threshold) (issue 17).
//! - [`support_desk`]: finding an account by email, paging through a company's (11.8).
//! - [`user_logins`]: a user's logins as support staff read them (issue 13).
//! - [`user_export`]: everything held on a user, and nothing once deleted (issue 14).
//! - [`feedback`]: the "someone has your password" email, its links, and feedback over
//!   the API (issue 17).
//! - [`audit`]: every event sealed in its producer's chain, each chain's signed checkpoint
//!   matching its records (issue 13).

#[path = "../support/mod.rs"]
mod support;

mod admin_outbox;
mod audit;
mod bad_requests;
mod codes;
mod erasure;
mod event_log;
mod feedback;
mod housekeeping;
mod idempotency;
mod load_generator;
mod logins;
mod observability;
mod policy;
mod replay_parity;
mod resilience;
mod sso;
mod sso_risk;
mod support_desk;
mod user_export;
mod user_logins;
