//! The verifier's own figures: the code checks, by what the judge made of them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::judge::Verdict;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Registered once per service (the families are handles: clones count in the same series).
#[derive(Clone)]
pub struct VerifierMetrics {
    verifications: Family<OutcomeLabels, Counter>,
}

impl VerifierMetrics {
    /// Families counted nowhere: for a handler outside a service (a test's).
    pub fn unregistered() -> Self {
        Self {
            verifications: Family::default(),
        }
    }

    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        mfa_metrics::register(
            registry,
            "mfa_verifications",
            "Code checks by outcome (locked_now: the wrong code that locked the challenge)",
            metrics.verifications.clone(),
        );
        metrics
    }

    /// One try answered: `verdict` as judged, None for a challenge that does not exist for
    /// the caller's company.
    pub fn verified(&self, verdict: Option<Verdict>) {
        self.verifications
            .get_or_create(&OutcomeLabels {
                outcome: outcome(verdict),
            })
            .inc();
    }
}

/// The `outcome` label of a try: one per verdict (the attempts left are not a label, they
/// would only split the wrong codes), and `not_found` for an unknown challenge.
pub fn outcome(verdict: Option<Verdict>) -> &'static str {
    match verdict {
        None => "not_found",
        Some(Verdict::Approved) => "verified",
        Some(Verdict::WrongCode { .. }) => "wrong_code",
        Some(Verdict::LockedNow) => "locked_now",
        Some(Verdict::Locked) => "locked",
        Some(Verdict::Expired) => "expired",
        Some(Verdict::AlreadyUsed) => "already_used",
        Some(Verdict::Superseded) => "superseded",
        Some(Verdict::Revoked) => "revoked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_has_its_own_outcome_and_an_unknown_challenge_is_not_found() {
        let cases = [
            (None, "not_found"),
            (Some(Verdict::Approved), "verified"),
            (
                Some(Verdict::WrongCode {
                    attempts_remaining: 3,
                }),
                "wrong_code",
            ),
            (
                Some(Verdict::WrongCode {
                    attempts_remaining: 1,
                }),
                "wrong_code",
            ),
            (Some(Verdict::LockedNow), "locked_now"),
            (Some(Verdict::Locked), "locked"),
            (Some(Verdict::Expired), "expired"),
            (Some(Verdict::AlreadyUsed), "already_used"),
            (Some(Verdict::Superseded), "superseded"),
            (Some(Verdict::Revoked), "revoked"),
        ];
        for (verdict, expected) in cases {
            assert_eq!(outcome(verdict), expected, "{verdict:?}");
        }
    }

    #[test]
    fn a_try_is_counted_under_its_outcome() {
        let mut registry = Registry::default();
        let metrics = VerifierMetrics::register(&mut registry);
        metrics.verified(Some(Verdict::LockedNow));
        metrics.verified(None);
        metrics.verified(None);
        let text = mfa_metrics::render(&registry).unwrap();
        assert!(
            text.contains("mfa_verifications_total{outcome=\"locked_now\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mfa_verifications_total{outcome=\"not_found\"} 2"),
            "{text}"
        );
    }
}
