//! The risk worker's own figures: the decisions it published, the risk levels and reasons of
//! the logins it assessed, and the code emails its caps spared. Counted by the consumer once
//! a decision's transaction committed (`crate::consumer`), never by `decision::decide`,
//! which stays pure, nor by `replay`, which counts nothing.
//!
//! Every label is a bounded code (`as_str` of a domain enum): never a user, email or address.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use shared::events::{Event, LoginAttempted, RiskAssessment};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub platform: &'static str,
    pub auth_method: &'static str,
    /// `approved`, `mfa_required`, `code_throttled` or `rejected`.
    pub decision: &'static str,
    /// The rejection's reason code; `none` for the other decisions.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    pub level: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// What one published decision adds to the figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub decision: DecisionLabels,
    /// The assessment's level, when the decision carries one.
    pub level: Option<&'static str>,
    pub reasons: Vec<&'static str>,
    /// With `CodeThrottled`: why no new email was sent.
    pub throttled: Option<&'static str>,
}

impl Counted {
    /// How the decision `event` about `attempt` is counted; None for an event that is no
    /// risk decision.
    pub fn of(attempt: &LoginAttempted, event: &Event) -> Option<Self> {
        let (decision, reason, risk, throttled) = match event {
            Event::LoginApproved(approved) => ("approved", "none", approved.risk.as_ref(), None),
            Event::MfaRequired(required) => ("mfa_required", "none", required.risk.as_ref(), None),
            Event::CodeThrottled(throttled) => (
                "code_throttled",
                "none",
                throttled.risk.as_ref(),
                Some(throttled.reason.as_str()),
            ),
            Event::LoginRejected(rejected) => (
                "rejected",
                rejected.reason.as_str(),
                rejected.risk.as_ref(),
                None,
            ),
            _ => return None,
        };
        Some(Self {
            decision: DecisionLabels {
                platform: attempt.platform.as_str(),
                auth_method: attempt.auth_method.as_str(),
                decision,
                reason,
            },
            level: risk.map(|risk: &RiskAssessment| risk.level.as_str()),
            reasons: risk
                .map(|risk| risk.reasons.iter().map(|r| r.as_str()).collect())
                .unwrap_or_default(),
            throttled,
        })
    }
}

/// The families are handles: clones count into the same series.
#[derive(Clone, Default)]
pub struct RiskMetrics {
    decisions: Family<DecisionLabels, Counter>,
    levels: Family<LevelLabels, Counter>,
    reasons: Family<ReasonLabels, Counter>,
    throttled: Family<ReasonLabels, Counter>,
}

impl RiskMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        mfa_metrics::register(
            registry,
            "mfa_risk_decisions",
            "Risk decisions published, by platform, first factor, decision and rejection reason",
            metrics.decisions.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_risk_levels",
            "Assessed logins by risk level",
            metrics.levels.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_risk_reasons",
            "Each reason an assessment named",
            metrics.reasons.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_codes_throttled",
            "Logins that needed a code and were pointed at the pending one instead of a new email",
            metrics.throttled.clone(),
        );
        metrics
    }

    /// Counts a decision the worker stored (and its outbox will publish).
    pub fn decided(&self, counted: &Counted) {
        self.decisions.get_or_create(&counted.decision).inc();
        if let Some(level) = counted.level {
            self.levels.get_or_create(&LevelLabels { level }).inc();
        }
        for &reason in &counted.reasons {
            self.reasons.get_or_create(&ReasonLabels { reason }).inc();
        }
        if let Some(reason) = counted.throttled {
            self.throttled.get_or_create(&ReasonLabels { reason }).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use shared::domain::{
        AuthMethod, ChallengeId, Locale, Platform, PrimaryFactor, UserAgent, UserId,
    };
    use shared::events::{
        CodeThrottled, LoginApproved, LoginRejected, RejectionReason, RiskLevel, RiskReason,
        ThrottleReason,
    };

    fn attempt() -> LoginAttempted {
        LoginAttempted {
            user_id: None,
            company_id: None,
            auth_method: AuthMethod::Sso,
            primary_factor: PrimaryFactor::Succeeded,
            privileged: false,
            platform: Platform::Ios,
            client: shared::personal::Personal::Clear(shared::events::LoginClient {
                ip: "192.0.2.1".parse().unwrap(),
                user_agent: UserAgent::parse("Mozilla/5.0").unwrap(),
                device_id: None,
            }),
            locale: Locale::default(),
        }
    }

    fn risk(level: RiskLevel, reasons: Vec<RiskReason>) -> Option<RiskAssessment> {
        Some(RiskAssessment {
            score: 1.0,
            level,
            reasons,
            model_version: "test".into(),
            policy_version: None,
            observed: None,
        })
    }

    #[test]
    fn a_rejection_is_counted_with_its_reason_and_its_assessment() {
        let event = Event::LoginRejected(LoginRejected {
            counted: None,
            user_id: None,
            reason: RejectionReason::DenylistedNetwork,
            retry_after_secs: None,
            risk: risk(RiskLevel::High, vec![RiskReason::DenylistedNetwork]),
        });
        assert_eq!(
            Counted::of(&attempt(), &event),
            Some(Counted {
                decision: DecisionLabels {
                    platform: "ios",
                    auth_method: "sso",
                    decision: "rejected",
                    reason: "denylisted_network",
                },
                level: Some("high"),
                reasons: vec!["denylisted_network"],
                throttled: None,
            })
        );
    }

    #[test]
    fn a_throttled_code_names_why_and_other_decisions_have_no_reason() {
        let user_id = UserId::new();
        let throttled = Event::CodeThrottled(CodeThrottled {
            counted: None,
            user_id,
            challenge_id: ChallengeId::new_random(),
            expires_at: Utc::now(),
            reason: ThrottleReason::HourlyCap,
            risk: risk(
                RiskLevel::Medium,
                vec![RiskReason::NewDevice, RiskReason::NewNetwork],
            ),
        });
        let counted = Counted::of(&attempt(), &throttled).unwrap();
        assert_eq!(counted.decision.decision, "code_throttled");
        assert_eq!(counted.decision.reason, "none");
        assert_eq!(counted.throttled, Some("hourly_cap"));
        assert_eq!(counted.level, Some("medium"));
        assert_eq!(counted.reasons, ["new_device", "new_network"]);

        let approved = Event::LoginApproved(LoginApproved {
            counted: None,
            user_id,
            approved_after_mfa: false,
            challenge_id: None,
            risk: None,
        });
        let counted = Counted::of(&attempt(), &approved).unwrap();
        assert_eq!(
            (counted.decision.decision, counted.decision.reason),
            ("approved", "none")
        );
        // Without an assessment there is no level or reason to count.
        assert_eq!((counted.level, counted.reasons.len()), (None, 0));
    }

    #[test]
    fn an_event_that_is_no_decision_is_not_counted() {
        let event = Event::MfaSucceeded(shared::events::MfaSucceeded {
            user_id: UserId::new(),
            challenge_id: ChallengeId::new_random(),
        });
        assert_eq!(Counted::of(&attempt(), &event), None);
    }

    #[test]
    fn counting_a_decision_fills_every_family() {
        let mut registry = Registry::default();
        let metrics = RiskMetrics::register(&mut registry);
        let event = Event::CodeThrottled(CodeThrottled {
            counted: None,
            user_id: UserId::new(),
            challenge_id: ChallengeId::new_random(),
            expires_at: Utc::now(),
            reason: ThrottleReason::RecentlySent,
            risk: risk(RiskLevel::Medium, vec![RiskReason::NewDevice]),
        });
        metrics.decided(&Counted::of(&attempt(), &event).unwrap());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"mfa_risk_decisions_total{platform="ios",auth_method="sso",decision="code_throttled",reason="none"} 1"#,
            r#"mfa_risk_levels_total{level="medium"} 1"#,
            r#"mfa_risk_reasons_total{reason="new_device"} 1"#,
            r#"mfa_codes_throttled_total{reason="recently_sent"} 1"#,
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
    }
}
