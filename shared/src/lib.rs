//! The event contract of adaptive-mfa: the envelope and payloads that travel over Kafka
//! ([`events`]), the domain types built once at the HTTP and Kafka boundaries ([`domain`],
//! [`user_agent`]), the topic names ([`topics`]) and the JSON Schemas generated from the
//! events ([`schema`], written to `schemas/` by `generate-schemas`), and time arithmetic
//! that saturates instead of panicking ([`time`]), and the tamper evidence of the log
//! ([`audit`]: seals, chain heads, signed checkpoints).
//!
//! It does no IO and depends on no IO crate, so a client, an auditor's tool, the fuzz targets
//! and the evaluation read the events without compiling Kafka, PostgreSQL or HTTP. The
//! plumbing lives in `platform/` (crates `mfa-runtime`, `mfa-bus`, `mfa-store`, `mfa-http`,
//! `mfa-code-hash`).

pub mod audit;
pub mod domain;
pub mod events;
pub mod personal;
pub mod schema;
pub mod time;
pub mod topics;
pub mod user_agent;
