//! The risk worker's state behind one trait, and the two things done with it, the same for
//! the live worker and `replay`: deciding a login (read, `decision::decide`, record) and
//! applying what the verifier, the code worker and the admins report afterwards.
//!
//! `crate::store` implements it over PostgreSQL (publishing through the outbox in the
//! decision's transaction), `crate::model::state::MemoryState` in memory for replay, with
//! the same rules of what counts.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use shared::domain::{AttemptId, ChallengeId, CompanyId, UserId};
use shared::events::{
    AccountChange, Envelope, Event, FeedbackVerdict, LoginAttempted, LoginClient, MfaFailureReason,
    ReportedClient, RiskPolicyChanged,
};
use shared::personal::PseudonymKey;
use uuid::Uuid;

use crate::consumer::PRODUCER;
use crate::decision::{self, Effects, Given, Login, LoginState, MalformedAttempt};
use crate::engine;
use crate::model::assess::{UserFacts, Velocity};
use crate::model::features::failure_ip_pseudonym;
use crate::model::features::Features;
use crate::model::freeman::GlobalCounts;
use crate::model::state::AccountKey;
use crate::rules::{CodeHistory, CompanyPolicy, InForce, Policy};

/// A decision about to be recorded, with what it changes.
pub struct Decided<'a> {
    pub attempt_id: AttemptId,
    pub user_id: Option<UserId>,
    /// The decision, as published.
    pub event: &'a Envelope,
    pub features: &'a Features,
    /// `features` by keyed hash: what the global counts learn.
    pub global: &'a Features,
    /// The login's time: when a failure happened and the login is learned at.
    pub occurred_at: DateTime<Utc>,
    pub effects: &'a Effects,
}

/// The history a decision reads: the user's approved logins of the `window` before `at`,
/// as the model reads them for `login`.
pub struct HistoryQuery<'a> {
    pub user: UserId,
    pub login: &'a Features,
    pub at: DateTime<Utc>,
    pub window: Duration,
}

/// The failures a decision counts, before `at`: the account's (none for an unknown one) in
/// `account_window`, the address's in `ip_window`.
pub struct VelocityQuery<'a> {
    pub account: Option<&'a AccountKey>,
    pub ip: &'a str,
    pub at: DateTime<Utc>,
    pub account_window: Duration,
    pub ip_window: Duration,
}

/// Everything a decision reads about one login (`LoginState`): the user's history and
/// codes, the global counts and the failures around it.
pub struct LoginStateQuery<'a> {
    /// The account's user and the key its failures count under (`engine::account_key`); None
    /// for an unknown account, which has no history, no codes and no failures of its own.
    pub account: Option<(UserId, &'a AccountKey)>,
    /// The login's features, as the user's history is read for them.
    pub login: &'a Features,
    /// The same by keyed hash (`Features::pseudonymous`), as the global counts are read.
    pub global: &'a Features,
    /// The failure address's key (`failure_ip_pseudonym`).
    pub ip: &'a str,
    /// The login's time: the windows of history, global counts and failures end there.
    pub at: DateTime<Utc>,
    /// The decision's time: the code caps are read as they stand then.
    pub now: DateTime<Utc>,
    pub history_window: Duration,
    pub account_failures_window: Duration,
    pub ip_window: Duration,
}

impl LoginStateQuery<'_> {
    /// The user's part: None for an unknown account.
    pub fn history(&self) -> Option<HistoryQuery<'_>> {
        self.account.map(|(user, _)| HistoryQuery {
            user,
            login: self.login,
            at: self.at,
            window: self.history_window,
        })
    }

    pub fn velocity(&self) -> VelocityQuery<'_> {
        VelocityQuery {
            account: self.account.map(|(_, key)| key),
            ip: self.ip,
            at: self.at,
            account_window: self.account_failures_window,
            ip_window: self.ip_window,
        }
    }
}

/// `query` read one part after another, with `RiskState`'s reads of each: what
/// `RiskState::login_state` gives unless a state reads it all at once.
pub async fn login_state_by_parts<S: RiskState + ?Sized>(
    state: &mut S,
    query: &LoginStateQuery<'_>,
) -> Outcome<S, LoginState> {
    let (user, codes) = match query.history() {
        Some(history) => (
            state.user_facts(&history).await?,
            state.code_history(history.user, query.now).await?,
        ),
        None => (UserFacts::default(), CodeHistory::default()),
    };
    let global = state.global(query.global, query.at).await?;
    let velocity = state.velocity(&query.velocity()).await?;
    Ok(LoginState {
        user,
        global,
        velocity,
        codes,
    })
}

/// A challenge that can no longer be passed, as an event names it: its id, and the attempt it
/// was issued for (the envelope's). Replay issues challenges with ids of its own (derived from
/// its input), so it finds those a live log names by the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedChallenge {
    pub challenge: ChallengeId,
    pub attempt_id: AttemptId,
    pub at: DateTime<Utc>,
}

/// A login its user said was not theirs (`LoginFeedback` `wasnt_me`): its network (the
/// `Level::Prefix` value) and device id (the `Level::Device` value, never "absent") become
/// high risk for the user, and it is never learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedLogin {
    pub user: UserId,
    pub attempt_id: AttemptId,
    pub network: Option<String>,
    pub device: Option<String>,
    pub at: DateTime<Utc>,
}

impl ReportedLogin {
    /// `reported`: the feedback's personal fields, opened (None when erased).
    pub fn of(
        envelope: &Envelope,
        feedback: &shared::events::LoginFeedback,
        reported: Option<&ReportedClient>,
    ) -> Self {
        Self {
            user: feedback.user_id,
            attempt_id: envelope.attempt_id,
            network: reported
                .and_then(|r| r.ip)
                .map(crate::model::features::prefix_of),
            // No device id is nobody's device: never reported.
            device: reported
                .and_then(|r| r.device_id.as_ref())
                .map(|device| crate::model::features::device_value(Some(device))),
            at: envelope.occurred_at,
        }
    }
}

/// A user who must change their password before a password login (`UserFacts::
/// password_change_required`): they reported the login `attempt_id` as not theirs at `at`,
/// under a company policy that asks for it (`password_change_on_takeover_report`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordChangeRequired {
    pub user: UserId,
    pub attempt_id: AttemptId,
    pub at: DateTime<Utc>,
}

/// A wrong code, reported by the event `event_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongCode {
    pub event_id: Uuid,
    pub user: UserId,
    pub at: DateTime<Utc>,
}

/// Reads for a decision, and the records after it and after the events that follow.
/// Every record is idempotent: delivery is at least once.
#[expect(
    async_fn_in_trait,
    reason = "implemented by this crate's two states and used with them, concrete: the live \
              worker's futures are Send, and the compiler sees it through them"
)]
pub trait RiskState {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Everything the decision of one login reads. By default the reads below one after
    /// another (`login_state_by_parts`); a state over a database reads it all in one round
    /// trip, with the same result.
    async fn login_state(&mut self, query: &LoginStateQuery<'_>) -> Outcome<Self, LoginState> {
        login_state_by_parts(self, query).await
    }

    async fn user_facts(&mut self, query: &HistoryQuery<'_>) -> Outcome<Self, UserFacts>;

    /// The global counts of `login`'s values, as a login at `at` reads them (its epoch's).
    /// `login`: the login's pseudonymous features (`Features::pseudonymous`).
    async fn global(&mut self, login: &Features, at: DateTime<Utc>) -> Outcome<Self, GlobalCounts>;

    async fn velocity(&mut self, query: &VelocityQuery<'_>) -> Outcome<Self, Velocity>;

    /// The account's recent codes at `now`, as issued and closed so far.
    async fn code_history(
        &mut self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Outcome<Self, CodeHistory>;

    /// Stores the decision and its effects, atomically.
    async fn record(&mut self, decided: &Decided<'_>) -> Outcome<Self>;

    /// The user passed the code `attempt_id` asked for: the login joins their history, if
    /// its decision was waiting for that and it was not learned yet.
    async fn learn_after_mfa(&mut self, attempt_id: AttemptId, at: DateTime<Utc>) -> Outcome<Self>;

    /// The challenge can no longer be passed.
    async fn close_challenge(&mut self, closed: &ClosedChallenge) -> Outcome<Self>;

    async fn record_wrong_code(&mut self, code: WrongCode) -> Outcome<Self>;

    /// Forgets what the user has logged in from: the next login asks for a code.
    async fn forget_history(&mut self, user: UserId) -> Outcome<Self>;

    /// The user's open challenges can no longer be passed.
    async fn close_challenges_of(&mut self, user: UserId, at: DateTime<Utc>) -> Outcome<Self>;

    /// Forgets everything kept about the user.
    async fn delete_user(&mut self, user: UserId) -> Outcome<Self>;

    /// The user said the login was not theirs: its network and device become high risk for
    /// them (`UserFacts::reported`), and it is never learned. Idempotent.
    async fn record_reported(&mut self, reported: &ReportedLogin) -> Outcome<Self>;

    /// The user's password logins are refused until their password changes. Idempotent: the
    /// first report is kept.
    async fn require_password_change(&mut self, required: &PasswordChangeRequired)
        -> Outcome<Self>;

    /// The user's password changed: their password logins are decided as ever again.
    async fn password_changed(&mut self, user: UserId) -> Outcome<Self>;

    /// The company's risk policy, the newest recorded; None when it has none.
    async fn company_policy(&mut self, company: &CompanyId)
        -> Outcome<Self, Option<CompanyPolicy>>;

    /// Keeps `changed` unless a newer version of the company's policy is kept already (a
    /// redelivered or reordered older one changes nothing).
    async fn record_company_policy(&mut self, changed: &RiskPolicyChanged) -> Outcome<Self>;
}

/// What an operation on the state `S` gives: `T`, or the state's error.
pub type Outcome<S, T = ()> = Result<T, <S as RiskState>::Error>;

#[derive(Debug, thiserror::Error)]
pub enum LoginError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Malformed(#[from] MalformedAttempt),
    #[error("risk state")]
    State(#[source] E),
}

/// The ids a decision takes: random for the live worker, derived from the input's for replay.
#[derive(Debug, Clone, Copy)]
pub struct DecisionIds {
    pub event_id: Uuid,
    pub challenge_id: ChallengeId,
}

/// A `LoginAttempted` with its personal fields opened (by the caller, who holds the data
/// keys), and the features the model reads from them.
#[derive(Debug, Clone, Copy)]
pub struct OpenedAttempt<'a> {
    pub attempt: &'a LoginAttempted,
    pub client: &'a LoginClient,
    pub features: &'a Features,
}

/// Decides `opened` (the payload of `cause`) at `now`: reads what the decision needs,
/// decides, records the decision with its effects, and returns it.
pub async fn decide_login<S: RiskState>(
    state: &mut S,
    cause: &Envelope,
    opened: OpenedAttempt<'_>,
    pseudonyms: &PseudonymKey,
    now: DateTime<Utc>,
    ids: DecisionIds,
    policy: &Policy,
) -> Result<Envelope, LoginError<S::Error>> {
    let OpenedAttempt {
        attempt,
        client,
        features,
    } = opened;
    let global = features.pseudonymous(pseudonyms);
    let failure_ip = failure_ip_pseudonym(pseudonyms, client.ip);
    // Microseconds, as PostgreSQL keeps times: a stored and a replayed time agree.
    let now = now.trunc_subsecs(6);
    let login = Login {
        attempt_id: cause.attempt_id,
        attempt,
        client,
        features,
        global: &global,
        failure_ip: &failure_ip,
        at: cause.occurred_at,
    };
    // The policy the company had when the login is decided: live, the newest the worker
    // consumed; in replay, the newest of its input so far.
    let company = match &attempt.company_id {
        Some(company) => state
            .company_policy(company)
            .await
            .map_err(LoginError::State)?,
        None => None,
    };
    let in_force = policy.in_force(company.as_ref());
    let read = read(state, &login, now, &in_force)
        .await
        .map_err(LoginError::State)?;
    let decision = decision::decide(
        &login,
        &read,
        Given {
            now,
            new_challenge_id: ids.challenge_id,
        },
        &in_force,
    )?;
    let event = Envelope {
        event_id: ids.event_id,
        ..Envelope::caused_by(cause, PRODUCER, now, decision.event)
    };
    state
        .record(&Decided {
            attempt_id: cause.attempt_id,
            user_id: attempt.user_id,
            event: &event,
            features,
            global: &global,
            occurred_at: login.at,
            effects: &decision.effects,
        })
        .await
        .map_err(LoginError::State)?;
    Ok(event)
}

async fn read<S: RiskState>(
    state: &mut S,
    login: &Login<'_>,
    now: DateTime<Utc>,
    in_force: &InForce<'_>,
) -> Result<LoginState, S::Error> {
    let risk = &in_force.policy.risk;
    let attempt = login.attempt;
    let account = engine::account_key(login.attempt_id, attempt);
    state
        .login_state(&LoginStateQuery {
            account: attempt.user_id.map(|user| (user, &account)),
            login: login.features,
            global: login.global,
            ip: login.failure_ip,
            at: login.at,
            now,
            history_window: risk.history_window,
            account_failures_window: risk.account_failures_window,
            ip_window: risk.ip_window,
        })
        .await
}

/// What became of an event that is not a `LoginAttempted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Recorded,
    /// Not an event the risk worker follows (or a `LoginAttempted`: see `decide_login`).
    NotFollowed,
}

/// Records what the verifier (`MfaSucceeded`, `MfaFailed`, the final `LoginApproved`), the
/// code worker (`CodeDeliveryFailed`) and the admins (`AccountChanged`) report: the passed
/// login is learned, and the code caps see each challenge closed and each wrong code.
/// `reported`: a `LoginFeedback`'s personal fields, opened by the caller (who holds the data
/// keys); None for other events, or when erased.
pub async fn apply<S: RiskState>(
    state: &mut S,
    envelope: &Envelope,
    reported: Option<&ReportedClient>,
) -> Result<Applied, S::Error> {
    let at = envelope.occurred_at;
    let closed = |challenge| ClosedChallenge {
        challenge,
        attempt_id: envelope.attempt_id,
        at,
    };
    match &envelope.event {
        Event::LoginApproved(approved) if approved.approved_after_mfa => {
            state.learn_after_mfa(envelope.attempt_id, at).await?;
        }
        Event::MfaSucceeded(succeeded) => {
            // Learning on either event of a passed challenge: whichever comes first.
            state.learn_after_mfa(envelope.attempt_id, at).await?;
            state
                .close_challenge(&closed(succeeded.challenge_id))
                .await?;
        }
        Event::MfaFailed(failed) => {
            if matches!(
                failed.reason,
                MfaFailureReason::InvalidCode | MfaFailureReason::TooManyAttempts
            ) {
                state
                    .record_wrong_code(WrongCode {
                        event_id: envelope.event_id,
                        user: failed.user_id,
                        at,
                    })
                    .await?;
            }
            // A wrong code leaves the challenge open for the next try; the others end it.
            if failed.reason != MfaFailureReason::InvalidCode {
                state.close_challenge(&closed(failed.challenge_id)).await?;
            }
        }
        // The user's own word. "Was me" is a passed challenge's approval: the login is learned
        // (if its decision waited for a code and was not learned yet).
        Event::LoginFeedback(feedback) => match feedback.verdict {
            FeedbackVerdict::WasMe => state.learn_after_mfa(envelope.attempt_id, at).await?,
            FeedbackVerdict::WasntMe => {
                state
                    .record_reported(&ReportedLogin::of(envelope, feedback, reported))
                    .await?;
                // The code worker revokes the user's pending codes on the report: none of
                // them is offered again to a later login (`code_recently_sent`).
                state.close_challenges_of(feedback.user_id, at).await?;
                // The company's policy as it stands when the report is applied (live, the
                // newest the worker consumed; in replay, the newest of its input so far), as
                // a login is decided under the one in force when it is decided.
                let policy = state.company_policy(&feedback.company_id).await?;
                if policy.is_some_and(|company| {
                    company.version > 0
                        && company.policy.requires_password_change_on_takeover_report()
                }) {
                    state
                        .require_password_change(&PasswordChangeRequired {
                            user: feedback.user_id,
                            attempt_id: envelope.attempt_id,
                            at,
                        })
                        .await?;
                }
            }
        },
        Event::CodeDeliveryFailed(failed) => {
            state.close_challenge(&closed(failed.challenge_id)).await?
        }
        Event::AccountChanged(changed) => match changed.change {
            AccountChange::HistoryReset => state.forget_history(changed.user_id).await?,
            AccountChange::PasswordChanged => {
                state.close_challenges_of(changed.user_id, at).await?;
                // What the reported attacker had is no longer the password.
                state.password_changed(changed.user_id).await?
            }
            AccountChange::Disabled => state.close_challenges_of(changed.user_id, at).await?,
            AccountChange::Deleted => state.delete_user(changed.user_id).await?,
            // Login-intake enforces first factors; nothing here depends on them.
            AccountChange::Enabled | AccountChange::FirstFactorsChanged { .. } => {}
        },
        Event::RiskPolicyChanged(changed) => state.record_company_policy(changed).await?,
        _ => return Ok(Applied::NotFollowed),
    }
    Ok(Applied::Recorded)
}
