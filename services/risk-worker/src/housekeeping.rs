//! What the risk worker prunes: each table after the longest look-back of its readers.
//! `replay` forgets its memory after the same times (`Retention`).

use std::time::Duration;

use mfa_store::housekeeping::Sweep;
use mfa_store::outbox;

use crate::model::epochs::GLOBAL_EPOCH;
use crate::rules::Policy;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Decisions stay this long: a redelivered attempt republishes its decision, and an approval
/// after MFA (within a code's lifetime) learns from it.
pub const DECISION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long each kind of state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Wrong passwords: the longest velocity window.
    pub failed_attempts: Duration,
    /// Wrong codes: the daily ceiling looks back a day.
    pub failed_codes: Duration,
    /// Issued challenges, by issue time.
    pub challenges: Duration,
    pub decisions: Duration,
    pub history: Duration,
    /// The global counts, by their epoch's start: two epochs.
    pub global_counts: Duration,
}

impl Retention {
    pub fn of(policy: &Policy) -> Self {
        Self {
            failed_attempts: policy
                .risk
                .account_failures_window
                .max(policy.risk.ip_window),
            failed_codes: DAY,
            // The hourly email cap looks back an hour; a pending challenge lives a code TTL.
            challenges: policy.code_ttl.max(HOUR) + HOUR,
            decisions: DECISION_RETENTION,
            history: policy.risk.history_window,
            global_counts: GLOBAL_EPOCH * 2,
        }
    }
}

pub fn sweeps(policy: &Policy) -> Vec<Sweep> {
    let keep = Retention::of(policy);
    vec![
        Sweep {
            table: "risk_failed_attempts",
            delete: "DELETE FROM risk_failed_attempts WHERE occurred_at < $1",
            keep: keep.failed_attempts,
        },
        Sweep {
            table: "risk_failed_codes",
            delete: "DELETE FROM risk_failed_codes WHERE occurred_at < $1",
            keep: keep.failed_codes,
        },
        Sweep {
            table: "risk_challenges",
            delete: "DELETE FROM risk_challenges WHERE issued_at < $1",
            keep: keep.challenges,
        },
        Sweep {
            table: "risk_decisions",
            delete: "DELETE FROM risk_decisions WHERE created_at < $1",
            keep: keep.decisions,
        },
        // A login reads the global counts of its epoch and the one before: rows of older
        // epochs (their start more than two epochs ago) count for nobody.
        Sweep {
            table: "risk_global_values",
            delete: "DELETE FROM risk_global_values WHERE epoch < $1",
            keep: keep.global_counts,
        },
        Sweep {
            table: "risk_global_levels",
            delete: "DELETE FROM risk_global_levels WHERE epoch < $1",
            keep: keep.global_counts,
        },
        Sweep {
            table: "risk_global_totals",
            delete: "DELETE FROM risk_global_totals WHERE epoch < $1",
            keep: keep.global_counts,
        },
        Sweep {
            table: "risk_login_history",
            delete: "DELETE FROM risk_login_history WHERE occurred_at < $1",
            keep: keep.history,
        },
        outbox::sweep("DELETE FROM outbox WHERE producer = 'risk-worker' AND published_at < $1"),
    ]
}
