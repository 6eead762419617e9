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
//!
//! A company's risk policy (`RiskPolicyChanged`, applied by `Policy::in_force`) changes the
//! thresholds, the levels that ask for a code and how long a login stays known, and adds:
//! - trusted networks: a login from one that would ask for a code only for what is new about
//!   it (device, network, browser, a first login) is approved (`decide_in_force`);
//! - observe-only: a login that would ask for a code is approved, and says so.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::{AuthMethod, PrimaryFactor, UserId};
use shared::domain::{ChallengeId, DeviceId};
use shared::events::{
    ChallengeLevel, Cidr, CompanyRiskPolicy, LoginAttempted, RejectionReason, RiskAssessment,
    RiskLevel, RiskReason, ThrottleReason,
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
    Approve {
        user_id: UserId,
    },
    RequireMfa {
        user_id: UserId,
    },
    /// Would have required MFA; approved because the company's policy only observes.
    Observed {
        user_id: UserId,
    },
    Reject(RejectionReason),
}

/// A company's risk policy as the risk worker learned it from `RiskPolicyChanged`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyPolicy {
    /// From 1; 0 is the deployment's defaults.
    pub version: u64,
    pub policy: CompanyRiskPolicy,
}

/// What one login is decided under: the deployment's policy with its company's changes.
#[derive(Debug, Clone)]
pub struct InForce<'a> {
    pub policy: Cow<'a, Policy>,
    /// The company policy's version; 0: the deployment's defaults.
    pub version: u64,
    pub trusted_networks: &'a [Cidr],
    pub observe_only: bool,
}

impl Policy {
    /// The deployment's policy changed by `company`'s (None: as it is). Borrowed when the
    /// company changes none of the model's settings, so most logins copy nothing.
    pub fn in_force<'a>(&'a self, company: Option<&'a CompanyPolicy>) -> InForce<'a> {
        let Some(CompanyPolicy { version, policy }) = company.filter(|c| c.version > 0) else {
            return InForce {
                policy: Cow::Borrowed(self),
                version: 0,
                trusted_networks: &[],
                observe_only: false,
            };
        };
        // An empty list of levels is refused by the admin API; one in an event is ignored
        // rather than turning every code off.
        let levels = policy.challenge_levels.as_deref().filter(|l| !l.is_empty());
        let changes_model = policy.medium_threshold.is_some()
            || policy.high_threshold.is_some()
            || levels.is_some()
            || policy.device_known_days.is_some();
        let in_force = if changes_model {
            let mut changed = self.clone();
            let risk = &mut changed.risk;
            risk.medium_threshold = policy.medium_threshold.unwrap_or(risk.medium_threshold);
            risk.high_threshold = policy.high_threshold.unwrap_or(risk.high_threshold);
            if let Some(levels) = levels {
                risk.challenge_medium = levels.contains(&ChallengeLevel::Medium);
                risk.challenge_high = levels.contains(&ChallengeLevel::High);
            }
            if let Some(days) = policy.device_known_days {
                // The deployment keeps no longer than its own window (housekeeping deletes
                // older logins), so a longer one could not be honoured alike live and in
                // replay.
                let company = Duration::from_secs(u64::from(days) * 24 * 3600);
                risk.history_window = risk.history_window.min(company);
            }
            Cow::Owned(changed)
        } else {
            Cow::Borrowed(self)
        };
        InForce {
            policy: in_force,
            version: *version,
            trusted_networks: policy.trusted_networks.as_deref().unwrap_or(&[]),
            observe_only: policy.observe_only.unwrap_or(false),
        }
    }
}

impl InForce<'_> {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_networks
            .iter()
            .any(|network| network.contains(ip))
    }

    /// The version a decision records: None for the deployment's defaults (so decisions of
    /// companies without a policy read as before).
    pub fn recorded_version(&self) -> Option<u64> {
        (self.version > 0).then_some(self.version)
    }
}

/// What a trusted network excuses: what is merely new about a login. Anything else (a
/// deny-listed network, a burst of failures, impossible travel, and any reason added later,
/// e.g. one the user reported) still asks for a code there: an office network vouches for
/// where a login comes from, not for who holds the password.
const EXCUSED_ON_TRUSTED_NETWORKS: &[RiskReason] = &[
    RiskReason::FirstLogin,
    RiskReason::NewDevice,
    RiskReason::MissingDeviceId,
    RiskReason::NewNetwork,
    RiskReason::NewAsn,
    RiskReason::NewCountry,
    RiskReason::NewBrowser,
];

/// `decide` under a company's policy: a code the login would be asked for only for what is
/// new about it is not asked on a trusted network, and in observe-only mode none is (the
/// verdict says what would have been asked).
pub fn decide_in_force(
    attempt: &LoginAttempted,
    ip: IpAddr,
    risk: &RiskAssessment,
    in_force: &InForce<'_>,
) -> Verdict {
    match decide(attempt, risk, &in_force.policy.risk) {
        Verdict::RequireMfa { user_id }
            if in_force.trusts(ip)
                && risk
                    .reasons
                    .iter()
                    .all(|reason| EXCUSED_ON_TRUSTED_NETWORKS.contains(reason)) =>
        {
            Verdict::Approve { user_id }
        }
        Verdict::RequireMfa { user_id } if in_force.observe_only => Verdict::Observed { user_id },
        verdict => verdict,
    }
}

/// Whether `attempt` is refused `password_change_required` for a user whose password must
/// change first (`UserFacts::password_change_required`): a password login whose password was
/// right, whatever the model thinks of it. The right password is what the reported attacker
/// has, and they may log in from the user's own network and a device id they copied, so no
/// signal of the login can tell them from the user; only a new password does. A wrong
/// password is still `invalid_credentials` (and counted), so the refusal tells nobody without
/// the password anything; SSO and Google logins did not use the password and are decided as
/// ever.
pub fn password_must_change(attempt: &LoginAttempted, password_change_required: bool) -> bool {
    password_change_required
        && attempt.user_id.is_some()
        && attempt.auth_method == AuthMethod::Password
        && attempt.primary_factor == PrimaryFactor::Succeeded
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
    /// When each challenge of the last hour was issued (its code emailed), oldest first.
    pub issued_last_hour: Vec<DateTime<Utc>>,
    pub last_issued_at: Option<DateTime<Utc>>,
    /// The newest challenge, if it can still be passed: not used, locked, revoked or failed
    /// to email (and not expired at the decision's `now`, which `code_decision` checks).
    pub pending: Option<PendingCode>,
    /// When each wrong code of the last 24 hours was entered, oldest first.
    pub failed_codes_last_day: Vec<DateTime<Utc>>,
}

/// A code that can still be passed, and the device whose login it was emailed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub challenge_id: ChallengeId,
    pub expires_at: DateTime<Utc>,
    pub device: Option<DeviceId>,
}

impl PendingCode {
    /// Whether a login from `device` may wait on this code. Passing a challenge approves
    /// every login waiting on it, so only the device it was emailed for may share it: another
    /// device's login sharing it would be let in by the code the first device's user typed
    /// (an attacker holding the password, logging in while the user does). A login without a
    /// device id is no device's.
    fn is_for(&self, device: Option<&DeviceId>) -> bool {
        matches!((self.device.as_ref(), device), (Some(ours), Some(theirs)) if ours == theirs)
    }
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
    /// No code can be had before `retry_at`.
    Refuse {
        reason: RejectionReason,
        retry_at: DateTime<Utc>,
    },
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The gap and the caps, for a login from `device`, in this order:
/// - past the daily ceiling of wrong codes, no code (until the oldest that counts leaves the
///   24 hours);
/// - a usable pending code of the same device, within the gap or past the hourly cap, is
///   reused: logging in again never destroys the code the user is about to type, nor sends a
///   second email;
/// - a usable pending code of another device is never shared (see `PendingCode::is_for`):
///   within the gap the login is refused until the gap ends (`code_pending_elsewhere`), past
///   the hourly cap until the cap has room (`too_many_codes`), otherwise it gets its own code;
/// - with no usable code (used, locked, revoked, undelivered, expired) a new one is issued at
///   once, gap or not: the user was told to log in again for a new code, and the hourly cap
///   still bounds the emails (so locking challenges on purpose floods no inbox);
/// - past the hourly cap with nothing to reuse, no code until the oldest email that counts
///   leaves the hour.
pub fn code_decision(
    history: &CodeHistory,
    device: Option<&DeviceId>,
    now: DateTime<Utc>,
    caps: &CodeCaps,
) -> CodeDecision {
    if let Some(retry_at) = cap_frees_at(
        &history.failed_codes_last_day,
        caps.failed_codes_per_day,
        DAY,
        now,
    ) {
        return CodeDecision::Refuse {
            reason: RejectionReason::TooManyFailedCodes,
            retry_at,
        };
    }
    let hourly_full = cap_frees_at(&history.issued_last_hour, caps.emails_per_hour, HOUR, now);
    let gap_ends = history
        .last_issued_at
        .map(|last| shared::time::saturating_add(last, caps.min_gap))
        .filter(|ends| *ends > now);
    match history.pending.as_ref().filter(|p| p.expires_at > now) {
        Some(pending) if pending.is_for(device) => {
            let reason = if gap_ends.is_some() {
                ThrottleReason::RecentlySent
            } else if hourly_full.is_some() {
                ThrottleReason::HourlyCap
            } else {
                return CodeDecision::Issue;
            };
            CodeDecision::Reuse {
                challenge_id: pending.challenge_id,
                expires_at: pending.expires_at,
                reason,
            }
        }
        Some(_) => match (gap_ends, hourly_full) {
            (Some(retry_at), _) => CodeDecision::Refuse {
                reason: RejectionReason::CodePendingElsewhere,
                retry_at,
            },
            (None, Some(retry_at)) => CodeDecision::Refuse {
                reason: RejectionReason::TooManyCodes,
                retry_at,
            },
            (None, None) => CodeDecision::Issue,
        },
        None => match hourly_full {
            Some(retry_at) => CodeDecision::Refuse {
                reason: RejectionReason::TooManyCodes,
                retry_at,
            },
            None => CodeDecision::Issue,
        },
    }
}

/// When a cap of `cap` events per `window` is full at `now`, the instant it has room again:
/// once enough of the oldest `times` (those within the window, oldest first) have left it.
/// None when it has room now.
fn cap_frees_at(
    times: &[DateTime<Utc>],
    cap: u32,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let since = shared::time::saturating_sub(now, window);
    let mut counted: Vec<DateTime<Utc>> = times.iter().copied().filter(|t| *t > since).collect();
    counted.sort_unstable();
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if counted.len() < cap {
        return None;
    }
    // With `n` counted, the cap has room once `n - cap + 1` of them have left the window: when
    // the one at index `n - cap` (oldest first) does. A cap of 0 never has room: a window on.
    Some(
        counted
            .get(counted.len() - cap)
            .map_or(shared::time::saturating_add(now, window), |t| {
                shared::time::saturating_add(*t, window)
            }),
    )
}

/// Whole seconds from `now` until `at`, rounded up (a client that waits exactly that long is
/// not refused again); at least 1, so a wait is never announced as none.
pub fn seconds_until(at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let millis = u64::try_from((at - now).num_milliseconds()).unwrap_or(0);
    millis.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{AuthMethod, DeviceId, Platform, UserAgent};

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

    fn ip_of(attempt: &LoginAttempted) -> IpAddr {
        attempt.client.in_clear().unwrap().ip
    }

    fn attempt(auth_method: AuthMethod, privileged: bool) -> LoginAttempted {
        LoginAttempted {
            user_id: Some(UserId::new()),
            company_id: None,
            auth_method,
            primary_factor: PrimaryFactor::Succeeded,
            privileged,
            platform: Platform::Dashboard,
            client: shared::personal::Personal::Clear(shared::events::LoginClient {
                ip: "198.51.100.23".parse().unwrap(),
                user_agent: UserAgent::parse(CHROME).unwrap(),
                device_id: Some(DeviceId::parse("dev-1").unwrap()),
            }),
            locale: shared::domain::Locale::En,
        }
    }

    fn risk(level: RiskLevel, reasons: Vec<RiskReason>) -> RiskAssessment {
        RiskAssessment {
            score: 0.0,
            level,
            reasons,
            model_version: "test".into(),
            policy_version: None,
            observed: None,
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
    fn only_a_right_password_of_a_user_who_must_change_it_is_refused_for_it() {
        let password = attempt(AuthMethod::Password, false);
        assert!(password_must_change(&password, true));
        assert!(!password_must_change(&password, false));
        // Privileged or not: the password is what leaked.
        assert!(password_must_change(
            &attempt(AuthMethod::Password, true),
            true
        ));
        // The identity provider checked those, not the password.
        for federated in [AuthMethod::Sso, AuthMethod::Google] {
            for privileged in [false, true] {
                assert!(!password_must_change(&attempt(federated, privileged), true));
            }
        }
        // A wrong password stays `invalid_credentials` (and counted): nothing is told to
        // someone without the password. A first factor the company refuses, and an unknown
        // account, keep their own answers too.
        for primary_factor in [PrimaryFactor::Failed, PrimaryFactor::NotAccepted] {
            let other = LoginAttempted {
                primary_factor,
                ..password.clone()
            };
            assert!(!password_must_change(&other, true), "{primary_factor:?}");
        }
        let unknown = LoginAttempted {
            user_id: None,
            ..password
        };
        assert!(!password_must_change(&unknown, true));
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

    fn company(version: u64, policy: CompanyRiskPolicy) -> CompanyPolicy {
        CompanyPolicy { version, policy }
    }

    fn office() -> Cidr {
        Cidr::parse("198.51.100.0/24").unwrap()
    }

    #[test]
    fn without_a_company_policy_the_deployments_rules_hold_and_no_version_is_recorded() {
        let deployment = Policy::default();
        for none in [None, Some(company(0, CompanyRiskPolicy::default()))] {
            let in_force = deployment.in_force(none.as_ref());
            assert!(matches!(in_force.policy, Cow::Borrowed(_)));
            assert_eq!(in_force.recorded_version(), None);
            assert!(!in_force.observe_only);
            assert!(!in_force.trusts("198.51.100.23".parse().unwrap()));
        }
        // A policy of trusted networks and observe-only alone copies nothing of the model's.
        let light = company(
            3,
            CompanyRiskPolicy {
                trusted_networks: Some(vec![office()]),
                observe_only: Some(true),
                ..CompanyRiskPolicy::default()
            },
        );
        let in_force = deployment.in_force(Some(&light));
        assert!(matches!(in_force.policy, Cow::Borrowed(_)));
        assert_eq!(in_force.recorded_version(), Some(3));
        assert!(in_force.observe_only);
    }

    #[test]
    fn a_company_policy_changes_only_the_settings_it_names() {
        let deployment = Policy::default();
        let stated = company(
            2,
            CompanyRiskPolicy {
                medium_threshold: Some(1.25),
                challenge_levels: Some(vec![ChallengeLevel::High]),
                device_known_days: Some(30),
                ..CompanyRiskPolicy::default()
            },
        );
        let in_force = deployment.in_force(Some(&stated));
        let risk = &in_force.policy.risk;
        assert_eq!(risk.medium_threshold, 1.25);
        assert_eq!(risk.high_threshold, deployment.risk.high_threshold);
        assert!(!risk.challenge_medium && risk.challenge_high);
        assert_eq!(risk.history_window, Duration::from_secs(30 * 86_400));
        assert_eq!(in_force.policy.code_ttl, deployment.code_ttl);
        // Longer than the deployment keeps logins: the deployment's window.
        let long = company(
            3,
            CompanyRiskPolicy {
                device_known_days: Some(3650),
                ..CompanyRiskPolicy::default()
            },
        );
        assert_eq!(
            deployment.in_force(Some(&long)).policy.risk.history_window,
            deployment.risk.history_window
        );
        // An empty list of levels (which the API refuses) turns no code off.
        let empty = company(
            4,
            CompanyRiskPolicy {
                challenge_levels: Some(vec![]),
                ..CompanyRiskPolicy::default()
            },
        );
        let risk = &deployment.in_force(Some(&empty)).policy.risk;
        assert!(risk.challenge_medium && risk.challenge_high);
    }

    #[test]
    fn a_trusted_network_excuses_what_is_new_and_nothing_else() {
        let login = attempt(AuthMethod::Password, false);
        let user_id = login.user_id.unwrap();
        let deployment = Policy::default();
        let trusting = company(
            1,
            CompanyRiskPolicy {
                trusted_networks: Some(vec![office()]),
                ..CompanyRiskPolicy::default()
            },
        );
        let in_force = deployment.in_force(Some(&trusting));
        let new_device = risk(
            RiskLevel::Medium,
            vec![
                RiskReason::NewDevice,
                RiskReason::NewNetwork,
                RiskReason::NewBrowser,
            ],
        );
        assert_eq!(
            decide_in_force(&login, ip_of(&login), &new_device, &in_force),
            Verdict::Approve { user_id }
        );
        let first = risk(RiskLevel::Medium, vec![RiskReason::FirstLogin]);
        assert_eq!(
            decide_in_force(&login, ip_of(&login), &first, &in_force),
            Verdict::Approve { user_id }
        );
        // The same login from elsewhere still asks.
        let elsewhere: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            decide_in_force(&login, elsewhere, &new_device, &in_force),
            Verdict::RequireMfa { user_id }
        );
        // A burst of failures, impossible travel or a deny-listed network still count there.
        for hard in [
            RiskReason::FailedAttemptsBurst,
            RiskReason::IpFailedAttemptsBurst,
            RiskReason::ManyAccountsFromIp,
            RiskReason::ImpossibleTravel,
            RiskReason::DenylistedNetwork,
        ] {
            let risky = risk(RiskLevel::High, vec![RiskReason::NewDevice, hard]);
            assert_eq!(
                decide_in_force(&login, ip_of(&login), &risky, &in_force),
                Verdict::RequireMfa { user_id },
                "{hard:?}"
            );
        }
        let rejecting = Policy {
            risk: RiskPolicy {
                denylist_action: DenylistAction::Reject,
                ..RiskPolicy::default()
            },
            ..Policy::default()
        };
        let listed = risk(RiskLevel::High, vec![RiskReason::DenylistedNetwork]);
        assert_eq!(
            decide_in_force(
                &login,
                ip_of(&login),
                &listed,
                &rejecting.in_force(Some(&trusting))
            ),
            Verdict::Reject(RejectionReason::DenylistedNetwork)
        );
        // A wrong password is a wrong password anywhere.
        let mut wrong = login.clone();
        wrong.primary_factor = PrimaryFactor::Failed;
        assert_eq!(
            decide_in_force(
                &wrong,
                ip_of(&wrong),
                &risk(RiskLevel::Low, vec![]),
                &in_force
            ),
            Verdict::Reject(RejectionReason::InvalidCredentials)
        );
    }

    #[test]
    fn observe_only_approves_what_would_ask_for_a_code_and_says_so() {
        let login = attempt(AuthMethod::Password, false);
        let user_id = login.user_id.unwrap();
        let deployment = Policy::default();
        let observing = company(
            5,
            CompanyRiskPolicy {
                observe_only: Some(true),
                trusted_networks: Some(vec![Cidr::parse("10.0.0.0/8").unwrap()]),
                ..CompanyRiskPolicy::default()
            },
        );
        let in_force = deployment.in_force(Some(&observing));
        let new_device = risk(RiskLevel::Medium, vec![RiskReason::NewDevice]);
        assert_eq!(
            decide_in_force(&login, ip_of(&login), &new_device, &in_force),
            Verdict::Observed { user_id }
        );
        assert_eq!(
            decide_in_force(
                &login,
                ip_of(&login),
                &risk(RiskLevel::Low, vec![]),
                &in_force
            ),
            Verdict::Approve { user_id }
        );
        let mut wrong = login.clone();
        wrong.primary_factor = PrimaryFactor::Failed;
        assert_eq!(
            decide_in_force(&wrong, ip_of(&wrong), &new_device, &in_force),
            Verdict::Reject(RejectionReason::InvalidCredentials)
        );
        // On a trusted network the login is approved outright: nothing would have been asked.
        let at_office: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            decide_in_force(&login, at_office, &new_device, &in_force),
            Verdict::Approve { user_id }
        );
    }

    #[test]
    fn a_company_threshold_moves_the_verdict_through_the_level_it_reads() {
        // Levels come from the model (`assess` with the policy in force); here the policy's
        // levels that ask: a company that asks only at high approves a medium login.
        let login = attempt(AuthMethod::Password, false);
        let user_id = login.user_id.unwrap();
        let high_only = company(
            1,
            CompanyRiskPolicy {
                challenge_levels: Some(vec![ChallengeLevel::High]),
                ..CompanyRiskPolicy::default()
            },
        );
        let deployment = Policy::default();
        let medium = risk(RiskLevel::Medium, vec![RiskReason::NewBrowser]);
        assert_eq!(
            decide_in_force(&login, ip_of(&login), &medium, &deployment.in_force(None)),
            Verdict::RequireMfa { user_id }
        );
        assert_eq!(
            decide_in_force(
                &login,
                ip_of(&login),
                &medium,
                &deployment.in_force(Some(&high_only))
            ),
            Verdict::Approve { user_id }
        );
    }

    /// `issued_ago_secs`: the codes emailed, in seconds before `now` (any order); the newest
    /// is the pending challenge when `pending`.
    fn history(issued_ago_secs: &[i64], pending: bool) -> (CodeHistory, DateTime<Utc>) {
        let now = Utc::now();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        let mut issued: Vec<DateTime<Utc>> = issued_ago_secs.iter().map(|&s| ago(s)).collect();
        issued.sort();
        let history = CodeHistory {
            issued_last_hour: issued
                .iter()
                .copied()
                .filter(|t| now - *t < HOUR_SPAN)
                .collect(),
            last_issued_at: issued.last().copied(),
            pending: pending.then(|| PendingCode {
                challenge_id: ChallengeId::new_random(),
                expires_at: now + chrono::Duration::minutes(5),
                device: Some(laptop()),
            }),
            failed_codes_last_day: vec![],
        };
        (history, now)
    }

    const HOUR_SPAN: chrono::Duration = chrono::Duration::hours(1);

    /// The device the pending code of `history` was emailed for.
    fn laptop() -> DeviceId {
        DeviceId::parse("laptop-1").unwrap()
    }

    /// A login from the pending code's own device.
    fn decide_codes(h: &CodeHistory, now: DateTime<Utc>) -> CodeDecision {
        code_decision(h, Some(&laptop()), now, &CodeCaps::default())
    }

    #[test]
    fn a_first_code_is_issued() {
        let (h, now) = history(&[], false);
        assert_eq!(decide_codes(&h, now), CodeDecision::Issue);
    }

    #[test]
    fn within_the_gap_the_pending_challenge_is_reused() {
        let (h, now) = history(&[10], true);
        let PendingCode {
            challenge_id,
            expires_at,
            ..
        } = h.pending.clone().unwrap();
        assert_eq!(
            decide_codes(&h, now),
            CodeDecision::Reuse {
                challenge_id,
                expires_at,
                reason: ThrottleReason::RecentlySent
            }
        );
        // After the gap, a new code.
        let (h, now) = history(&[31], true);
        assert_eq!(decide_codes(&h, now), CodeDecision::Issue);
    }

    #[test]
    fn a_pending_code_past_its_expiry_is_not_reused() {
        let (mut h, now) = history(&[10], true);
        if let Some(pending) = h.pending.as_mut() {
            pending.expires_at = now;
        }
        assert_eq!(decide_codes(&h, now), CodeDecision::Issue);
    }

    /// Passing a code approves every login waiting on it: a login from another device (or
    /// with no device id) never waits on this device's code. Within the gap it is told how
    /// long until it can have its own; after the gap it gets one.
    #[test]
    fn another_devices_pending_code_is_never_shared() {
        let phone = DeviceId::parse("phone-1").unwrap();
        let (h, now) = history(&[10], true);
        let gap_ends = now - chrono::Duration::seconds(10) + chrono::Duration::seconds(30);
        for device in [Some(&phone), None] {
            assert_eq!(
                code_decision(&h, device, now, &CodeCaps::default()),
                CodeDecision::Refuse {
                    reason: RejectionReason::CodePendingElsewhere,
                    retry_at: gap_ends,
                },
                "{device:?}"
            );
        }
        let (h, now) = history(&[31], true);
        assert_eq!(
            code_decision(&h, Some(&phone), now, &CodeCaps::default()),
            CodeDecision::Issue
        );
        // Past the hourly cap, it waits for the cap, not for the other device's code.
        let (h, now) = history(&[3000, 2400, 1800, 1200, 600], true);
        assert_eq!(
            code_decision(&h, Some(&phone), now, &CodeCaps::default()),
            CodeDecision::Refuse {
                reason: RejectionReason::TooManyCodes,
                retry_at: now - chrono::Duration::seconds(3000) + HOUR_SPAN,
            }
        );
        // A pending code emailed for a login without a device id is no device's either.
        let (mut h, now) = history(&[10], true);
        if let Some(pending) = h.pending.as_mut() {
            pending.device = None;
        }
        assert!(matches!(
            code_decision(&h, None, now, &CodeCaps::default()),
            CodeDecision::Refuse { .. }
        ));
    }

    /// Issue 11.2: "log in again to get a new code" after a lock, a success elsewhere or a
    /// revoke, moments after the last email, gets a new code: nothing pending can be used.
    #[test]
    fn with_no_usable_code_a_new_one_is_issued_within_the_gap() {
        let (h, now) = history(&[5], false);
        assert_eq!(decide_codes(&h, now), CodeDecision::Issue);
        let (h, now) = history(&[0, 1, 2, 3], false);
        assert_eq!(decide_codes(&h, now), CodeDecision::Issue);
    }

    #[test]
    fn the_hourly_cap_reuses_the_pending_code() {
        let (h, now) = history(&[3000, 2400, 1800, 1200, 600], true);
        assert!(matches!(
            decide_codes(&h, now),
            CodeDecision::Reuse {
                reason: ThrottleReason::HourlyCap,
                ..
            }
        ));
    }

    /// Locking challenges on purpose buys no more than the hourly cap of emails, and the
    /// refusal says when the next code can be had: when the oldest email leaves the hour.
    #[test]
    fn past_the_hourly_cap_with_nothing_to_reuse_the_refusal_says_when() {
        let (h, now) = history(&[3000, 2400, 20, 10, 5], false);
        let oldest = now - chrono::Duration::seconds(3000);
        assert_eq!(
            decide_codes(&h, now),
            CodeDecision::Refuse {
                reason: RejectionReason::TooManyCodes,
                retry_at: oldest + HOUR_SPAN,
            }
        );
        // Six in the hour under a cap of five (the cap was lowered): two must leave.
        let (h, now) = history(&[3000, 2400, 1800, 20, 10, 5], false);
        assert_eq!(
            decide_codes(&h, now),
            CodeDecision::Refuse {
                reason: RejectionReason::TooManyCodes,
                retry_at: now - chrono::Duration::seconds(2400) + HOUR_SPAN,
            }
        );
        // Once the oldest has left, a new code.
        let (h, now) = history(&[3601, 2400, 20, 10, 5], false);
        assert_eq!(decide_codes(&h, now), CodeDecision::Issue);
        // A cap of none never has room: a whole window on.
        let none = CodeCaps {
            emails_per_hour: 0,
            ..CodeCaps::default()
        };
        let (h, now) = history(&[], false);
        assert_eq!(
            code_decision(&h, Some(&laptop()), now, &none),
            CodeDecision::Refuse {
                reason: RejectionReason::TooManyCodes,
                retry_at: now + HOUR_SPAN,
            }
        );
    }

    #[test]
    fn the_daily_ceiling_of_wrong_codes_refuses_new_challenges_until_the_oldest_leaves() {
        let (mut h, now) = history(&[10], true);
        let first = now - chrono::Duration::hours(20);
        h.failed_codes_last_day = std::iter::once(first)
            .chain((0..99).map(|i| now - chrono::Duration::minutes(i)))
            .collect();
        h.failed_codes_last_day.sort();
        assert_eq!(
            decide_codes(&h, now),
            CodeDecision::Refuse {
                reason: RejectionReason::TooManyFailedCodes,
                retry_at: first + chrono::Duration::hours(24),
            }
        );
        // Wrong codes older than the day no longer count.
        h.failed_codes_last_day[0] = now - chrono::Duration::hours(25);
        assert!(matches!(decide_codes(&h, now), CodeDecision::Reuse { .. }));
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up_and_never_zero() {
        let now = Utc::now();
        let ms = chrono::Duration::milliseconds;
        assert_eq!(seconds_until(now + ms(1), now), 1);
        assert_eq!(seconds_until(now + ms(1000), now), 1);
        assert_eq!(seconds_until(now + ms(1001), now), 2);
        assert_eq!(seconds_until(now + ms(1_740_000), now), 1740);
        assert_eq!(seconds_until(now, now), 1);
        assert_eq!(seconds_until(now - ms(5000), now), 1);
    }
}
