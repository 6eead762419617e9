//! mfa-store's integration tests, against the stack's PostgreSQL and broker, one binary, a
//! module by concern:
//!
//! - [`relay`]: the outbox relay's audit chain: seals, republishing, signed checkpoints.
//! - [`data_keys`]: erasure against sealing: no in-flight seal outlives a subject's erasure.

mod data_keys;
mod relay;
