//! Attacks on the running services, and the defence each one meets. See SECURITY.md. The
//! shared set-up is in `tests/support/`. One module per concern:
//!
//! - [`leaks`]: secrets in logs and events.
//! - [`enumeration`]: telling accounts apart by the time an answer takes.
//! - [`keys`]: client API keys across companies and platforms.
//! - [`limits`]: login rate limits.
//! - [`caps`]: caps on code emails and wrong codes.
//! - [`admin`]: the support team's actions after a compromise.
//! - [`first_factors`]: SSO and Google claims a company or an account does not accept (11.1).
//! - [`poison`]: malformed messages on the internal topics.
//!
//! This binary installs a trace-level JSON log subscriber for everything it runs, so that the
//! leak test sees every line the services write at any level.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod caps;
mod enumeration;
mod first_factors;
mod keys;
mod leaks;
mod limits;
mod poison;

use std::io::Write;
use std::sync::{Mutex, Once};

/// Every log line written by this test binary once `capture_logs` ran.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| Capture)
            .init();
    });
}
