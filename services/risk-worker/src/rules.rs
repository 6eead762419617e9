//! The first risk model: plain functions of the login, the user's history and the policy.
//! No clock and no IO here, so tests and replays decide exactly as the live worker does.
//!
//! - A wrong password (or an unknown account) is rejected, and counts as a failure.
//! - SSO and Google logins of non-privileged users are approved: the identity provider
//!   already did the work. Privileged users go through the same rules as passwords.
//! - Otherwise a code is asked for when the user has no approved login yet; when the device,
//!   the IP network (/24, /48) or the browser family + OS is one the user has not had an
//!   approved login from; or after too many failed passwords in a short window.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::ChallengeId;
use shared::domain::{DeviceId, PrimaryFactor, UserId};
use shared::events::{LoginAttempted, RejectionReason, RiskReason, ThrottleReason};
use shared::user_agent::UserAgentSummary;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Failed passwords within `failed_attempts_window` from which every login needs a code.
    pub failed_attempts_threshold: u32,
    pub failed_attempts_window: Duration,
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
            failed_attempts_threshold: 5,
            failed_attempts_window: Duration::from_secs(15 * 60),
            code_ttl: Duration::from_secs(10 * 60),
            code_caps: CodeCaps::default(),
        }
    }
}

/// What the rules compare against history, as stored values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFingerprint {
    pub device: String,
    pub network: String,
    pub browser: String,
}

impl LoginFingerprint {
    pub fn of(attempt: &LoginAttempted) -> Self {
        Self {
            device: device_value(attempt.device_id.as_ref()),
            network: network_of(attempt.ip),
            browser: UserAgentSummary::parse(&attempt.user_agent).browser_and_os(),
        }
    }
}

/// A login without a device id is its own "device", so a client that never sends one is not
/// challenged every time, while one that always does is challenged when it stops.
fn device_value(device_id: Option<&DeviceId>) -> String {
    match device_id {
        Some(id) => format!("id:{}", id.as_str()),
        None => "absent".to_owned(),
    }
}

/// The address's network: /24 for IPv4, /48 for IPv6 (IPv4-mapped IPv6 counts as IPv4).
pub fn network_of(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{prefix}/48")
        }
    }
}

/// What the user's history says about this login's fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub has_approved_login: bool,
    pub knows_device: bool,
    pub knows_network: bool,
    pub knows_browser: bool,
    /// Failed passwords on the account within the policy's window before this login.
    pub recent_failures: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Approve {
        user_id: UserId,
    },
    RequireMfa {
        user_id: UserId,
        reasons: Vec<RiskReason>,
    },
    Reject(RejectionReason),
}

pub fn decide(attempt: &LoginAttempted, history: &History, policy: &Policy) -> Verdict {
    let (Some(user_id), PrimaryFactor::Succeeded) = (attempt.user_id, attempt.primary_factor)
    else {
        return Verdict::Reject(RejectionReason::InvalidCredentials);
    };
    if attempt.auth_method.is_federated() && !attempt.privileged {
        return Verdict::Approve { user_id };
    }
    let mut reasons = Vec::new();
    if !history.has_approved_login {
        reasons.push(RiskReason::FirstLogin);
    } else {
        if !history.knows_device {
            reasons.push(RiskReason::NewDevice);
        }
        if !history.knows_network {
            reasons.push(RiskReason::NewNetwork);
        }
        if !history.knows_browser {
            reasons.push(RiskReason::NewBrowser);
        }
    }
    if history.recent_failures >= policy.failed_attempts_threshold {
        reasons.push(RiskReason::FailedAttemptsBurst);
    }
    if reasons.is_empty() {
        Verdict::Approve { user_id }
    } else {
        Verdict::RequireMfa { user_id, reasons }
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
    let min_gap = chrono::Duration::from_std(caps.min_gap).unwrap_or(chrono::Duration::MAX);
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
    use shared::domain::{AuthMethod, Platform, UserAgent};

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

    fn approve(login: &LoginAttempted) -> Verdict {
        Verdict::Approve {
            user_id: login.user_id.unwrap(),
        }
    }

    fn require(login: &LoginAttempted, reasons: Vec<RiskReason>) -> Verdict {
        Verdict::RequireMfa {
            user_id: login.user_id.unwrap(),
            reasons,
        }
    }

    fn known() -> History {
        History {
            has_approved_login: true,
            knows_device: true,
            knows_network: true,
            knows_browser: true,
            recent_failures: 0,
        }
    }

    #[test]
    fn first_login_needs_a_code() {
        let login = attempt(AuthMethod::Password, false);
        let verdict = decide(&login, &History::default(), &Policy::default());
        assert_eq!(verdict, require(&login, vec![RiskReason::FirstLogin]));
    }

    #[test]
    fn a_known_context_is_approved() {
        let login = attempt(AuthMethod::Password, false);
        assert_eq!(
            decide(&login, &known(), &Policy::default()),
            approve(&login)
        );
    }

    #[test]
    fn each_new_attribute_is_a_reason() {
        let login = attempt(AuthMethod::Password, false);
        let history = History {
            knows_device: false,
            knows_browser: false,
            ..known()
        };
        assert_eq!(
            decide(&login, &history, &Policy::default()),
            require(&login, vec![RiskReason::NewDevice, RiskReason::NewBrowser])
        );
        let history = History {
            knows_network: false,
            ..known()
        };
        assert_eq!(
            decide(&login, &history, &Policy::default()),
            require(&login, vec![RiskReason::NewNetwork])
        );
    }

    #[test]
    fn a_burst_of_failures_needs_a_code_even_from_a_known_context() {
        let policy = Policy::default();
        let login = attempt(AuthMethod::Password, false);
        let below = History {
            recent_failures: 4,
            ..known()
        };
        assert_eq!(decide(&login, &below, &policy), approve(&login));
        let at = History {
            recent_failures: 5,
            ..known()
        };
        assert_eq!(
            decide(&login, &at, &policy),
            require(&login, vec![RiskReason::FailedAttemptsBurst])
        );
    }

    #[test]
    fn wrong_passwords_and_unknown_accounts_are_rejected() {
        let rejected = Verdict::Reject(RejectionReason::InvalidCredentials);
        let mut wrong = attempt(AuthMethod::Password, false);
        wrong.primary_factor = PrimaryFactor::Failed;
        assert_eq!(decide(&wrong, &known(), &Policy::default()), rejected);
        let mut unknown = attempt(AuthMethod::Password, false);
        unknown.user_id = None;
        unknown.primary_factor = PrimaryFactor::Failed;
        assert_eq!(
            decide(&unknown, &History::default(), &Policy::default()),
            rejected
        );
    }

    #[test]
    fn federated_logins_challenge_only_privileged_users() {
        let policy = Policy::default();
        for method in [AuthMethod::Sso, AuthMethod::Google] {
            let member = attempt(method, false);
            assert_eq!(
                decide(&member, &History::default(), &policy),
                approve(&member)
            );
            let admin = attempt(method, true);
            assert_eq!(
                decide(&admin, &History::default(), &policy),
                require(&admin, vec![RiskReason::FirstLogin])
            );
            assert_eq!(decide(&admin, &known(), &policy), approve(&admin));
        }
    }

    #[test]
    fn networks_are_prefixes() {
        assert_eq!(
            network_of("198.51.100.23".parse().unwrap()),
            "198.51.100.0/24"
        );
        assert_eq!(
            network_of("::ffff:198.51.100.23".parse().unwrap()),
            "198.51.100.0/24"
        );
        assert_eq!(
            network_of("2001:db8:abcd:12::1".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
    }

    #[test]
    fn a_missing_device_id_is_its_own_device() {
        let mut login = attempt(AuthMethod::Password, false);
        login.device_id = None;
        assert_eq!(LoginFingerprint::of(&login).device, "absent");
        let with_id = LoginFingerprint::of(&attempt(AuthMethod::Password, false));
        assert_eq!(with_id.device, "id:dev-1");
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
