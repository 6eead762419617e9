//! risk-worker: decides every `LoginAttempted` (approve, ask for a code, or reject) with a
//! statistical model of the user's approved logins (`model`), and learns from approvals.
//! `replay` runs the same model offline over an event log.

pub mod config;
pub mod consumer;
pub mod decision;
pub mod engine;
/// The GeoIP lookups the model reads (`mfa_geoip`, shared with the code worker).
pub use mfa_geoip as geo;
pub mod housekeeping;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod rules;
pub mod startup;
pub mod state;
pub mod store;
