//! Tracing set-up: `RUST_LOG` filters (default `info`), `MFA_LOG_FORMAT=json` for machines.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls (e.g. from tests) are no-ops.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("MFA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let result = if json {
        fmt()
            .json()
            .with_current_span(false)
            .with_env_filter(filter)
            .try_init()
    } else {
        fmt().with_env_filter(filter).try_init()
    };
    if result.is_ok() {
        tracing::info!(service, "tracing initialised");
    }
}
