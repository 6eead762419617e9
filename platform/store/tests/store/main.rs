//! mfa-store's integration tests, against the stack's PostgreSQL and broker, one binary, a
//! module by concern:
//!
//! - [`relay`]: the outbox relay's audit chain: seals, republishing, signed checkpoints.

mod relay;
