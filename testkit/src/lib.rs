//! What the end-to-end tests (`e2e/`) and the chaos harness (`chaos/`) share, so neither
//! borrows from the other:
//!
//! - [`proxy`]: a TCP proxy between a service and a server that can make the server hang or
//!   refuse for that service alone.
//! - [`event_log`]: every message on a topic, read from its beginning as an auditor would.
//! - [`mail`]: the emails maildev received, and the one-time code in one.
//! - [`net`]: a free loopback port, and waiting until something listens on one.
//! - [`cli`]: a binary's `--help`, `--version` and refusal of a bad argument.
//! - [`audit_keys`]: the producers' signing keys for a test, and the auditor's key file.
//! - [`stack`]: the settings of `scripts/stack up`, and a database of a test's own.
//! - [`watched`]: a service as a process whose log lines and exit a test follows.
//!
//! Their failures are a [`TestkitError`].

pub mod audit_keys;
pub mod cli;
pub mod error;
pub mod event_log;
pub mod mail;
pub mod net;
pub mod proxy;
pub mod services;
pub mod stack;
pub mod watched;

pub use error::TestkitError;
