//! The decision rules around the risk model: what the model's assessment means for a login
//! (approve, ask for a code, reject), and the caps on code emails. Plain functions of their
//! inputs and of the time passed in, so tests and replays decide as the live worker does.
//!
//! - A first factor the company does not accept is rejected (`auth_method_not_allowed`).
//! - A wrong password (or an unknown account) is rejected.
//! - A login from a deny-listed network is rejected when the policy says so.
//! - SSO and Google logins of non-privileged users are scored like any other, but only a
//!   high-risk one asks for a code (company policy: the identity provider checked the first
//!   factor, so medium and low are approved). Privileged users go through the model like
//!   passwords.
//! - Otherwise the risk level decides: by default medium and high ask for a code.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::ChallengeId;
use shared::domain::{PrimaryFactor, UserId};
use shared::events::{
    LoginAttempted, RejectionReason, RiskAssessment, RiskLevel, RiskReason, ThrottleReason,
};

use crate::model::assess::{DenylistAction, RiskPolicy};

#[derive(Debug, Clone)]
pub struct Policy {
    pub risk: RiskPolicy,
    /// How long an emailed code stays valid.
    pub code_ttl: Duration,
    pub code_caps: CodeCaps,
}

/// Limits on code emails and wrong codes per account: against inbox flooding, and to bound
/// an attacker's guesses. See SECURITY.md for the resulting odds.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeCaps {
    pub emails_per_hour: u32,
    pub min_gap: Duration,
    /// Wrong codes per account in 24 hours after which no new challenge is issued.
    pub failed_codes_per_day: u32,
}

impl Default for CodeCaps {
    fn default() -> Self {
        Self {
            emails_per_hour: 5,
            min_gap: Duration::from_secs(30),
            failed_codes_per_day: 100,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            risk: RiskPolicy::default(),
            code_ttl: Duration::from_secs(10 * 60),
            code_caps: CodeCaps::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Approve { user_id: UserId },
    RequireMfa { user_id: UserId },
    Reject(RejectionReason),
}

pub fn decide(attempt: &LoginAttempted, risk: &RiskAssessment, policy: &RiskPolicy) -> Verdict {
    if attempt.primary_factor == PrimaryFactor::NotAccepted {
        return Verdict::Reject(RejectionReason::AuthMethodNotAllowed);
    }
    let (Some(user_id), PrimaryFactor::Succeeded) = (attempt.user_id, attempt.primary_factor)
    else {
        return Verdict::Reject(RejectionReason::InvalidCredentials);
    };
    if policy.denylist_action == DenylistAction::Reject
        && risk.reasons.contains(&RiskReason::DenylistedNetwork)
    {
        return Verdict::Reject(RejectionReason::DenylistedNetwork);
    }
    if attempt.auth_method.is_federated() && !attempt.privileged {
        // A stolen SSO session used from a new device on a strange network is still high
        // risk: approving every federated login would let it in with no second factor.
        return if risk.level == RiskLevel::High && policy.requires_code(RiskLevel::High) {
            Verdict::RequireMfa { user_id }
        } else {
            Verdict::Approve { user_id }
        };
    }
    if policy.requires_code(risk.level) {
        Verdict::RequireMfa { user_id }
    } else {
        Verdict::Approve { user_id }
    }
}

/// The account's recent codes, as the risk worker saw them issued and closed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeHistory {
    /// Challenges issued (codes emailed) in the last hour.
    pub issued_last_hour: u32,
    pub last_issued_at: Option<DateTime<Utc>>,
    /// The newest challenge that can still be passed, if any.
    pub pending: Option<(ChallengeId, DateTime<Utc>)>,
    /// Wrong codes entered in the last 24 hours.
    pub failed_codes_last_day: u32,
}

/// What to do about a login that needs a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeDecision {
    /// Issue a new challenge and email its code.
    Issue,
    /// Email nothing; the pending challenge stands.
    Reuse {
        challenge_id: ChallengeId,
        expires_at: DateTime<Utc>,
        reason: ThrottleReason,
    },
    /// No code can be had now.
    Refuse(RejectionReason),
}

pub fn code_decision(history: &CodeHistory, now: DateTime<Utc>, caps: &CodeCaps) -> CodeDecision {
    if history.failed_codes_last_day >= caps.failed_codes_per_day {
        return CodeDecision::Refuse(RejectionReason::TooManyFailedCodes);
    }
    let min_gap = shared::time::chrono_span(caps.min_gap);
    let too_soon = history
        .last_issued_at
        .is_some_and(|last| now - last < min_gap);
    let reason = if too_soon {
        ThrottleReason::RecentlySent
    } else if history.issued_last_hour >= caps.emails_per_hour {
        ThrottleReason::HourlyCap
    } else {
        return CodeDecision::Issue;
    };
    match history.pending {
        Some((challenge_id, expires_at)) if expires_at > now => CodeDecision::Reuse {
            challenge_id,
            expires_at,
            reason,
        },
        // Nothing to reuse (the last code was used, locked, or its email failed): the gap
        // still holds, or locking challenges on purpose would buy an attacker more emails.
        _ => CodeDecision::Refuse(RejectionReason::TooManyCodes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{AuthMethod, DeviceId, Platform, UserAgent};

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

    fn attempt(auth_method: AuthMethod, privileged: bool) -> LoginAttempted {
        LoginAttempted {
            user_id: Some(UserId::new()),
            company_id: None,
            auth_method,
            primary_factor: PrimaryFactor::Succeeded,
            privileged,
            platform: Platform::Dashboard,
            ip: "198.51.100.23".parse().unwrap(),
            user_agent: UserAgent::parse(CHROME).unwrap(),
            device_id: Some(DeviceId::parse("dev-1").unwrap()),
        }
    }

    fn risk(level: RiskLevel, reasons: Vec<RiskReason>) -> RiskAssessment {
        RiskAssessment {
            score: 0.0,
            level,
            reasons,
            model_version: "test".into(),
        }
    }

    #[test]
    fn the_level_decides_by_default_medium_and_high_need_a_code() {
        let login = attempt(AuthMethod::Password, false);
        let user_id = login.user_id.unwrap();
        let policy = RiskPolicy::default();
        let low = risk(RiskLevel::Low, vec![]);
        assert_eq!(decide(&login, &low, &policy), Verdict::Approve { user_id });
        for level in [RiskLevel::Medium, RiskLevel::High] {
            assert_eq!(
                decide(&login, &risk(level, vec![]), &policy),
                Verdict::RequireMfa { user_id }
            );
        }
        let lenient = RiskPolicy {
            challenge_medium: false,
            ..RiskPolicy::default()
        };
        assert_eq!(
            decide(&login, &risk(RiskLevel::Medium, vec![]), &lenient),
            Verdict::Approve { user_id }
        );
    }

    #[test]
    fn wrong_passwords_and_unknown_accounts_are_rejected() {
        let rejected = Verdict::Reject(RejectionReason::InvalidCredentials);
        let low = risk(RiskLevel::Low, vec![]);
        let mut wrong = attempt(AuthMethod::Password, false);
        wrong.primary_factor = PrimaryFactor::Failed;
        assert_eq!(decide(&wrong, &low, &RiskPolicy::default()), rejected);
        let mut unknown = attempt(AuthMethod::Password, false);
        unknown.user_id = None;
        unknown.primary_factor = PrimaryFactor::Failed;
        assert_eq!(decide(&unknown, &low, &RiskPolicy::default()), rejected);
    }

    #[test]
    fn a_first_factor_the_company_does_not_accept_is_rejected_with_its_reason() {
        let low = risk(RiskLevel::Low, vec![]);
        for method in [AuthMethod::Sso, AuthMethod::Google, AuthMethod::Password] {
            let mut claimed = attempt(method, false);
            claimed.primary_factor = PrimaryFactor::NotAccepted;
            assert_eq!(
                decide(&claimed, &low, &RiskPolicy::default()),
                Verdict::Reject(RejectionReason::AuthMethodNotAllowed)
            );
        }
    }

    #[test]
    fn federated_logins_challenge_only_privileged_users() {
        let policy = RiskPolicy::default();
        let first = risk(RiskLevel::Medium, vec![RiskReason::FirstLogin]);
        for method in [AuthMethod::Sso, AuthMethod::Google] {
            let member = attempt(method, false);
            assert!(matches!(
                decide(&member, &first, &policy),
                Verdict::Approve { .. }
            ));
            let admin = attempt(method, true);
            assert!(matches!(
                decide(&admin, &first, &policy),
                Verdict::RequireMfa { .. }
            ));
        }
    }

    #[test]
    fn a_high_risk_federated_login_asks_non_privileged_users_for_a_code() {
        let policy = RiskPolicy::default();
        let high = risk(
            RiskLevel::High,
            vec![RiskReason::NewDevice, RiskReason::ManyAccountsFromIp],
        );
        let low = risk(RiskLevel::Low, vec![]);
        for method in [AuthMethod::Sso, AuthMethod::Google] {
            for privileged in [false, true] {
                let login = attempt(method, privileged);
                let user_id = login.user_id.unwrap();
                assert_eq!(
                    decide(&login, &high, &policy),
                    Verdict::RequireMfa { user_id },
                    "{method:?}, privileged: {privileged}"
                );
                assert_eq!(decide(&login, &low, &policy), Verdict::Approve { user_id });
            }
        }
        // The levels that ask for a code still rule: with none, nothing is asked.
        let never = RiskPolicy {
            challenge_medium: false,
            challenge_high: false,
            ..RiskPolicy::default()
        };
        let member = attempt(AuthMethod::Sso, false);
        assert!(matches!(
            decide(&member, &high, &never),
            Verdict::Approve { .. }
        ));
    }

    #[test]
    fn deny_listed_networks_are_refused_only_when_the_policy_says_so() {
        let login = attempt(AuthMethod::Password, false);
        let listed = risk(RiskLevel::High, vec![RiskReason::DenylistedNetwork]);
        assert!(matches!(
            decide(&login, &listed, &RiskPolicy::default()),
            Verdict::RequireMfa { .. }
        ));
        let refusing = RiskPolicy {
            denylist_action: DenylistAction::Reject,
            ..RiskPolicy::default()
        };
        assert_eq!(
            decide(&login, &listed, &refusing),
            Verdict::Reject(RejectionReason::DenylistedNetwork)
        );
    }

    fn history(
        issued_last_hour: u32,
        last_ago_secs: Option<i64>,
        pending: bool,
    ) -> (CodeHistory, DateTime<Utc>) {
        let now = Utc::now();
        let history = CodeHistory {
            issued_last_hour,
            last_issued_at: last_ago_secs.map(|s| now - chrono::Duration::seconds(s)),
            pending: pending.then(|| {
                (
                    ChallengeId::new_random(),
                    now + chrono::Duration::minutes(5),
                )
            }),
            failed_codes_last_day: 0,
        };
        (history, now)
    }

    #[test]
    fn a_first_code_is_issued() {
        let (h, now) = history(0, None, false);
        assert_eq!(
            code_decision(&h, now, &CodeCaps::default()),
            CodeDecision::Issue
        );
    }

    #[test]
    fn within_the_gap_the_pending_challenge_is_reused() {
        let (h, now) = history(1, Some(10), true);
        let (challenge_id, expires_at) = h.pending.unwrap();
        assert_eq!(
            code_decision(&h, now, &CodeCaps::default()),
            CodeDecision::Reuse {
                challenge_id,
                expires_at,
                reason: ThrottleReason::RecentlySent
            }
        );
        // After the gap, a new code.
        let (h, now) = history(1, Some(31), true);
        assert_eq!(
            code_decision(&h, now, &CodeCaps::default()),
            CodeDecision::Issue
        );
    }

    #[test]
    fn the_hourly_cap_reuses_or_refuses() {
        let (h, now) = history(5, Some(600), true);
        assert!(matches!(
            code_decision(&h, now, &CodeCaps::default()),
            CodeDecision::Reuse {
                reason: ThrottleReason::HourlyCap,
                ..
            }
        ));
        let (h, now) = history(5, Some(600), false);
        assert_eq!(
            code_decision(&h, now, &CodeCaps::default()),
            CodeDecision::Refuse(RejectionReason::TooManyCodes)
        );
    }

    #[test]
    fn the_gap_holds_even_without_a_pending_code() {
        let (h, now) = history(1, Some(5), false);
        assert_eq!(
            code_decision(&h, now, &CodeCaps::default()),
            CodeDecision::Refuse(RejectionReason::TooManyCodes)
        );
    }

    #[test]
    fn the_daily_ceiling_of_wrong_codes_refuses_new_challenges() {
        let (mut h, now) = history(0, None, false);
        h.failed_codes_last_day = 100;
        assert_eq!(
            code_decision(&h, now, &CodeCaps::default()),
            CodeDecision::Refuse(RejectionReason::TooManyFailedCodes)
        );
    }
}
