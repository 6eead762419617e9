//! What login-intake prunes: rate-limit windows, decisions older than they are asked for, and
//! its own published outbox rows.

use std::time::Duration;

use mfa_http::idempotency;
use mfa_store::housekeeping::Sweep;
use mfa_store::{data_keys, outbox};

use crate::rate_limit::RateLimits;

/// How long `GET /v1/logins/{attempt_id}` can answer for an attempt.
pub const DECISION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `retention_days`: how long a month's data keys live after it ended
/// (`MFA_PERSONAL_DATA_RETENTION_DAYS`); login-intake, which creates them, erases them.
pub fn sweeps(limits: &RateLimits, retention_days: u32) -> Vec<Sweep> {
    let longest_window = [
        limits.per_ip,
        limits.per_account_and_ip,
        limits.per_account,
        limits.per_api_key,
    ]
    .iter()
    .map(|limit| limit.window)
    .max()
    .unwrap_or_default();
    vec![
        Sweep {
            table: "rate_limit_counters",
            delete: "DELETE FROM rate_limit_counters WHERE window_start < $1",
            // The limiter reads the current window and the one before it.
            keep: longest_window * 2,
        },
        idempotency::sweep(
            "DELETE FROM idempotency_keys WHERE scope LIKE 'login-intake:%' AND created_at < $1",
        ),
        Sweep {
            table: "login_attempts",
            delete: "DELETE FROM login_attempts WHERE created_at < $1",
            keep: DECISION_RETENTION,
        },
        outbox::sweep("DELETE FROM outbox WHERE producer = 'login-intake' AND published_at < $1"),
        data_keys::retention_sweep(retention_days),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_outbox_sweep_prunes_only_this_services_rows() {
        let limits = crate::rate_limit::RateLimits::default();
        let sweeps = super::sweeps(&limits, 400);
        let outbox = sweeps.iter().find(|s| s.table == "outbox").unwrap();
        let own = format!("producer = '{}' AND", crate::intake::PRODUCER);
        assert!(outbox.delete.contains(&own), "{}", outbox.delete);
    }
}
