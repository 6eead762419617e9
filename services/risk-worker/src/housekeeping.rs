//! What the risk worker prunes: each table after the longest look-back of its readers.

use std::time::Duration;

use mfa_store::housekeeping::Sweep;
use mfa_store::outbox;

use crate::rules::Policy;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Decisions stay this long: a redelivered attempt republishes its decision, and an approval
/// after MFA (within a code's lifetime) learns from it.
pub const DECISION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn sweeps(policy: &Policy) -> Vec<Sweep> {
    vec![
        Sweep {
            table: "risk_failed_attempts",
            delete: "DELETE FROM risk_failed_attempts WHERE occurred_at < $1",
            keep: policy
                .risk
                .account_failures_window
                .max(policy.risk.ip_window),
        },
        Sweep {
            table: "risk_failed_codes",
            delete: "DELETE FROM risk_failed_codes WHERE occurred_at < $1",
            keep: DAY,
        },
        Sweep {
            table: "risk_challenges",
            delete: "DELETE FROM risk_challenges WHERE issued_at < $1",
            // The hourly email cap looks back an hour; a pending challenge lives a code TTL.
            keep: policy.code_ttl.max(HOUR) + HOUR,
        },
        Sweep {
            table: "risk_decisions",
            delete: "DELETE FROM risk_decisions WHERE created_at < $1",
            keep: DECISION_RETENTION,
        },
        Sweep {
            table: "risk_login_history",
            delete: "DELETE FROM risk_login_history WHERE occurred_at < $1",
            keep: policy.risk.history_window,
        },
        outbox::sweep("DELETE FROM outbox WHERE producer = 'risk-worker' AND published_at < $1"),
    ]
}
