//! login-intake's own figures: the answers of `POST /v1/logins` and their latency, the rate
//! limits' refusals, and the argon2 pool's queue. Counted where the answer is made (the
//! handler) and where a check enters or leaves the pool, never in the decisions themselves.

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use shared::domain::{AuthMethod, Platform};
use shared::events::RejectionReason;

use crate::decisions::ClosedReason;
use crate::rate_limit::Limit;
use crate::store::StoredDecision;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    platform: &'static str,
    auth_method: &'static str,
    decision: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    auth_method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

/// Registered once per service (the families are handles: clones count in the same series).
#[derive(Clone)]
pub struct IntakeMetrics {
    logins: Family<LoginLabels, Counter>,
    decision_time: Family<MethodLabels, Histogram, fn() -> Histogram>,
    rate_limit_refusals: Family<LimitLabels, Counter>,
    /// Handed to the password pool.
    pub argon2: Argon2Metrics,
}

impl IntakeMetrics {
    /// Families counted nowhere: for a handler or a pool outside a service (a test's).
    pub fn unregistered() -> Self {
        Self {
            logins: Family::default(),
            decision_time: Family::new_with_constructor(mfa_metrics::buckets::latency),
            rate_limit_refusals: Family::default(),
            argon2: Argon2Metrics::unregistered(),
        }
    }

    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        mfa_metrics::register(
            registry,
            "mfa_logins",
            "Answers of POST /v1/logins, by decision (pending: none within the wait) and \
             rejection reason (none otherwise)",
            metrics.logins.clone(),
        );
        mfa_metrics::register_with_unit(
            registry,
            "mfa_login_decision",
            "POST /v1/logins from receipt to its answer",
            Unit::Seconds,
            metrics.decision_time.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_rate_limit_refusals",
            "Logins refused 429, by the limit that asked for the longest wait",
            metrics.rate_limit_refusals.clone(),
        );
        metrics.argon2.register_in(registry);
        metrics
    }

    /// A login answered with `decision`, `took` after its request arrived.
    pub fn login_answered(
        &self,
        platform: Platform,
        auth_method: AuthMethod,
        decision: &StoredDecision,
        took: Duration,
    ) {
        let (decision, reason) = decision_labels(decision);
        self.logins
            .get_or_create(&LoginLabels {
                platform: platform.as_str(),
                auth_method: auth_method.as_str(),
                decision,
                reason,
            })
            .inc();
        self.decision_time
            .get_or_create(&MethodLabels {
                auth_method: auth_method.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn rate_limited(&self, limit: Limit) {
        self.rate_limit_refusals
            .get_or_create(&LimitLabels {
                limit: limit.as_str(),
            })
            .inc();
    }
}

/// The `decision` and `reason` labels of an answer.
pub fn decision_labels(decision: &StoredDecision) -> (&'static str, &'static str) {
    match decision {
        StoredDecision::Pending => ("pending", "none"),
        StoredDecision::Approved { .. } => ("approved", "none"),
        // A new code and a pending one reused alike: the answer is the same status.
        StoredDecision::MfaRequired { .. } => ("mfa_required", "none"),
        StoredDecision::Rejected { reason, .. } => ("rejected", reason_label(reason)),
    }
}

/// Every reason a stored rejection can carry: the risk worker's, and those of an attempt
/// whose code can no longer be used.
const REJECTIONS: [RejectionReason; 7] = [
    RejectionReason::InvalidCredentials,
    RejectionReason::TooManyCodes,
    RejectionReason::TooManyFailedCodes,
    RejectionReason::DenylistedNetwork,
    RejectionReason::AuthMethodNotAllowed,
    RejectionReason::CodePendingElsewhere,
    RejectionReason::PasswordChangeRequired,
];
const CLOSED: [ClosedReason; 5] = [
    ClosedReason::CodeLocked,
    ClosedReason::CodeExpired,
    ClosedReason::Superseded,
    ClosedReason::Revoked,
    ClosedReason::CodeDeliveryFailed,
];

/// A stored reason as a label: one of the known codes, or `other` (a row written by a newer
/// version), so the label set stays bounded whatever the column holds.
pub fn reason_label(reason: &str) -> &'static str {
    REJECTIONS
        .iter()
        .map(|known| known.as_str())
        .chain(CLOSED.iter().map(|known| known.as_str()))
        .find(|known| *known == reason)
        .unwrap_or("other")
}

/// When a request arrived, before the key check, the idempotency lookup and the body: the
/// start of `mfa_login_decision_seconds`.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedAt(pub Instant);

/// Middleware (the outermost of `POST /v1/logins`) that stamps [`ReceivedAt`].
pub async fn stamp_receipt(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(ReceivedAt(Instant::now()));
    next.run(request).await
}

/// The argon2 pool's queue: what waits for a thread or runs, how long a job waited, how long
/// its hashing took, and what was refused because the queue was full. A job is a login's
/// password check, or the admin API hashing a new password (the same argon2id cost, and it
/// holds a thread the logins wait for).
#[derive(Clone)]
pub struct Argon2Metrics {
    queue_depth: Gauge,
    wait: Histogram,
    hash: Histogram,
    overloaded: Counter,
}

impl Argon2Metrics {
    pub fn unregistered() -> Self {
        Self {
            queue_depth: Gauge::default(),
            wait: mfa_metrics::buckets::latency(),
            hash: mfa_metrics::buckets::latency(),
            overloaded: Counter::default(),
        }
    }

    fn register_in(&self, registry: &mut Registry) {
        mfa_metrics::register(
            registry,
            "mfa_argon2_queue_depth",
            "Password checks waiting for a hashing thread or running",
            self.queue_depth.clone(),
        );
        mfa_metrics::register_with_unit(
            registry,
            "mfa_argon2_wait",
            "A password check's wait for a hashing thread",
            Unit::Seconds,
            self.wait.clone(),
        );
        mfa_metrics::register_with_unit(
            registry,
            "mfa_argon2_hash",
            "One argon2id verification (or hashing) on a pool thread",
            Unit::Seconds,
            self.hash.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_argon2_overloaded",
            "Password checks refused because the queue was full (503 overloaded)",
            self.overloaded.clone(),
        );
    }

    /// A job enters the queue; the depth goes down again when the returned guard is dropped
    /// (the job finished, panicked, or was dropped unrun).
    pub(crate) fn queued(&self) -> InQueue {
        self.queue_depth.inc();
        InQueue {
            depth: self.queue_depth.clone(),
        }
    }

    pub(crate) fn started(&self, waited: Duration) {
        self.wait.observe(waited.as_secs_f64());
    }

    pub(crate) fn hashed(&self, took: Duration) {
        self.hash.observe(took.as_secs_f64());
    }

    pub(crate) fn refused(&self) {
        self.overloaded.inc();
    }

    #[cfg(test)]
    pub(crate) fn depth(&self) -> i64 {
        self.queue_depth.get()
    }

    #[cfg(test)]
    pub(crate) fn refusals(&self) -> u64 {
        self.overloaded.get()
    }
}

/// One job counted in the queue depth, until dropped.
pub(crate) struct InQueue {
    depth: Gauge,
}

impl Drop for InQueue {
    fn drop(&mut self) {
        self.depth.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use shared::domain::ChallengeId;

    #[test]
    fn each_answer_has_its_decision_and_only_a_rejection_a_reason() {
        let rejected = |reason: &str| StoredDecision::Rejected {
            reason: reason.into(),
            retry_at: None,
        };
        let cases = [
            (StoredDecision::Pending, ("pending", "none")),
            (
                StoredDecision::Approved { after_mfa: false },
                ("approved", "none"),
            ),
            (
                StoredDecision::MfaRequired {
                    challenge_id: ChallengeId::new_random(),
                    expires_at: Utc::now(),
                    code_recently_sent: true,
                },
                ("mfa_required", "none"),
            ),
            (
                rejected("invalid_credentials"),
                ("rejected", "invalid_credentials"),
            ),
            (rejected("code_expired"), ("rejected", "code_expired")),
            (rejected("free text"), ("rejected", "other")),
        ];
        for (decision, labels) in cases {
            assert_eq!(decision_labels(&decision), labels, "{decision:?}");
        }
    }

    /// Fails to compile when a reason is added and not listed above.
    fn listed(reason: RejectionReason) -> bool {
        match reason {
            RejectionReason::InvalidCredentials
            | RejectionReason::TooManyCodes
            | RejectionReason::TooManyFailedCodes
            | RejectionReason::DenylistedNetwork
            | RejectionReason::AuthMethodNotAllowed
            | RejectionReason::CodePendingElsewhere
            | RejectionReason::PasswordChangeRequired => REJECTIONS.contains(&reason),
        }
    }

    fn listed_closed(reason: ClosedReason) -> bool {
        match reason {
            ClosedReason::CodeLocked
            | ClosedReason::CodeExpired
            | ClosedReason::Superseded
            | ClosedReason::Revoked
            | ClosedReason::CodeDeliveryFailed => CLOSED.contains(&reason),
        }
    }

    #[test]
    fn every_known_reason_is_its_own_label() {
        for reason in REJECTIONS {
            assert!(listed(reason));
            assert_eq!(reason_label(reason.as_str()), reason.as_str());
        }
        for reason in CLOSED {
            assert!(listed_closed(reason));
            assert_eq!(reason_label(reason.as_str()), reason.as_str());
        }
        assert_eq!(reason_label(""), "other");
    }

    #[test]
    fn an_answer_is_counted_and_timed_under_its_labels() {
        let mut registry = Registry::default();
        let metrics = IntakeMetrics::register(&mut registry);
        metrics.login_answered(
            Platform::Ios,
            AuthMethod::Sso,
            &StoredDecision::Rejected {
                reason: "denylisted_network".into(),
                retry_at: None,
            },
            Duration::from_millis(40),
        );
        metrics.rate_limited(Limit::PerAccountAndIp);
        let text = mfa_metrics::render(&registry).unwrap();
        for expected in [
            "mfa_logins_total{platform=\"ios\",auth_method=\"sso\",decision=\"rejected\",reason=\"denylisted_network\"} 1",
            "mfa_login_decision_seconds_count{auth_method=\"sso\"} 1",
            "mfa_rate_limit_refusals_total{limit=\"per_account_and_ip\"} 1",
            "# TYPE mfa_argon2_queue_depth gauge",
            "# TYPE mfa_argon2_wait_seconds histogram",
            "# TYPE mfa_argon2_hash_seconds histogram",
            "# TYPE mfa_argon2_overloaded counter",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
    }
}
