//! `mfa-audit timeline --user ID | --attempt ID`: the story of each login, in order, from the
//! event log alone: when and where it came from, what the risk worker decided and why, what
//! became of the code (sent or not, wrong codes, expired, locked, passed) with the times, and
//! how the login ended.
//!
//! [`Stories`] is the fold both this command and `report` run over the log's events (in log
//! order, each event once: see [`crate::envelopes`]): one [`LoginStory`] per `LoginAttempted`,
//! and one [`CodeStory`] per challenge, which every login given that challenge shares (a
//! throttled login reuses the code emailed moments before). Pure: the clock is the events'
//! `occurred_at`, and a code counts as expired once the log's time has passed its expiry.
//!
//! Where a login came from is personal data, sealed in the log from schema version 7 on:
//! shown as sealed, unless the deployment's data keys are at hand ([`open_origins`], the
//! fold's one step of IO, after it): then in the clear, or erased once its key was destroyed
//! (a deleted user, a month past retention), or unreadable with the reason.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, AuthMethod, ChallengeId, Platform, PrimaryFactor, UserId};
use shared::events::{
    Envelope, Event, EventType, LoginClient, MfaFailureReason, RejectionReason, RiskAssessment,
    ThrottleReason,
};
use shared::personal::{DataKey, DataKeyId, OpenError, Personal, SealContext};
use shared::user_agent::UserAgentSummary;

/// Which logins a fold keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    User(UserId),
    Attempt(AttemptId),
    /// Every login (the report).
    All,
}

impl Filter {
    fn keeps(&self, envelope: &Envelope, user_id: Option<UserId>) -> bool {
        match self {
            Filter::User(user) => user_id == Some(*user),
            Filter::Attempt(attempt) => envelope.attempt_id == *attempt,
            Filter::All => true,
        }
    }
}

/// The risk worker's decision on a login.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    Approved,
    /// A new code was emailed.
    MfaRequired,
    /// A code was needed, but one was emailed moments ago: the login shares it.
    Throttled {
        reason: ThrottleReason,
    },
    Rejected {
        reason: RejectionReason,
    },
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::MfaRequired => "mfa_required",
            Decision::Throttled { .. } => "throttled",
            Decision::Rejected { .. } => "rejected",
        }
    }

    /// `rejected (invalid_credentials)`, `throttled (recently_sent)`, `approved`.
    pub fn describe(&self) -> String {
        match self {
            Decision::Throttled { reason } => format!("throttled ({})", reason.as_str()),
            Decision::Rejected { reason } => format!("rejected ({})", reason.as_str()),
            other => other.name().to_owned(),
        }
    }

    pub fn needs_code(&self) -> bool {
        matches!(self, Decision::MfaRequired | Decision::Throttled { .. })
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decided {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub decision: Decision,
    pub risk: Option<RiskAssessment>,
}

/// How a code ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeEnd {
    Succeeded,
    /// Too many wrong codes.
    Locked,
    /// Tried after its expiry, or its time ran out unused (as the log's clock tells).
    Expired,
    /// A newer code was emailed.
    Superseded,
    /// The account was changed while it was pending.
    Revoked,
    /// Its email was given up.
    DeliveryFailed,
}

impl CodeEnd {
    /// Why the login it ended was rejected, as login-intake's API says it (`code_locked`,
    /// `code_expired`, `superseded`, `revoked`, `code_delivery_failed`); None for a code
    /// passed.
    pub fn rejection_reason(self) -> Option<&'static str> {
        match self {
            CodeEnd::Succeeded => None,
            CodeEnd::Locked => Some("code_locked"),
            CodeEnd::Expired => Some("code_expired"),
            CodeEnd::Superseded => Some("superseded"),
            CodeEnd::Revoked => Some("revoked"),
            CodeEnd::DeliveryFailed => Some("code_delivery_failed"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CodeEnd::Succeeded => "succeeded",
            CodeEnd::Locked => "locked",
            CodeEnd::Expired => "expired",
            CodeEnd::Superseded => "superseded",
            CodeEnd::Revoked => "revoked",
            CodeEnd::DeliveryFailed => "delivery_failed",
        }
    }
}

/// One challenge: its email, the tries against it, its end.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CodeStory {
    pub challenge_id: ChallengeId,
    /// The login it was issued for.
    pub issued_for: AttemptId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// When the email was given up, and why.
    pub delivery_failed: Option<(DateTime<Utc>, String)>,
    /// The time of each wrong code (the locking one included).
    pub wrong_codes: Vec<DateTime<Utc>>,
    /// How it ended, and when; None while it can still be used.
    pub end: Option<(CodeEnd, DateTime<Utc>)>,
}

impl CodeStory {
    /// Its end as of `now`: a code nobody passed is expired once `now` passed its expiry.
    pub fn end_at(&self, now: DateTime<Utc>) -> Option<(CodeEnd, DateTime<Utc>)> {
        self.end
            .or_else(|| (now >= self.expires_at).then_some((CodeEnd::Expired, self.expires_at)))
    }

    fn finish(&mut self, end: CodeEnd, at: DateTime<Utc>) {
        // The first end stands: a try after the lock cannot unlock it.
        if self.end.is_none() {
            self.end = Some((end, at));
        }
    }
}

/// One login, as the log tells it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoginStory {
    pub attempt_id: AttemptId,
    pub at: DateTime<Utc>,
    pub user_id: Option<UserId>,
    pub platform: Platform,
    pub auth_method: AuthMethod,
    pub primary_factor: PrimaryFactor,
    /// Where it came from, as the log has it: sealed under the user's data key (schema
    /// version 7 on), in the clear in older events. Shown as [`Login::origin`], which says
    /// whether this run could open it.
    #[serde(skip)]
    pub client: Personal<LoginClient>,
    pub decision: Option<Decided>,
    /// The challenge the login was given (a new one, or the pending one it shares).
    pub challenge_id: Option<ChallengeId>,
}

/// Where a login came from (address, user agent, device), as this run reads it. In JSON, its
/// `state` is `clear`, `sealed`, `erased` or `unreadable`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Origin {
    /// In the clear: so in the log (events before schema version 7, synthetic traces), or
    /// opened with the data key `key`.
    Clear {
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<DataKeyId>,
        #[serde(flatten)]
        client: LoginClient,
    },
    /// Sealed, and this run was given no keys: a copy of the log shows no personal data.
    Sealed { key: DataKeyId },
    /// Its data key was destroyed (the user was deleted, or the month is past retention):
    /// erased, by design. The login's other facts still stand.
    Erased { key: DataKeyId },
    /// The deployment's keys were given, and this one could not be read: its row does not
    /// unwrap (altered, or under a master key not configured), the ciphertext does not open
    /// under it, or the key database did not answer. Never a guess: the reason is shown.
    Unreadable { key: DataKeyId, error: String },
}

impl Origin {
    /// As any copy of the log reads it, without keys.
    pub fn in_log(client: &Personal<LoginClient>) -> Self {
        match client {
            Personal::Clear(client) => Origin::Clear {
                key: None,
                client: client.clone(),
            },
            Personal::Sealed { sealed } => Origin::Sealed { key: sealed.key },
        }
    }

    /// `client` opened with what looking its data key up gave: the key, `None` when it was
    /// destroyed, or why it could not be had.
    pub fn opened(
        client: &Personal<LoginClient>,
        context: SealContext<'_>,
        key: Result<Option<&DataKey>, &str>,
    ) -> Self {
        let Some(id) = client.key_id() else {
            return Self::in_log(client);
        };
        let unreadable = |error: String| Origin::Unreadable { key: id, error };
        match key {
            Err(error) => unreadable(error.to_owned()),
            Ok(None) => Origin::Erased { key: id },
            Ok(Some(key)) => match client.open(Some(key), context) {
                Ok(client) => Origin::Clear {
                    key: Some(id),
                    client,
                },
                Err(OpenError::Erased(_)) => Origin::Erased { key: id },
                Err(error @ OpenError::Corrupt(_)) => unreadable(error.to_string()),
            },
        }
    }

    /// `Chrome on Windows 10`, or the state that hides it: `sealed`, `erased`, `unreadable`.
    pub fn client(&self) -> String {
        match self {
            Origin::Clear { client, .. } => {
                UserAgentSummary::parse(&client.user_agent).browser_and_os()
            }
            Origin::Sealed { .. } => "sealed".into(),
            Origin::Erased { .. } => "erased".into(),
            Origin::Unreadable { .. } => "unreadable".into(),
        }
    }

    /// `from 192.0.2.1 with Chrome on Windows 10 (device laptop)`, or why it is not shown.
    pub fn describe(&self) -> String {
        match self {
            Origin::Clear { client, .. } => format!(
                "from {} with {} ({})",
                client.ip,
                self.client(),
                client
                    .device_id
                    .as_ref()
                    .map_or("no device id".to_owned(), |d| format!(
                        "device {}",
                        d.as_str()
                    ))
            ),
            Origin::Sealed { key } => format!("from where it is sealed (data key {key})"),
            Origin::Erased { key } => {
                format!("from where it is erased (data key {key} destroyed)")
            }
            // Most reasons name the key already.
            Origin::Unreadable { key, error } if error.contains(&key.to_string()) => {
                format!("from where it cannot be read ({error})")
            }
            Origin::Unreadable { key, error } => {
                format!("from where it cannot be read (data key {key}: {error})")
            }
        }
    }
}

/// Opens the logins' sealed origins with the deployment's data keys: `key` gives the key
/// named, `None` when it was destroyed, or why it could not be had. Each key is asked for
/// once: a user's logins share a key a month, and a key database that does not answer is
/// then waited for once a key, not once a login.
pub fn open_origins(
    logins: &mut [Login],
    mut key: impl FnMut(&DataKeyId) -> Result<Option<DataKey>, String>,
) {
    let mut looked_up: HashMap<DataKeyId, Result<Option<DataKey>, String>> = HashMap::new();
    for login in logins {
        let Some(id) = login.story.client.key_id() else {
            continue;
        };
        let found = looked_up.entry(id).or_insert_with(|| key(&id));
        let context = EventType::LoginAttempted.seal_context(login.story.attempt_id);
        login.origin = Origin::opened(
            &login.story.client,
            context,
            found.as_ref().map(Option::as_ref).map_err(String::as_str),
        );
    }
}

/// How a login ended, or stands at the end of the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// No decision in the log.
    Undecided,
    Approved,
    ApprovedAfterMfa,
    AwaitingCode,
    /// The decision's reason, or the code's end.
    Rejected(String),
}

impl Outcome {
    pub fn describe(&self) -> String {
        match self {
            Outcome::Undecided => "undecided".into(),
            Outcome::Approved => "approved".into(),
            Outcome::ApprovedAfterMfa => "approved after MFA".into(),
            Outcome::AwaitingCode => "awaiting the code".into(),
            Outcome::Rejected(reason) => format!("rejected ({reason})"),
        }
    }
}

/// A login with its code, as the fold hands it out.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Login {
    #[serde(flatten)]
    pub story: LoginStory,
    /// Where it came from: as the log has it, until [`open_origins`] opens it.
    pub origin: Origin,
    pub code: Option<CodeStory>,
    /// How the code ended (an expiry the log's clock passed included), and when.
    pub code_end: Option<(CodeEnd, DateTime<Utc>)>,
    pub outcome: Outcome,
}

impl Login {
    fn of(story: LoginStory, code: Option<CodeStory>, now: DateTime<Utc>) -> Self {
        let code_end = code.as_ref().and_then(|code| code.end_at(now));
        let outcome = match &story.decision {
            None => Outcome::Undecided,
            Some(decided) => match &decided.decision {
                Decision::Approved => Outcome::Approved,
                Decision::Rejected { reason } => Outcome::Rejected(reason.as_str().to_owned()),
                Decision::MfaRequired | Decision::Throttled { .. } => {
                    match code_end {
                        Some((end, _)) => end
                            .rejection_reason()
                            .map_or(Outcome::ApprovedAfterMfa, |reason| {
                                Outcome::Rejected(reason.to_owned())
                            }),
                        // Still usable, or (a shared code issued before the log began) its
                        // own events are not in the log.
                        None => Outcome::AwaitingCode,
                    }
                }
            },
        };
        Self {
            origin: Origin::in_log(&story.client),
            story,
            code,
            code_end,
            outcome,
        }
    }
}

/// The fold over the log: the logins `filter` keeps, and their codes.
#[derive(Debug)]
pub struct Stories {
    filter: Filter,
    logins: HashMap<AttemptId, LoginStory>,
    /// Attempts in the order their `LoginAttempted` came.
    order: Vec<AttemptId>,
    codes: HashMap<ChallengeId, CodeStory>,
    /// The log's clock: the latest `occurred_at` read.
    now: Option<DateTime<Utc>>,
}

impl Stories {
    pub fn new(filter: Filter) -> Self {
        Self {
            filter,
            logins: HashMap::new(),
            order: Vec::new(),
            codes: HashMap::new(),
            now: None,
        }
    }

    /// The log's time: the latest event's.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    /// Reads the next event of the log.
    pub fn apply(&mut self, envelope: &Envelope) {
        let at = envelope.occurred_at;
        self.now = Some(self.now.map_or(at, |now| now.max(at)));
        let attempt = envelope.attempt_id;
        match &envelope.event {
            Event::LoginAttempted(login) => {
                if !self.filter.keeps(envelope, login.user_id) || self.logins.contains_key(&attempt)
                {
                    return;
                }
                self.order.push(attempt);
                self.logins.insert(
                    attempt,
                    LoginStory {
                        attempt_id: attempt,
                        at,
                        user_id: login.user_id,
                        platform: login.platform,
                        auth_method: login.auth_method,
                        primary_factor: login.primary_factor,
                        client: login.client.clone(),
                        decision: None,
                        challenge_id: None,
                    },
                );
            }
            // The risk worker's decisions (the verifier's approval after MFA is the code's end,
            // told by its `MfaSucceeded`).
            Event::LoginApproved(approved) if !approved.approved_after_mfa => {
                self.decide(attempt, at, Decision::Approved, approved.risk.clone(), None);
            }
            Event::LoginApproved(_) => {}
            Event::MfaRequired(required) => {
                if self.logins.contains_key(&attempt) {
                    self.codes
                        .entry(required.challenge_id)
                        .or_insert_with(|| CodeStory {
                            challenge_id: required.challenge_id,
                            issued_for: attempt,
                            issued_at: at,
                            expires_at: required.expires_at,
                            sent_at: None,
                            delivery_failed: None,
                            wrong_codes: Vec::new(),
                            end: None,
                        });
                }
                let risk = required.risk.clone();
                self.decide(
                    attempt,
                    at,
                    Decision::MfaRequired,
                    risk,
                    Some(required.challenge_id),
                );
            }
            Event::CodeThrottled(throttled) => {
                let decision = Decision::Throttled {
                    reason: throttled.reason,
                };
                let risk = throttled.risk.clone();
                self.decide(attempt, at, decision, risk, Some(throttled.challenge_id));
            }
            Event::LoginRejected(rejected) => {
                let decision = Decision::Rejected {
                    reason: rejected.reason,
                };
                self.decide(attempt, at, decision, rejected.risk.clone(), None);
            }
            Event::CodeSent(sent) => {
                if let Some(code) = self.codes.get_mut(&sent.challenge_id) {
                    code.sent_at.get_or_insert(at);
                }
            }
            Event::CodeDeliveryFailed(failed) => {
                if let Some(code) = self.codes.get_mut(&failed.challenge_id) {
                    code.delivery_failed
                        .get_or_insert((at, failed.reason.clone()));
                    code.finish(CodeEnd::DeliveryFailed, at);
                }
            }
            Event::MfaSucceeded(succeeded) => {
                if let Some(code) = self.codes.get_mut(&succeeded.challenge_id) {
                    code.finish(CodeEnd::Succeeded, at);
                }
            }
            Event::MfaFailed(failed) => {
                if let Some(code) = self.codes.get_mut(&failed.challenge_id) {
                    let end = match failed.reason {
                        MfaFailureReason::InvalidCode => None,
                        MfaFailureReason::TooManyAttempts => Some(CodeEnd::Locked),
                        MfaFailureReason::Expired => Some(CodeEnd::Expired),
                        MfaFailureReason::Superseded => Some(CodeEnd::Superseded),
                        MfaFailureReason::Revoked => Some(CodeEnd::Revoked),
                    };
                    if matches!(
                        failed.reason,
                        MfaFailureReason::InvalidCode | MfaFailureReason::TooManyAttempts
                    ) {
                        code.wrong_codes.push(at);
                    }
                    if let Some(end) = end {
                        code.finish(end, at);
                    }
                }
            }
            Event::AccountChanged(_) => {}
            // A company's policy: the decisions it shaped say so (`risk.policy_version`).
            Event::RiskPolicyChanged(_) => {}
            // The user's word after the login ended: the risk worker's to act on.
            Event::LoginFeedback(_) => {}
        }
    }

    /// The first decision of a kept login counts (a redelivered one changes nothing).
    fn decide(
        &mut self,
        attempt: AttemptId,
        at: DateTime<Utc>,
        decision: Decision,
        risk: Option<RiskAssessment>,
        challenge_id: Option<ChallengeId>,
    ) {
        let Some(story) = self.logins.get_mut(&attempt) else {
            return;
        };
        if story.decision.is_none() {
            story.decision = Some(Decided { at, decision, risk });
            story.challenge_id = challenge_id;
        }
    }

    /// Hands out the logins that began before `before` (oldest first) and forgets them, and
    /// the codes issued before `forget_codes_before`: bounded memory over a long log.
    pub fn take_older_than(
        &mut self,
        before: DateTime<Utc>,
        forget_codes_before: DateTime<Utc>,
    ) -> Vec<Login> {
        let now = self.now.unwrap_or(before);
        let split = self
            .order
            .iter()
            .position(|attempt| self.logins.get(attempt).is_some_and(|s| s.at >= before))
            .unwrap_or(self.order.len());
        let taken: Vec<AttemptId> = self.order.drain(..split).collect();
        let logins = taken
            .into_iter()
            .filter_map(|attempt| self.logins.remove(&attempt))
            .map(|story| {
                let code = story.challenge_id.and_then(|c| self.codes.get(&c)).cloned();
                Login::of(story, code, now)
            })
            .collect();
        self.codes
            .retain(|_, code| code.issued_at >= forget_codes_before);
        logins
    }

    /// Every login still held, oldest first, as the end of the log leaves them.
    pub fn finish(mut self) -> Vec<Login> {
        let Some(now) = self.now else {
            return Vec::new();
        };
        let end = now + chrono::Duration::seconds(1);
        self.take_older_than(end, end)
    }
}

/// One line of a login's story.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub what: String,
}

/// The steps of a login, in time order: the login, its decision, the code's email, each wrong
/// code, the code's end, and how the login ended.
pub fn steps(login: &Login) -> Vec<Step> {
    let story = &login.story;
    let mut steps = vec![Step {
        at: story.at,
        what: format!(
            "login on {} {}, {} {}",
            story.platform,
            login.origin.describe(),
            story.auth_method.as_str(),
            match story.primary_factor {
                PrimaryFactor::Succeeded => "ok",
                PrimaryFactor::Failed => "failed",
                PrimaryFactor::NotAccepted => "not accepted",
            },
        ),
    }];
    if let Some(decided) = &story.decision {
        let mut what = format!("decision: {}", decided.decision.describe());
        if let Some(risk) = &decided.risk {
            let _ = write!(
                what,
                ", risk {} (score {:.2})",
                risk.level.as_str(),
                risk.score
            );
            if !risk.reasons.is_empty() {
                let reasons: Vec<&str> = risk.reasons.iter().map(|r| r.as_str()).collect();
                let _ = write!(what, ": {}", reasons.join(", "));
            }
        }
        steps.push(Step {
            at: decided.at,
            what,
        });
    }
    if let Some(code) = &login.code {
        let shared = code.issued_for != story.attempt_id;
        if shared {
            steps.push(Step {
                at: code.issued_at,
                what: format!("shares the code issued for login {}", code.issued_for),
            });
        }
        if let Some(sent) = code.sent_at {
            steps.push(Step {
                at: sent,
                what: format!("code emailed (valid until {})", time(code.expires_at)),
            });
        }
        if let Some((at, reason)) = &code.delivery_failed {
            steps.push(Step {
                at: *at,
                what: format!("code email failed: {reason}"),
            });
        }
        for (n, at) in code.wrong_codes.iter().enumerate() {
            steps.push(Step {
                at: *at,
                what: format!("wrong code #{}", n + 1),
            });
        }
        match login.code_end {
            // Told by the failed email's own step.
            Some((CodeEnd::DeliveryFailed, _)) => {}
            Some((end, at)) => steps.push(Step {
                at,
                what: format!("code {}", end.as_str().replace('_', " ")),
            }),
            None => {}
        }
    }
    steps.sort_by_key(|step| step.at);
    steps
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// The logins as a person reads them: a header per login, then its steps.
pub fn render_table(logins: &[Login]) -> String {
    let mut out = String::new();
    if logins.is_empty() {
        out.push_str("no login found in the log\n");
        return out;
    }
    for login in logins {
        let story = &login.story;
        let _ = writeln!(
            out,
            "login {}  user {}  {}",
            story.attempt_id,
            story
                .user_id
                .map_or("(unknown account)".to_owned(), |u| u.to_string()),
            login.outcome.describe().to_uppercase(),
        );
        for step in steps(login) {
            let _ = writeln!(out, "  {}  {}", time(step.at), step.what);
        }
        out.push('\n');
    }
    let _ = write!(out, "{} login(s)", logins.len());
    let erased = logins
        .iter()
        .filter(|login| matches!(login.origin, Origin::Erased { .. }))
        .count();
    let unreadable = logins
        .iter()
        .filter(|login| matches!(login.origin, Origin::Unreadable { .. }))
        .count();
    if erased > 0 {
        let _ = write!(out, ", {erased} with their personal data erased");
    }
    if unreadable > 0 {
        let _ = write!(out, ", {unreadable} whose personal data could not be read");
    }
    out.push('\n');
    out
}

/// The logins as JSON: each with its story, code, outcome and steps.
pub fn render_json(logins: &[Login]) -> serde_json::Value {
    let logins: Vec<serde_json::Value> = logins
        .iter()
        .map(|login| {
            let mut value = serde_json::to_value(login).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("client".into(), login.origin.client().into());
                object.insert(
                    "steps".into(),
                    serde_json::to_value(steps(login)).unwrap_or_default(),
                );
            }
            value
        })
        .collect();
    serde_json::json!({ "logins": logins })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use shared::domain::{CompanyId, DeviceId, Locale, UserAgent};
    use shared::events::{
        CodeSent, LoginApproved, LoginAttempted, LoginRejected, MfaFailed, MfaRequired,
        MfaSucceeded, RiskLevel, RiskReason,
    };
    use shared::personal::Subject;

    pub(crate) fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_600_000 + secs, 0).unwrap()
    }

    pub(crate) struct Log {
        pub events: Vec<Envelope>,
    }

    pub(crate) fn risk(level: RiskLevel, reasons: &[RiskReason]) -> RiskAssessment {
        RiskAssessment {
            score: 1.5,
            level,
            reasons: reasons.to_vec(),
            model_version: "test".into(),
            policy_version: None,
            observed: None,
        }
    }

    impl Log {
        pub fn new() -> Self {
            Self { events: Vec::new() }
        }

        pub fn login(
            &mut self,
            user: UserId,
            at: i64,
            platform: Platform,
            ip: &str,
            factor: PrimaryFactor,
        ) -> Envelope {
            let event = Envelope::new(
                "login-intake",
                AttemptId::new(),
                None,
                t(at),
                Event::LoginAttempted(LoginAttempted {
                    user_id: Some(user),
                    company_id: Some(CompanyId::parse("acme").unwrap()),
                    auth_method: AuthMethod::Password,
                    primary_factor: factor,
                    privileged: false,
                    platform,
                    client: Personal::Clear(LoginClient {
                        ip: ip.parse().unwrap(),
                        user_agent: UserAgent::parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0").unwrap(),
                        device_id: Some(DeviceId::parse("laptop").unwrap()),
                    }),
                    locale: Locale::default(),
                }),
            );
            self.events.push(event.clone());
            event
        }

        pub fn then(
            &mut self,
            cause: &Envelope,
            producer: &str,
            at: i64,
            event: Event,
        ) -> Envelope {
            let event = Envelope::caused_by(cause, producer, t(at), event);
            self.events.push(event.clone());
            event
        }

        pub fn approve(&mut self, login: &Envelope, user: UserId, at: i64) -> Envelope {
            self.then(
                login,
                "risk-worker",
                at,
                Event::LoginApproved(LoginApproved {
                    counted: None,
                    user_id: user,
                    approved_after_mfa: false,
                    challenge_id: None,
                    risk: Some(risk(RiskLevel::Low, &[])),
                }),
            )
        }

        pub fn reject(&mut self, login: &Envelope, user: UserId, at: i64) -> Envelope {
            self.then(
                login,
                "risk-worker",
                at,
                Event::LoginRejected(LoginRejected {
                    counted: None,
                    user_id: Some(user),
                    reason: RejectionReason::InvalidCredentials,
                    retry_after_secs: None,
                    risk: None,
                }),
            )
        }

        /// `MfaRequired` and its `CodeSent`: the challenge.
        pub fn require_code(
            &mut self,
            login: &Envelope,
            user: UserId,
            at: i64,
        ) -> (Envelope, ChallengeId) {
            let challenge = ChallengeId::from_uuid(uuid::Uuid::now_v7());
            let Event::LoginAttempted(attempted) = &login.event else {
                unreachable!()
            };
            let required = self.then(
                login,
                "risk-worker",
                at,
                Event::MfaRequired(MfaRequired {
                    counted: None,
                    user_id: user,
                    company_id: CompanyId::parse("acme").unwrap(),
                    challenge_id: challenge,
                    expires_at: t(at + 600),
                    reasons: vec![RiskReason::NewDevice],
                    platform: attempted.platform,
                    client: attempted.client.clone(),
                    locale: Locale::default(),
                    risk: Some(risk(
                        RiskLevel::Medium,
                        &[RiskReason::NewDevice, RiskReason::NewNetwork],
                    )),
                }),
            );
            self.then(
                &required,
                "code-worker",
                at + 2,
                Event::CodeSent(CodeSent {
                    user_id: user,
                    challenge_id: challenge,
                    expires_at: t(at + 600),
                }),
            );
            (required, challenge)
        }

        pub fn wrong_code(
            &mut self,
            required: &Envelope,
            user: UserId,
            challenge: ChallengeId,
            at: i64,
            reason: MfaFailureReason,
        ) {
            self.then(
                required,
                "verifier",
                at,
                Event::MfaFailed(MfaFailed {
                    user_id: user,
                    challenge_id: challenge,
                    reason,
                    attempts_remaining: 2,
                }),
            );
        }

        pub fn pass(&mut self, required: &Envelope, user: UserId, challenge: ChallengeId, at: i64) {
            let succeeded = self.then(
                required,
                "verifier",
                at,
                Event::MfaSucceeded(MfaSucceeded {
                    user_id: user,
                    challenge_id: challenge,
                }),
            );
            self.then(
                &succeeded,
                "verifier",
                at,
                Event::LoginApproved(LoginApproved {
                    counted: None,
                    user_id: user,
                    approved_after_mfa: true,
                    challenge_id: Some(challenge),
                    risk: None,
                }),
            );
        }
    }

    /// Four logins of one user (approved; a code passed after a wrong one; a wrong password;
    /// a code locked) and one of somebody else.
    pub(crate) fn known_log(user: UserId, other: UserId) -> Log {
        let mut log = Log::new();
        let approved = log.login(
            user,
            0,
            Platform::Dashboard,
            "198.51.100.23",
            PrimaryFactor::Succeeded,
        );
        log.approve(&approved, user, 1);
        let challenged = log.login(
            user,
            100,
            Platform::Ios,
            "203.0.113.7",
            PrimaryFactor::Succeeded,
        );
        let (required, challenge) = log.require_code(&challenged, user, 101);
        log.wrong_code(
            &required,
            user,
            challenge,
            130,
            MfaFailureReason::InvalidCode,
        );
        log.pass(&required, user, challenge, 140);
        let elsewhere = log.login(
            other,
            150,
            Platform::Android,
            "192.0.2.1",
            PrimaryFactor::Succeeded,
        );
        log.approve(&elsewhere, other, 151);
        let wrong_password = log.login(
            user,
            200,
            Platform::Dashboard,
            "198.51.100.23",
            PrimaryFactor::Failed,
        );
        log.reject(&wrong_password, user, 201);
        let locked = log.login(
            user,
            86_400 + 10,
            Platform::Ios,
            "203.0.113.99",
            PrimaryFactor::Succeeded,
        );
        let (required, challenge) = log.require_code(&locked, user, 86_400 + 11);
        for n in 0..2 {
            log.wrong_code(
                &required,
                user,
                challenge,
                86_400 + 20 + n,
                MfaFailureReason::InvalidCode,
            );
        }
        log.wrong_code(
            &required,
            user,
            challenge,
            86_400 + 30,
            MfaFailureReason::TooManyAttempts,
        );
        log
    }

    fn fold(log: &Log, filter: Filter) -> Vec<Login> {
        let mut stories = Stories::new(filter);
        for event in &log.events {
            stories.apply(event);
        }
        stories.finish()
    }

    #[test]
    fn a_users_timeline_tells_each_login_in_order() {
        let (user, other) = (UserId::new(), UserId::new());
        let log = known_log(user, other);
        let logins = fold(&log, Filter::User(user));
        let outcomes: Vec<Outcome> = logins.iter().map(|l| l.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Approved,
                Outcome::ApprovedAfterMfa,
                Outcome::Rejected("invalid_credentials".into()),
                Outcome::Rejected("code_locked".into()),
            ]
        );
        let passed = &logins[1];
        let code = passed.code.as_ref().unwrap();
        assert_eq!(code.sent_at, Some(t(103)));
        assert_eq!(code.wrong_codes, [t(130)]);
        assert_eq!(code.end, Some((CodeEnd::Succeeded, t(140))));
        assert_eq!(
            steps(passed).iter().map(|s| s.what.as_str()).collect::<Vec<_>>(),
            [
                "login on ios from 203.0.113.7 with Firefox on Windows 10 (device laptop), password ok",
                "decision: mfa_required, risk medium (score 1.50): new_device, new_network",
                &format!("code emailed (valid until {})", time(t(701))),
                "wrong code #1",
                "code succeeded",
            ]
        );
        let locked = logins[3].code.as_ref().unwrap();
        assert_eq!(locked.wrong_codes.len(), 3);
        let table = render_table(&logins);
        assert!(table.contains("APPROVED AFTER MFA"), "{table}");
        assert!(table.contains("REJECTED (CODE_LOCKED)"), "{table}");
        assert!(table.contains("4 login(s)"), "{table}");
        assert!(
            !table.contains("192.0.2.1"),
            "another user's login: {table}"
        );
    }

    #[test]
    fn an_attempts_timeline_is_that_login_alone() {
        let (user, other) = (UserId::new(), UserId::new());
        let log = known_log(user, other);
        let attempt = log.events[2].attempt_id;
        let logins = fold(&log, Filter::Attempt(attempt));
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0].story.attempt_id, attempt);
        let json = render_json(&logins);
        assert_eq!(json["logins"][0]["outcome"]["state"], "approved_after_mfa");
        assert_eq!(
            json["logins"][0]["code"]["wrong_codes"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(json["logins"][0]["client"], "Firefox on Windows 10");
    }

    #[test]
    fn a_code_nobody_typed_expires_with_the_logs_clock() {
        let user = UserId::new();
        let mut log = Log::new();
        let login = log.login(
            user,
            0,
            Platform::Ios,
            "203.0.113.7",
            PrimaryFactor::Succeeded,
        );
        log.require_code(&login, user, 1);
        let waiting = fold(&log, Filter::All);
        assert_eq!(waiting[0].outcome, Outcome::AwaitingCode);
        // Later events move the clock past the expiry.
        let later = log.login(
            UserId::new(),
            700,
            Platform::Ios,
            "192.0.2.1",
            PrimaryFactor::Failed,
        );
        log.reject(&later, user, 701);
        let expired = fold(&log, Filter::User(user));
        assert_eq!(expired[0].outcome, Outcome::Rejected("code_expired".into()));
        assert!(steps(&expired[0])
            .iter()
            .any(|s| s.what == "code expired" && s.at == t(601)));
    }

    /// A login of `user` from `ip`, its client sealed under `key` as login-intake seals it.
    fn sealed_login(log: &mut Log, user: UserId, at: i64, ip: &str, key: &DataKey) -> Envelope {
        let mut login = log.login(user, at, Platform::Ios, ip, PrimaryFactor::Succeeded);
        let Event::LoginAttempted(attempted) = &mut login.event else {
            unreachable!()
        };
        let client = attempted.client.in_clear().unwrap().clone();
        attempted.client = Personal::seal(
            &client,
            DataKeyId::new(Subject::User(user), login.occurred_at),
            key,
            EventType::LoginAttempted.seal_context(login.attempt_id),
        );
        *log.events.last_mut().unwrap() = login.clone();
        login
    }

    fn first_step(login: &Login) -> String {
        steps(login).swap_remove(0).what
    }

    #[test]
    fn a_sealed_origin_reads_sealed_without_keys_clear_with_its_key_and_erased_without_it() {
        let user = UserId::new();
        let (december, january) = (DataKey::generate(), DataKey::generate());
        let mut log = Log::new();
        for (at, ip, key) in [
            (0, "203.0.113.7", &december),
            (60, "203.0.113.8", &december),
            // 2026-01: the month's own key, destroyed below.
            (40 * 86_400, "203.0.113.99", &january),
        ] {
            let login = sealed_login(&mut log, user, at, ip, key);
            log.approve(&login, user, at + 1);
        }
        let december_id = DataKeyId::new(Subject::User(user), t(0));
        let january_id = DataKeyId::new(Subject::User(user), t(40 * 86_400));
        assert_ne!(december_id, january_id);

        // Without keys, as a copy of the log reads: sealed, nothing personal shown.
        let logins = fold(&log, Filter::User(user));
        assert_eq!(logins[0].origin, Origin::Sealed { key: december_id });
        assert_eq!(
            first_step(&logins[0]),
            format!("login on ios from where it is sealed (data key {december_id}), password ok")
        );
        let json = render_json(&logins);
        assert_eq!(json["logins"][0]["origin"]["state"], "sealed");
        assert_eq!(json["logins"][0]["origin"]["key"], december_id.to_string());
        assert_eq!(json["logins"][0]["client"], "sealed");
        assert!(!json.to_string().contains("203.0.113"), "{json:#}");

        // With the deployment's keys, January's destroyed: each key asked for once.
        let mut opened = logins.clone();
        let mut asked = Vec::new();
        open_origins(&mut opened, |id| {
            asked.push(*id);
            Ok((*id == december_id).then(|| december.clone()))
        });
        assert_eq!(asked, [december_id, january_id]);
        let Origin::Clear { key, client } = &opened[1].origin else {
            panic!("{:?}", opened[1].origin)
        };
        assert_eq!(
            (*key, client.ip.to_string()),
            (Some(december_id), "203.0.113.8".into())
        );
        assert_eq!(
            first_step(&opened[0]),
            "login on ios from 203.0.113.7 with Firefox on Windows 10 (device laptop), password ok"
        );
        assert_eq!(opened[2].origin, Origin::Erased { key: january_id });
        assert_eq!(
            first_step(&opened[2]),
            format!(
                "login on ios from where it is erased (data key {january_id} destroyed), password ok"
            )
        );
        // Erased, the login still counts, with its decision and outcome.
        assert_eq!(opened[2].outcome, Outcome::Approved);
        assert_eq!(
            opened.iter().map(|l| &l.outcome).collect::<Vec<_>>(),
            logins.iter().map(|l| &l.outcome).collect::<Vec<_>>()
        );
        let json = render_json(&opened);
        let states: Vec<&str> = json["logins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["origin"]["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["clear", "clear", "erased"]);
        assert_eq!(json["logins"][0]["origin"]["ip"], "203.0.113.7");
        assert_eq!(json["logins"][0]["origin"]["device_id"], "laptop");
        assert_eq!(json["logins"][0]["origin"]["key"], december_id.to_string());
        assert_eq!(json["logins"][0]["client"], "Firefox on Windows 10");
        assert_eq!(json["logins"][2]["client"], "erased");
        assert_eq!(json["logins"][2]["origin"]["key"], january_id.to_string());
        let table = render_table(&opened);
        assert!(
            table.contains("3 login(s), 1 with their personal data erased\n"),
            "{table}"
        );
        assert!(!table.contains("203.0.113.99"), "{table}");
    }

    #[test]
    fn a_key_that_cannot_be_had_or_does_not_open_is_said_for_its_login_alone() {
        let user = UserId::new();
        let mut log = Log::new();
        let clear = log.login(
            user,
            0,
            Platform::Dashboard,
            "198.51.100.23",
            PrimaryFactor::Succeeded,
        );
        log.approve(&clear, user, 1);
        let altered = sealed_login(&mut log, user, 10, "203.0.113.7", &DataKey::generate());
        log.approve(&altered, user, 11);
        let december_id = DataKeyId::new(Subject::User(user), t(10));
        let other_user = UserId::new();
        let unreachable = sealed_login(
            &mut log,
            other_user,
            20,
            "203.0.113.9",
            &DataKey::generate(),
        );
        log.reject(&unreachable, other_user, 21);
        let mut logins = fold(&log, Filter::All);
        open_origins(&mut logins, |id| {
            if id.subject == Subject::User(other_user) {
                Err("reading or writing data keys: pool timed out".into())
            } else {
                // Not the key that sealed it: the row was altered, or another deployment's.
                Ok(Some(DataKey::generate()))
            }
        });
        // Clear in the log: nothing to open, as it was.
        assert_eq!(
            first_step(&logins[0]),
            "login on dashboard from 198.51.100.23 with Firefox on Windows 10 (device laptop), password ok"
        );
        assert_eq!(
            first_step(&logins[1]),
            format!(
                "login on ios from where it cannot be read (personal data under data key {december_id} does not open: altered or misplaced), password ok"
            )
        );
        let other_id = DataKeyId::new(Subject::User(other_user), t(20));
        assert_eq!(
            first_step(&logins[2]),
            format!(
                "login on ios from where it cannot be read (data key {other_id}: reading or writing data keys: pool timed out), password ok"
            )
        );
        let json = render_json(&logins);
        assert_eq!(json["logins"][0]["origin"]["state"], "clear");
        assert!(json["logins"][0]["origin"].get("key").is_none(), "{json:#}");
        assert_eq!(json["logins"][1]["origin"]["state"], "unreadable");
        assert_eq!(json["logins"][2]["client"], "unreadable");
        assert_eq!(
            json["logins"][2]["origin"]["error"],
            "reading or writing data keys: pool timed out"
        );
        assert_eq!(
            logins[2].outcome,
            Outcome::Rejected("invalid_credentials".into())
        );
        let table = render_table(&logins);
        assert!(
            table.contains("3 login(s), 2 whose personal data could not be read\n"),
            "{table}"
        );
    }
}
