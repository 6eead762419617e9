//! Code every adaptive-mfa service shares: the event envelope and payloads that travel over
//! Kafka, the domain types built once at the HTTP and Kafka boundaries, and the plumbing
//! (configuration, tracing, PostgreSQL, Kafka, HTTP errors and health checks).
//!
//! Services depend on the small interfaces in [`bus`] rather than on Kafka directly, so that a
//! later single-binary mode can swap in an in-process bus without touching their logic.

pub mod api_keys;
pub mod bus;
pub mod code_hash;
pub mod config;
pub mod db;
pub mod deadline;
pub mod domain;
pub mod events;
pub mod group_watch;
pub mod health;
pub mod housekeeping;
pub mod http;
pub mod idempotency;
pub mod kafka;
pub mod outbox;
pub mod schema;
pub mod shutdown;
pub mod telemetry;
pub mod topics;
pub mod user_agent;
