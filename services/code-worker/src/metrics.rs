//! The code worker's own figures: how long a code took from the login's `MfaRequired` to the
//! SMTP server accepting its email, the SMTP sends tried, failed and retried, and each code
//! email's final outcome. Counted by the sender loop (`crate::sender`) where it talks to the
//! SMTP server and records outcomes.

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use shared::events::Event;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `sent` (`CodeSent`) or `failed` (`CodeDeliveryFailed`).
    pub outcome: &'static str,
}

/// The families are handles: clones count into the same series.
#[derive(Clone)]
pub struct CodeMetrics {
    delivery: Histogram,
    attempts: Counter,
    failures: Counter,
    retries: Counter,
    deliveries: Family<OutcomeLabels, Counter>,
}

impl Default for CodeMetrics {
    fn default() -> Self {
        Self {
            delivery: mfa_metrics::buckets::latency(),
            attempts: Counter::default(),
            failures: Counter::default(),
            retries: Counter::default(),
            deliveries: Family::default(),
        }
    }
}

impl CodeMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        mfa_metrics::register_with_unit(
            registry,
            "mfa_code_delivery",
            "From the MfaRequired event to the SMTP server accepting the code email",
            Unit::Seconds,
            metrics.delivery.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_email_send_attempts",
            "SMTP sends tried",
            metrics.attempts.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_email_send_failures",
            "SMTP sends that failed",
            metrics.failures.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_email_send_retries",
            "Failed SMTP sends followed by a retry later",
            metrics.retries.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_code_deliveries",
            "Code emails' final outcome (failed: CodeDeliveryFailed, given up)",
            metrics.deliveries.clone(),
        );
        // Both series from the start: a failure rate reads 0, not "no data", before the
        // first failure.
        for outcome in ["sent", "failed"] {
            drop(metrics.deliveries.get_or_create(&OutcomeLabels { outcome }));
        }
        metrics
    }

    /// An SMTP send is about to be tried.
    pub fn send_attempted(&self) {
        self.attempts.inc();
    }

    /// The SMTP server refused the email, or could not be reached; `retried`: another try
    /// is scheduled.
    pub fn send_failed(&self, retried: bool) {
        self.failures.inc();
        if retried {
            self.retries.inc();
        }
    }

    /// The SMTP server accepted the email at `accepted_at`.
    pub fn delivered(&self, mfa_required_at: Option<DateTime<Utc>>, accepted_at: DateTime<Utc>) {
        if let Some(seconds) = delivery_seconds(mfa_required_at, accepted_at) {
            self.delivery.observe(seconds);
        }
    }

    /// An email's outcome was recorded (once per challenge).
    pub fn outcome_recorded(&self, outcome: &Event) {
        if let Some(outcome) = outcome_label(outcome) {
            self.deliveries
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
        }
    }
}

/// The delivery time, from the `MfaRequired`'s time (unknown for a challenge stored before
/// it was kept) to the acceptance; 0 when the producer's clock was ahead of this one's.
pub fn delivery_seconds(
    mfa_required_at: Option<DateTime<Utc>>,
    accepted_at: DateTime<Utc>,
) -> Option<f64> {
    let took = accepted_at.signed_duration_since(mfa_required_at?);
    Some(took.to_std().map_or(0.0, |took| took.as_secs_f64()))
}

/// The outcome label of a recorded email outcome; None for any other event.
pub fn outcome_label(outcome: &Event) -> Option<&'static str> {
    match outcome {
        Event::CodeSent(_) => Some("sent"),
        Event::CodeDeliveryFailed(_) => Some("failed"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{ChallengeId, UserId};
    use shared::events::{CodeDeliveryFailed, CodeSent, MfaSucceeded};

    #[test]
    fn the_delivery_is_timed_from_the_mfa_required_and_never_negative() {
        let accepted = Utc::now();
        let required = accepted - chrono::Duration::milliseconds(2500);
        assert_eq!(delivery_seconds(Some(required), accepted), Some(2.5));
        // Another host's clock ahead of this one's.
        let ahead = accepted + chrono::Duration::seconds(1);
        assert_eq!(delivery_seconds(Some(ahead), accepted), Some(0.0));
        assert_eq!(delivery_seconds(None, accepted), None);
    }

    #[test]
    fn outcomes_are_sent_or_failed() {
        let (user_id, challenge_id) = (UserId::new(), ChallengeId::new_random());
        let sent = Event::CodeSent(CodeSent {
            user_id,
            challenge_id,
            expires_at: Utc::now(),
        });
        let failed = Event::CodeDeliveryFailed(CodeDeliveryFailed {
            user_id,
            challenge_id,
            reason: "smtp".into(),
        });
        let other = Event::MfaSucceeded(MfaSucceeded {
            user_id,
            challenge_id,
        });
        assert_eq!(outcome_label(&sent), Some("sent"));
        assert_eq!(outcome_label(&failed), Some("failed"));
        assert_eq!(outcome_label(&other), None);
    }

    #[test]
    fn the_families_render_under_their_catalogue_names() {
        let mut registry = Registry::default();
        let metrics = CodeMetrics::register(&mut registry);
        metrics.send_attempted();
        metrics.send_failed(true);
        metrics.send_attempted();
        let now = Utc::now();
        metrics.delivered(Some(now - chrono::Duration::seconds(1)), now);
        metrics.outcome_recorded(&Event::CodeSent(CodeSent {
            user_id: UserId::new(),
            challenge_id: ChallengeId::new_random(),
            expires_at: now,
        }));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "mfa_email_send_attempts_total 2",
            "mfa_email_send_failures_total 1",
            "mfa_email_send_retries_total 1",
            "mfa_code_delivery_seconds_count 1",
            r#"mfa_code_deliveries_total{outcome="sent"} 1"#,
            r#"mfa_code_deliveries_total{outcome="failed"} 0"#,
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
    }
}
