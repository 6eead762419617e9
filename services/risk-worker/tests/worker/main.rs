//! The risk worker's integration tests, one binary, a module by concern:
//!
//! - [`process`]: the binary as a process, its command line and its supervision.
//! - [`replay`]: `risk-worker replay` (determinism, the line protocol, the GeoIP data).
//! - [`live`]: the live worker in process on the stack, counted in its `/metrics`.
//! - [`policy`]: a company's risk policy, decided alike by replay and the live worker's state.
//! - [`password_change`]: "wasn't me" under a policy that then requires a new password.
//! - [`global_counts`]: the global counts' epochs, alike in memory and in PostgreSQL, pruned.
//! - [`login_state`]: a login's state read in one round trip, as read part by part.
//! - [`history_limit`]: a decision reads a bounded part of a long history, alike both ways.
//! - [`log`]: an event log built login by login, and the flow that decides it.

mod global_counts;
mod history_limit;
mod live;
mod log;
mod login_state;
mod password_change;
mod policy;
mod process;
mod replay;
mod reported_network;
