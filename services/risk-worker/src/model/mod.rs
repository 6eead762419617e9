//! The risk model: pure functions of a login's features, the user's approved history, the
//! global value counts and the policy. No clock and no IO, so the live worker and `replay`
//! decide identically.

pub mod assess;
pub mod denylist;
pub mod epochs;
pub mod features;
pub mod freeman;
pub mod state;
