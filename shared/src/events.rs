//! The events every service publishes and reads, and the one envelope they travel in.
//!
//! Rules the types enforce or document:
//! - no event ever carries a one-time code, a password or a hash of either (the event log is
//!   what auditors replay and keep for years);
//! - readers tolerate fields they do not know (no `deny_unknown_fields` here), so a later
//!   `schema_version` can add some; HTTP bodies are the ones parsed strictly;
//! - `attempt_id` ties every event of one login together, `causation_id` names the event that
//!   caused this one.

use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, DeviceId, FirstFactors, Locale, Platform,
    PrimaryFactor, UserAgent, UserId,
};
use crate::personal::{Personal, SealContext};

/// The schema version this build writes. Bump it when a payload gains a field.
/// 4: `LoginRejected.retry_after_secs`.
/// 5: `LoginFeedback`, the `reported_network` and `reported_device` risk reasons.
/// 6: `RiskPolicyChanged` (a company's risk policy), `RiskAssessment.policy_version` and
///    `RiskAssessment.observed` (observe-only approvals).
/// 7: personal fields sealed (`sealed` instead of `ip`, `user_agent`, `device_id` in
///    `LoginAttempted`, `MfaRequired` and `LoginFeedback`: `shared::personal`).
/// 8: `CompanyRiskPolicy.password_change_on_takeover_report` and the rejection reason
///    `password_change_required`.
pub const SCHEMA_VERSION: u32 = 8;

/// One event on the wire: envelope fields plus `event_type` and `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUID v7: unique, and time-ordered.
    pub event_id: Uuid,
    pub schema_version: u32,
    /// RFC 3339, UTC, stamped by the producing service.
    pub occurred_at: DateTime<Utc>,
    pub attempt_id: AttemptId,
    /// The `event_id` of the event that caused this one; null for a `LoginAttempted`.
    pub causation_id: Option<Uuid>,
    /// The service that produced the event, e.g. `risk-worker`.
    pub producer: String,
    #[serde(flatten)]
    pub event: Event,
}

impl Envelope {
    /// A new event of `attempt_id`, caused by `causation_id`, stamped `now`.
    pub fn new(
        producer: &str,
        attempt_id: AttemptId,
        causation_id: Option<Uuid>,
        now: DateTime<Utc>,
        event: Event,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            schema_version: SCHEMA_VERSION,
            // Microseconds: what PostgreSQL keeps, so a stored and a replayed time agree.
            occurred_at: now.trunc_subsecs(6),
            attempt_id,
            causation_id,
            producer: producer.to_owned(),
            event,
        }
    }

    /// An event caused by `cause`, in the same login attempt.
    pub fn caused_by(cause: &Envelope, producer: &str, now: DateTime<Utc>, event: Event) -> Self {
        Self::new(producer, cause.attempt_id, Some(cause.event_id), now, event)
    }

    pub fn event_type(&self) -> EventType {
        self.event.event_type()
    }

    #[expect(
        clippy::expect_used,
        reason = "the envelope is plain data with string keys: serde_json cannot fail on it"
    )]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serialises")
    }

    /// Reads an event. An unknown `event_type` is told apart from a malformed message, so a
    /// reader can skip types a newer producer added instead of treating them as poison.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        match serde_json::from_slice::<Envelope>(bytes) {
            Ok(envelope) => Ok(envelope),
            Err(error) => {
                #[derive(Deserialize)]
                struct TypeOnly {
                    event_type: String,
                }
                match serde_json::from_slice::<TypeOnly>(bytes) {
                    Ok(TypeOnly { event_type }) if EventType::from_name(&event_type).is_none() => {
                        Err(DecodeError::UnknownType(event_type))
                    }
                    _ => Err(DecodeError::Malformed(error.to_string())),
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("malformed event: {0}")]
    Malformed(String),
}

/// The payload, tagged by `event_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum Event {
    LoginAttempted(LoginAttempted),
    LoginApproved(LoginApproved),
    MfaRequired(MfaRequired),
    LoginRejected(LoginRejected),
    CodeThrottled(CodeThrottled),
    CodeSent(CodeSent),
    CodeDeliveryFailed(CodeDeliveryFailed),
    MfaSucceeded(MfaSucceeded),
    MfaFailed(MfaFailed),
    AccountChanged(AccountChanged),
    LoginFeedback(LoginFeedback),
    RiskPolicyChanged(RiskPolicyChanged),
}

macro_rules! event_types {
    ($($name:ident),* $(,)?) => {
        /// The name of each event type, as written in `event_type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($name),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$name),*];

            pub fn name(self) -> &'static str {
                match self { $(EventType::$name => stringify!($name)),* }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($name) => Some(EventType::$name),)* _ => None }
            }
        }

        impl Event {
            pub fn event_type(&self) -> EventType {
                match self { $(Event::$name(_) => EventType::$name),* }
            }
        }
    };
}

event_types!(
    LoginAttempted,
    LoginApproved,
    MfaRequired,
    LoginRejected,
    CodeThrottled,
    CodeSent,
    CodeDeliveryFailed,
    MfaSucceeded,
    MfaFailed,
    AccountChanged,
    LoginFeedback,
    RiskPolicyChanged,
);

impl EventType {
    /// What the personal fields of an event of this type in login `attempt_id` are sealed
    /// against (`shared::personal`).
    pub fn seal_context(self, attempt_id: AttemptId) -> SealContext<'static> {
        SealContext {
            attempt_id,
            event_type: self.name(),
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A login, after login-intake checked the first factor. Never carries the password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoginAttempted {
    /// Absent when no account has this email.
    pub user_id: Option<UserId>,
    /// The account's company; absent for an unknown account.
    pub company_id: Option<CompanyId>,
    pub auth_method: AuthMethod,
    pub primary_factor: PrimaryFactor,
    /// Looked up by login-intake from the account, never taken from the client.
    pub privileged: bool,
    pub platform: Platform,
    /// Where the login came from (personal data): `sealed` under the subject's data key, or
    /// in the clear (`ip`, `user_agent`, `device_id`) in events before schema version 7.
    #[serde(flatten)]
    pub client: Personal<LoginClient>,
    /// The language the code email is written in; English in events before it existed.
    #[serde(default)]
    pub locale: Locale,
}

/// The client a login came from, as the client backend saw it: personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoginClient {
    /// The end user's address.
    #[schemars(with = "String")]
    pub ip: IpAddr,
    pub user_agent: UserAgent,
    pub device_id: Option<DeviceId>,
}

/// What a decided login counts for in the risk model's state shared by all users (the
/// global counts of each feature's values, and failures by address), as keyed hashes under
/// the deployment's pseudonym key (`MFA_PSEUDONYM_KEY`), never as values. It outlives the
/// login's personal fields: `risk-worker replay` counts a login whose data was erased from
/// it, so the other users' logins are decided exactly as the live worker decided them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CountedAs {
    /// Each feature level's value (`ip`, `prefix`, `asn`, `country`, `client`...), hashed.
    pub values: std::collections::BTreeMap<String, String>,
    /// The address a failed first factor counts against, hashed; absent when it did not fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_ip: Option<String>,
}

/// Why the risk worker asked for a code (or, on an approval, what it noticed). Stable
/// machine-readable codes: new ones may be added, none is ever renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskReason {
    /// The user has no approved login yet.
    FirstLogin,
    /// A device id the user has not had an approved login from.
    NewDevice,
    /// No device id, from a user whose approved logins always had one.
    MissingDeviceId,
    /// An IP network (/24 for IPv4, /48 for IPv6) the user has not had an approved login from.
    NewNetwork,
    /// An autonomous system (ISP, carrier, hosting provider) new to the user.
    NewAsn,
    /// A country new to the user.
    NewCountry,
    /// A browser family, OS and device type the user has not had an approved login from.
    NewBrowser,
    /// Too far from the last approved login's place for the time between them.
    ImpossibleTravel,
    /// Too many failed password attempts on the account recently.
    FailedAttemptsBurst,
    /// Too many failed password attempts from this address recently.
    IpFailedAttemptsBurst,
    /// Failed passwords on many accounts from this address recently (credential stuffing,
    /// password spraying).
    ManyAccountsFromIp,
    /// The address is in a deny-listed network.
    DenylistedNetwork,
    /// The login's network (/24, /48) is one the user reported a login from as not theirs
    /// (`LoginFeedback` `wasnt_me`).
    ReportedNetwork,
    /// The login's device id is one the user reported a login from as not theirs.
    ReportedDevice,
}

impl RiskReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskReason::FirstLogin => "first_login",
            RiskReason::NewDevice => "new_device",
            RiskReason::MissingDeviceId => "missing_device_id",
            RiskReason::NewNetwork => "new_network",
            RiskReason::NewAsn => "new_asn",
            RiskReason::NewCountry => "new_country",
            RiskReason::NewBrowser => "new_browser",
            RiskReason::ImpossibleTravel => "impossible_travel",
            RiskReason::FailedAttemptsBurst => "failed_attempts_burst",
            RiskReason::IpFailedAttemptsBurst => "ip_failed_attempts_burst",
            RiskReason::ManyAccountsFromIp => "many_accounts_from_ip",
            RiskReason::DenylistedNetwork => "denylisted_network",
            RiskReason::ReportedNetwork => "reported_network",
            RiskReason::ReportedDevice => "reported_device",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    /// As serialized: a metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

/// Why the risk worker decided as it did, for auditors and support staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RiskAssessment {
    /// log10 of Freeman et al.'s likelihood ratio, plus the hard signals' penalties: 0 is
    /// "as likely this user as anybody", each unit ten times less likely.
    pub score: f64,
    pub level: RiskLevel,
    pub reasons: Vec<RiskReason>,
    /// The model (and its settings' generation) that scored the login.
    pub model_version: String,
    /// The version of the company's risk policy the decision was made under
    /// (`RiskPolicyChanged.version`); absent (or 0) when the company has none: the
    /// deployment's defaults. Absent in events before schema version 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    /// Set on an approval in observe-only mode that the policy would otherwise have decided
    /// differently: what it would have been (`level` and `reasons` above say why). No code
    /// was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
}

/// What an observe-only policy would have decided, had it been enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Observed {
    pub would_have: WouldHave,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WouldHave {
    /// A code would have been asked for (`MfaRequired`, or the code caps' answer to it).
    MfaRequired,
}

/// Access granted: by the risk worker (low risk) or by the verifier after a correct code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoginApproved {
    pub user_id: UserId,
    /// True for the final approval the verifier emits after `MfaSucceeded`.
    pub approved_after_mfa: bool,
    /// The challenge that was passed, when `approved_after_mfa`.
    pub challenge_id: Option<ChallengeId>,
    /// The risk decision's assessment; absent on the verifier's approval after MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskAssessment>,
    /// What the login counts for in the state the model shares across users, by keyed hash:
    /// set by the risk worker on its decisions (schema version 7 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<CountedAs>,
}

/// The login needs a code: one is about to be emailed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MfaRequired {
    pub user_id: UserId,
    /// The account's company: only its API keys may verify the challenge.
    pub company_id: CompanyId,
    pub challenge_id: ChallengeId,
    pub expires_at: DateTime<Utc>,
    pub reasons: Vec<RiskReason>,
    /// What the email tells the user about the login, so they can spot one that isn't theirs.
    pub platform: Platform,
    /// The login's client (personal data), sealed as in `LoginAttempted`: the email names
    /// its address and user agent.
    #[serde(flatten)]
    pub client: Personal<LoginClient>,
    /// The language the email is written in, the login's own.
    #[serde(default)]
    pub locale: Locale,
    /// The risk decision's assessment; absent on the verifier's approval after MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskAssessment>,
    /// What the login counts for in the state the model shares across users, by keyed hash:
    /// set by the risk worker on its decisions (schema version 7 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<CountedAs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    /// Unknown account or wrong password: deliberately the same reason for both.
    InvalidCredentials,
    /// The login needs a code, but the account had its hourly share of code emails and has
    /// no usable code to reuse (none pending, or the last one was used, locked, revoked or
    /// never delivered): log in again after `retry_after_secs`.
    TooManyCodes,
    /// The login needs a code, but the account reached its daily ceiling of wrong codes: no
    /// new code for `retry_after_secs` (known devices still log in).
    TooManyFailedCodes,
    /// The address is in a deny-listed network and the policy refuses such logins.
    DenylistedNetwork,
    /// The company does not accept the login's first factor (`auth_method`), e.g. an SSO
    /// claim for a company that logs in with passwords only.
    AuthMethodNotAllowed,
    /// The login needs a code, but a code was emailed moments ago for a login from another
    /// device (or one without a device id), and a code is never shared between devices:
    /// log in again after `retry_after_secs` for a code of this login's own.
    CodePendingElsewhere,
    /// A password login with the right password, of a user who reported a login as not
    /// theirs (`LoginFeedback` `wasnt_me`) under a company policy that then requires a new
    /// password (`CompanyRiskPolicy.password_change_on_takeover_report`): refused, from a
    /// known device and network too, until the password is changed (`AccountChanged`
    /// `password_changed`). A wrong password is still `invalid_credentials`; SSO and Google
    /// logins are not refused for it.
    PasswordChangeRequired,
}

impl RejectionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::InvalidCredentials => "invalid_credentials",
            RejectionReason::TooManyCodes => "too_many_codes",
            RejectionReason::TooManyFailedCodes => "too_many_failed_codes",
            RejectionReason::DenylistedNetwork => "denylisted_network",
            RejectionReason::AuthMethodNotAllowed => "auth_method_not_allowed",
            RejectionReason::CodePendingElsewhere => "code_pending_elsewhere",
            RejectionReason::PasswordChangeRequired => "password_change_required",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoginRejected {
    pub user_id: Option<UserId>,
    pub reason: RejectionReason,
    /// With `too_many_codes`, `too_many_failed_codes` and `code_pending_elsewhere`: seconds
    /// from `occurred_at` until a login can get a code again (when the oldest code email, or
    /// wrong code, counted against the cap leaves its window; when the other device's gap
    /// ends). Absent for the other reasons, and in events before schema version 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// The risk decision's assessment; absent on the verifier's approval after MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskAssessment>,
    /// What the login counts for in the state the model shares across users, by keyed hash:
    /// set by the risk worker on its decisions (schema version 7 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<CountedAs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleReason {
    /// A code was emailed less than the minimum gap ago.
    RecentlySent,
    /// The account had its hourly share of code emails.
    HourlyCap,
}

impl ThrottleReason {
    /// As serialized: a metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::RecentlySent => "recently_sent",
            ThrottleReason::HourlyCap => "hourly_cap",
        }
    }
}

/// The login needs a code, but one was emailed recently: no new email, and the pending
/// challenge stands, so "log in again" never destroys the code the user is about to type.
/// A risk decision, like `MfaRequired`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CodeThrottled {
    pub user_id: UserId,
    /// The pending challenge, still valid: verify the code already emailed against it.
    pub challenge_id: ChallengeId,
    pub expires_at: DateTime<Utc>,
    pub reason: ThrottleReason,
    /// The risk decision's assessment; absent on the verifier's approval after MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskAssessment>,
    /// What the login counts for in the state the model shares across users, by keyed hash:
    /// set by the risk worker on its decisions (schema version 7 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<CountedAs>,
}

/// The SMTP server accepted the code email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CodeSent {
    pub user_id: UserId,
    pub challenge_id: ChallengeId,
    pub expires_at: DateTime<Utc>,
}

/// The code email could not be sent; the user has to log in again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CodeDeliveryFailed {
    pub user_id: UserId,
    pub challenge_id: ChallengeId,
    /// What went wrong, for operators (never contains the code).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MfaSucceeded {
    pub user_id: UserId,
    pub challenge_id: ChallengeId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaFailureReason {
    InvalidCode,
    Expired,
    TooManyAttempts,
    /// A newer code was sent to the user.
    Superseded,
    /// The account was changed while the code was pending (password changed, disabled).
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MfaFailed {
    pub user_id: UserId,
    pub challenge_id: ChallengeId,
    pub reason: MfaFailureReason,
    /// Wrong codes still allowed on this challenge.
    pub attempts_remaining: u32,
}

/// On the wire, a change without data is its name (`"disabled"`), one with data an object
/// named by it (`{"first_factors_changed": {"accepted": ["password"]}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountChange {
    /// An admin set a new password: pending challenges no longer work.
    PasswordChanged,
    /// The account can't log in; pending challenges no longer work.
    Disabled,
    Enabled,
    /// The learned devices, networks and browsers are forgotten (after a compromise): the
    /// next login asks for a code.
    HistoryReset,
    /// The account and its rows are gone; events keep only its id.
    Deleted,
    /// The first factors that log the account in changed (its company's, or its own limit):
    /// `accepted` is the account's set now, empty when none does. Applies from the next
    /// login; a pending challenge stands.
    FirstFactorsChanged {
        accepted: FirstFactors,
    },
}

/// An admin changed an account. Its `attempt_id` is the id of the admin operation (there is
/// no login), so auditors can still correlate what followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountChanged {
    pub user_id: UserId,
    pub change: AccountChange,
}

/// What the user (or their company) says of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackVerdict {
    /// The login was the user's: the model may learn its device and network.
    WasMe,
    /// Someone else: a takeover attempt. Its network and device become high risk for the user.
    WasntMe,
}

impl FeedbackVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackVerdict::WasMe => "was_me",
            FeedbackVerdict::WasntMe => "wasnt_me",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "was_me" => Some(FeedbackVerdict::WasMe),
            "wasnt_me" => Some(FeedbackVerdict::WasntMe),
            _ => None,
        }
    }
}

/// Who gave the feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackSource {
    /// A link of the "someone has your password" email (published by the verifier).
    EmailLink,
    /// The client backend, over the API (published by login-intake).
    Client,
    /// An admin, over the admin API (published by login-intake).
    Admin,
}

impl FeedbackSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackSource::EmailLink => "email_link",
            FeedbackSource::Client => "client",
            FeedbackSource::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "email_link" => Some(FeedbackSource::EmailLink),
            "client" => Some(FeedbackSource::Client),
            "admin" => Some(FeedbackSource::Admin),
            _ => None,
        }
    }
}

/// The user's own word on a login (its `attempt_id` is the login's), as Cognito's
/// `AdminUpdateAuthEventFeedback`: at most one per login. Published on the accounts topic,
/// keyed by the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoginFeedback {
    pub user_id: UserId,
    pub company_id: CompanyId,
    pub verdict: FeedbackVerdict,
    pub source: FeedbackSource,
    /// The login's address and device id, as login-intake recorded them (personal data,
    /// sealed as in `LoginAttempted`): what `wasnt_me` makes high risk for the user.
    #[serde(flatten)]
    pub reported: Personal<ReportedClient>,
}

/// A reported login's address and device id (each absent when not recorded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportedClient {
    #[schemars(with = "Option<String>")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
}

impl ReportedClient {
    /// From the columns a login's row keeps them in; a value that does not parse (a row
    /// edited by hand) is left out.
    pub fn from_recorded(ip: Option<&str>, device_id: Option<&str>) -> Self {
        Self {
            ip: ip.and_then(|ip| ip.parse().ok()),
            device_id: device_id.and_then(|d| DeviceId::parse(d).ok()),
        }
    }
}

/// An admin set a company's risk policy (`PUT /v1/admin/companies/{company_id}/risk-policy`).
/// The whole policy, not a patch: the risk worker (live and in replay) decides the company's
/// next logins under it. Published on the accounts topic, keyed by the company; its
/// `attempt_id` is the admin operation's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RiskPolicyChanged {
    pub company_id: CompanyId,
    /// From 1, one more at each change: a reader keeps the highest it has seen, so a
    /// redelivered or reordered older one changes nothing.
    pub version: u64,
    pub policy: CompanyRiskPolicy,
}

/// A company's risk policy. Every field is optional: an absent one is the deployment's
/// default (the risk worker's `MFA_RISK_*` settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompanyRiskPolicy {
    /// Score from which a login is medium risk (see `RiskAssessment.score`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium_threshold: Option<f64>,
    /// Score from which a login is high risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_threshold: Option<f64>,
    /// The risk levels that ask for a code (at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_levels: Option<Vec<ChallengeLevel>>,
    /// Networks (e.g. the office) where a new device, network, browser or a first login
    /// alone never asks for a code; a deny-listed network, a failure burst or impossible
    /// travel still does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_networks: Option<Vec<Cidr>>,
    /// How many days an approved login (its device, network, browser) stays known; the
    /// deployment keeps at most `MFA_RISK_HISTORY_DAYS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_known_days: Option<u32>,
    /// Decide and record, but approve what would have asked for a code
    /// (`RiskAssessment.observed`); such a login's device is not learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe_only: Option<bool>,
    /// A "wasn't me" (`LoginFeedback` `wasnt_me`, from any source) means the password leaked:
    /// the user's password logins are then refused (`password_change_required`) until the
    /// password is changed. Absent or false: the report only makes that network and device
    /// high risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_change_on_takeover_report: Option<bool>,
}

impl CompanyRiskPolicy {
    /// Whether a "wasn't me" under this policy requires a new password.
    pub fn requires_password_change_on_takeover_report(&self) -> bool {
        self.password_change_on_takeover_report.unwrap_or(false)
    }
}

/// A risk level that can ask for a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeLevel {
    Medium,
    High,
}

impl ChallengeLevel {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`), its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an address/prefix-length network, e.g. 192.0.2.0/24")]
    Syntax(String),
    #[error("{text:?}: a prefix length of {prefix_len} is longer than the address ({max} bits)")]
    PrefixTooLong {
        text: String,
        prefix_len: u8,
        max: u8,
    },
    #[error("{text:?} has host bits set: the network is {network}")]
    HostBitsSet { text: String, network: String },
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let syntax = || CidrError::Syntax(text.to_owned());
        let (address, length) = text.split_once('/').ok_or_else(syntax)?;
        let address: IpAddr = address.parse().map_err(|_| syntax())?;
        // Digits only: `u8::from_str` would also take a leading `+`.
        if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix_len: u8 = length.parse().map_err(|_| syntax())?;
        let max = Self::bits(address);
        if prefix_len > max {
            return Err(CidrError::PrefixTooLong {
                text: text.to_owned(),
                prefix_len,
                max,
            });
        }
        let network = Self::masked(address, prefix_len);
        if network != address {
            return Err(CidrError::HostBitsSet {
                text: text.to_owned(),
                network: format!("{network}/{prefix_len}"),
            });
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address is its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && Self::masked(ip, self.prefix_len) == self.network
    }

    fn bits(address: IpAddr) -> u8 {
        if address.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn masked(address: IpAddr, prefix_len: u8) -> IpAddr {
        match address {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl TryFrom<String> for Cidr {
    type Error = CidrError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> Self {
        cidr.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_strictly_and_contain_their_addresses() {
        let office = Cidr::parse("198.51.100.0/24").unwrap();
        assert_eq!(office.to_string(), "198.51.100.0/24");
        assert!(office.contains("198.51.100.255".parse().unwrap()));
        assert!(office.contains("::ffff:198.51.100.7".parse().unwrap()));
        assert!(!office.contains("198.51.101.1".parse().unwrap()));
        assert!(!office.contains("2001:db8::1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8:1::/48").unwrap();
        assert!(v6.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:2::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("192.0.2.1/32")
            .unwrap()
            .contains("192.0.2.1".parse().unwrap()));
        assert!(matches!(
            Cidr::parse("198.51.100.1/24"),
            Err(CidrError::HostBitsSet { network, .. }) if network == "198.51.100.0/24"
        ));
        assert!(matches!(
            Cidr::parse("198.51.100.0/33"),
            Err(CidrError::PrefixTooLong { max: 32, .. })
        ));
        for bad in [
            "198.51.100.0",
            "198.51.100.0/",
            "198.51.100.0/+8",
            "office/24",
            "/24",
            "10.0.0.0/8/8",
        ] {
            assert!(
                matches!(Cidr::parse(bad), Err(CidrError::Syntax(_))),
                "{bad}"
            );
        }
        // On the wire, a string; a bad one does not read.
        let policy = CompanyRiskPolicy {
            trusted_networks: Some(vec![office, v6]),
            ..CompanyRiskPolicy::default()
        };
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"trusted_networks": ["198.51.100.0/24", "2001:db8:1::/48"]})
        );
        assert_eq!(
            serde_json::from_value::<CompanyRiskPolicy>(json).unwrap(),
            policy
        );
        assert!(serde_json::from_str::<CompanyRiskPolicy>(
            r#"{"trusted_networks":["10.0.0.1/8"]}"#
        )
        .is_err());
    }

    #[test]
    fn the_password_change_switch_reads_absent_as_off_and_the_new_reason_by_its_name() {
        // A schema version 7 policy has no switch: off, and written back as it was.
        let older = r#"{"observe_only":true}"#;
        let read: CompanyRiskPolicy = serde_json::from_str(older).unwrap();
        assert!(!read.requires_password_change_on_takeover_report());
        assert_eq!(serde_json::to_string(&read).unwrap(), older);
        let on = CompanyRiskPolicy {
            password_change_on_takeover_report: Some(true),
            ..CompanyRiskPolicy::default()
        };
        assert!(on.requires_password_change_on_takeover_report());
        let json = serde_json::to_value(&on).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"password_change_on_takeover_report": true})
        );
        assert_eq!(
            serde_json::from_value::<CompanyRiskPolicy>(json).unwrap(),
            on
        );
        let off = CompanyRiskPolicy {
            password_change_on_takeover_report: Some(false),
            ..CompanyRiskPolicy::default()
        };
        assert!(!off.requires_password_change_on_takeover_report());
        let reason = RejectionReason::PasswordChangeRequired;
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        assert_eq!(reason.as_str(), "password_change_required");
    }

    #[test]
    fn an_assessment_reads_without_policy_version_and_writes_none_when_absent() {
        let older = r#"{"score":1.0,"level":"medium","reasons":["new_device"],"model_version":"adaptive-1"}"#;
        let read: RiskAssessment = serde_json::from_str(older).unwrap();
        assert_eq!(read.policy_version, None);
        assert_eq!(read.observed, None);
        assert_eq!(serde_json::to_string(&read).unwrap(), older);
        let observed = RiskAssessment {
            policy_version: Some(3),
            observed: Some(Observed {
                would_have: WouldHave::MfaRequired,
            }),
            ..read
        };
        let json = serde_json::to_value(&observed).unwrap();
        assert_eq!(json["policy_version"], 3);
        assert_eq!(json["observed"]["would_have"], "mfa_required");
    }

    fn sample() -> Envelope {
        Envelope::new(
            "test",
            AttemptId::new(),
            None,
            Utc::now(),
            Event::LoginRejected(LoginRejected {
                counted: None,
                user_id: None,
                reason: RejectionReason::InvalidCredentials,
                retry_after_secs: None,
                risk: None,
            }),
        )
    }

    #[test]
    fn round_trips_through_json_with_type_and_payload() {
        let envelope = sample();
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(json["event_type"], "LoginRejected");
        assert_eq!(json["payload"]["reason"], "invalid_credentials");
        assert!(json["causation_id"].is_null());
        assert_eq!(Envelope::from_json(&envelope.to_json()).unwrap(), envelope);
    }

    #[test]
    fn a_rejection_carries_its_wait_and_reads_older_ones_without_it() {
        let mut envelope = sample();
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert!(json["payload"].get("retry_after_secs").is_none());
        // A version-3 producer's rejection has no wait: it still reads.
        let mut older = json.clone();
        older["schema_version"] = 3.into();
        older["payload"]["reason"] = "too_many_codes".into();
        let read = Envelope::from_json(older.to_string().as_bytes()).unwrap();
        assert!(matches!(
            read.event,
            Event::LoginRejected(LoginRejected {
                reason: RejectionReason::TooManyCodes,
                retry_after_secs: None,
                ..
            })
        ));
        envelope.event = Event::LoginRejected(LoginRejected {
            counted: None,
            user_id: None,
            reason: RejectionReason::TooManyCodes,
            retry_after_secs: Some(1740),
            risk: None,
        });
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(json["payload"]["retry_after_secs"], 1740);
        assert_eq!(Envelope::from_json(&envelope.to_json()).unwrap(), envelope);
    }

    #[test]
    fn level_and_throttle_labels_are_their_serialized_names() {
        for level in [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High] {
            assert_eq!(serde_json::to_value(level).unwrap(), level.as_str());
        }
        for reason in [ThrottleReason::RecentlySent, ThrottleReason::HourlyCap] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }

    #[test]
    fn personal_fields_read_sealed_and_in_the_clear_of_older_events() {
        use crate::personal::{DataKey, DataKeyId, OpenError, Subject};
        let attempt_id = AttemptId::new();
        let user = UserId::from_uuid(Uuid::now_v7());
        let client = LoginClient {
            ip: "203.0.113.9".parse().unwrap(),
            user_agent: UserAgent::parse("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0").unwrap(),
            device_id: Some(DeviceId::parse("dev-1").unwrap()),
        };
        let key = DataKey::generate();
        let key_id = DataKeyId::new(Subject::User(user), Utc::now());
        let context = EventType::LoginAttempted.seal_context(attempt_id);
        let attempt = LoginAttempted {
            user_id: Some(user),
            company_id: None,
            auth_method: AuthMethod::Password,
            primary_factor: PrimaryFactor::Succeeded,
            privileged: false,
            platform: Platform::Dashboard,
            client: Personal::seal(&client, key_id, &key, context),
            locale: Locale::default(),
        };
        let envelope = Envelope::new(
            "login-intake",
            attempt_id,
            None,
            Utc::now(),
            Event::LoginAttempted(attempt),
        );
        let wire = String::from_utf8(envelope.to_json()).unwrap();
        for personal in ["203.0.113.9", "Firefox", "dev-1"] {
            assert!(!wire.contains(personal), "{personal} in {wire}");
        }
        let Event::LoginAttempted(read) = Envelope::from_json(wire.as_bytes()).unwrap().event
        else {
            panic!("not a LoginAttempted")
        };
        assert_eq!(read.client.open(Some(&key), context).unwrap(), client);
        assert_eq!(
            read.client.open(None, context),
            Err(OpenError::Erased(key_id))
        );
        // Schema version 6 and before: the same fields in the clear.
        let mut older: serde_json::Value = serde_json::from_str(&wire).unwrap();
        let payload = older["payload"].as_object_mut().unwrap();
        payload.remove("sealed");
        payload.insert("ip".into(), "203.0.113.9".into());
        payload.insert("user_agent".into(), client.user_agent.as_str().into());
        payload.insert("device_id".into(), "dev-1".into());
        older["schema_version"] = 6.into();
        let Event::LoginAttempted(read) = Envelope::from_json(older.to_string().as_bytes())
            .unwrap()
            .event
        else {
            panic!("not a LoginAttempted")
        };
        assert_eq!(read.client, Personal::Clear(client));
    }

    #[test]
    fn tolerates_unknown_fields() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json["added_later"] = 1.into();
        json["payload"]["also_added_later"] = "x".into();
        assert!(Envelope::from_json(json.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn tells_unknown_types_from_malformed_messages() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json["event_type"] = "SomethingNew".into();
        assert_eq!(
            Envelope::from_json(json.to_string().as_bytes()),
            Err(DecodeError::UnknownType("SomethingNew".into()))
        );
        assert!(matches!(
            Envelope::from_json(b"{not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::from_json(br#"{"event_type":"LoginRejected"}"#),
            Err(DecodeError::Malformed(_))
        ));
    }
}
