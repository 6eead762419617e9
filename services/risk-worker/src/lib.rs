//! risk-worker: decides every `LoginAttempted` (approve, ask for a code, or reject) from the
//! user's own history of approved logins, and learns from approvals.

pub mod config;
pub mod consumer;
pub mod housekeeping;
pub mod rules;
pub mod startup;
pub mod store;
