//! The whole decision about one login, as one pure function: the model's verdict
//! (`engine::evaluate`), then, for a login that needs a code, the caps on code emails
//! (`rules::code_decision`), down to the event to publish and what must be recorded. No clock
//! and no IO: ids and `now` are passed in. The live worker and `replay` both read the state
//! it needs, call it and record what it says (`crate::state`), so they decide alike by
//! construction.

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, ChallengeId, CompanyId, DeviceId, PrimaryFactor, UserId};
use shared::events::{
    CodeThrottled, CountedAs, Event, LoginApproved, LoginAttempted, LoginClient, LoginRejected,
    MfaRequired,
};

use crate::engine::{self, StateView};
use crate::model::assess::{UserFacts, Velocity};
use crate::model::features::Features;
use crate::model::freeman::GlobalCounts;
use crate::model::state::AccountKey;
use crate::rules::{code_decision, seconds_until, CodeDecision, CodeHistory, InForce, Verdict};

/// A `LoginAttempted` that cannot be decided: the live worker dead-letters it, replay skips
/// it and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedAttempt {
    /// login-intake sets both for every known account; without the company no challenge
    /// could be verified (only the company's API keys may verify it).
    #[error("LoginAttempted has a user_id but no company_id")]
    UserWithoutCompany,
}

/// Whose login it is, parsed from the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimant {
    Known {
        user_id: UserId,
        company_id: CompanyId,
    },
    /// No account has the email.
    Unknown,
}

impl Claimant {
    pub fn of(attempt: &LoginAttempted) -> Result<Self, MalformedAttempt> {
        match (attempt.user_id, &attempt.company_id) {
            (Some(user_id), Some(company_id)) => Ok(Self::Known {
                user_id,
                company_id: company_id.clone(),
            }),
            (Some(_), None) => Err(MalformedAttempt::UserWithoutCompany),
            (None, _) => Ok(Self::Unknown),
        }
    }
}

/// What the decision reads about the login, from PostgreSQL or from memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginState {
    /// The user's approved history (empty for an unknown account).
    pub user: UserFacts,
    pub global: GlobalCounts,
    pub velocity: Velocity,
    /// The account's recent codes (empty for an unknown account).
    pub codes: CodeHistory,
}

/// One login to decide.
pub struct Login<'a> {
    pub attempt_id: AttemptId,
    pub attempt: &'a LoginAttempted,
    /// Its personal fields, opened.
    pub client: &'a LoginClient,
    pub features: &'a Features,
    /// What it counts for in the state shared by all users: `features` by keyed hash
    /// (`Features::pseudonymous`), and its address's (`failure_ip_pseudonym`).
    pub global: &'a Features,
    pub failure_ip: &'a str,
    /// When the login happened: the model's clock (history, velocity, travel).
    pub at: DateTime<Utc>,
}

/// What the decision brings with it from outside, so the function stays pure.
#[derive(Debug, Clone, Copy)]
pub struct Given {
    /// The decision's time: the code caps' clock, and when an issued code expires.
    pub now: DateTime<Utc>,
    /// The id a new challenge gets, if one is issued.
    pub new_challenge_id: ChallengeId,
}

/// When the login joins the user's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learning {
    /// Approved now.
    Now,
    /// Once the user passes the code it asked for (`MfaSucceeded` or the final
    /// `LoginApproved` of the same attempt).
    AfterMfa,
    Never,
}

/// A new challenge: the code caps count it, and a later login from the same device may
/// reuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedChallenge {
    pub challenge_id: ChallengeId,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The device of the login it was issued for.
    pub device: Option<DeviceId>,
}

/// A wrong password or an unknown account: the velocity signals count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub account: AccountKey,
    /// The address, by keyed hash (`failure_ip_pseudonym`).
    pub ip: String,
}

/// What must be recorded with the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    pub learning: Learning,
    pub failure: Option<Failure>,
    pub issued_challenge: Option<IssuedChallenge>,
}

/// The outcome: the event to publish (`LoginApproved`, `MfaRequired`, `CodeThrottled` or
/// `LoginRejected`, each with its risk) and what must be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub event: Event,
    pub effects: Effects,
}

pub fn decide(
    login: &Login<'_>,
    state: &LoginState,
    given: Given,
    in_force: &InForce<'_>,
) -> Result<Decision, MalformedAttempt> {
    let policy = &*in_force.policy;
    let attempt = login.attempt;
    let claimant = Claimant::of(attempt)?;
    let known = matches!(claimant, Claimant::Known { .. });
    let (risk, verdict) = engine::evaluate(
        attempt,
        login.client,
        login.features,
        login.at,
        StateView {
            user: known.then_some(&state.user),
            global: &state.global,
            velocity: state.velocity,
        },
        in_force,
    );
    let failure = (attempt.primary_factor == PrimaryFactor::Failed || !known).then(|| Failure {
        account: engine::account_key(login.attempt_id, attempt),
        ip: login.failure_ip.to_owned(),
    });
    let counted = Some(CountedAs {
        values: login.global.to_counted(),
        failure_ip: failure.as_ref().map(|f| f.ip.clone()),
    });
    let mut issued_challenge = None;
    let (event, learning) = match (verdict, claimant) {
        (Verdict::Approve { user_id }, _) => (
            Event::LoginApproved(LoginApproved {
                counted: counted.clone(),
                user_id,
                approved_after_mfa: false,
                challenge_id: None,
                risk: Some(risk),
            }),
            Learning::Now,
        ),
        // Observe-only: approved, and never learned. Learning it would make an attacker who
        // logged in during the rollout (whom the enforced policy would have asked for a code)
        // a known device for good, approved with no code once the company enforces.
        (Verdict::Observed { user_id }, _) => (
            Event::LoginApproved(LoginApproved {
                counted: counted.clone(),
                user_id,
                approved_after_mfa: false,
                challenge_id: None,
                risk: Some(risk),
            }),
            Learning::Never,
        ),
        (Verdict::RequireMfa { user_id }, Claimant::Known { company_id, .. }) => {
            let device = login.client.device_id.as_ref();
            match code_decision(&state.codes, device, given.now, &policy.code_caps) {
                CodeDecision::Issue => {
                    let challenge_id = given.new_challenge_id;
                    let expires_at = shared::time::saturating_add(given.now, policy.code_ttl);
                    issued_challenge = Some(IssuedChallenge {
                        challenge_id,
                        user_id,
                        issued_at: given.now,
                        expires_at,
                        device: device.cloned(),
                    });
                    (
                        Event::MfaRequired(MfaRequired {
                            counted: counted.clone(),
                            user_id,
                            company_id,
                            challenge_id,
                            expires_at,
                            reasons: risk.reasons.clone(),
                            platform: attempt.platform,
                            // The attempt's sealed fields verbatim (sealed against the
                            // attempt, which the code worker opens them as): no key here,
                            // and replay decides alike.
                            client: attempt.client.clone(),
                            locale: attempt.locale,
                            risk: Some(risk),
                        }),
                        Learning::AfterMfa,
                    )
                }
                // The login waits on its device's pending challenge: passing it approves this
                // login too.
                CodeDecision::Reuse {
                    challenge_id,
                    expires_at,
                    reason,
                } => (
                    Event::CodeThrottled(CodeThrottled {
                        counted: counted.clone(),
                        user_id,
                        challenge_id,
                        expires_at,
                        reason,
                        risk: Some(risk),
                    }),
                    Learning::AfterMfa,
                ),
                CodeDecision::Refuse { reason, retry_at } => (
                    Event::LoginRejected(LoginRejected {
                        counted: counted.clone(),
                        user_id: Some(user_id),
                        reason,
                        // Relative to the decision's time, which the event is stamped with.
                        retry_after_secs: Some(seconds_until(retry_at, given.now)),
                        risk: Some(risk),
                    }),
                    Learning::Never,
                ),
            }
        }
        // `rules::decide` asks for a code only for a known account, which the claimant has
        // parsed; an unknown one that got here is refused like a wrong password.
        (Verdict::RequireMfa { .. }, Claimant::Unknown) => (
            Event::LoginRejected(LoginRejected {
                counted: counted.clone(),
                user_id: attempt.user_id,
                reason: shared::events::RejectionReason::InvalidCredentials,
                retry_after_secs: None,
                risk: Some(risk),
            }),
            Learning::Never,
        ),
        (Verdict::Reject(reason), _) => (
            Event::LoginRejected(LoginRejected {
                counted: counted.clone(),
                user_id: attempt.user_id,
                reason,
                retry_after_secs: None,
                risk: Some(risk),
            }),
            Learning::Never,
        ),
    };
    Ok(Decision {
        event,
        effects: Effects {
            learning,
            failure,
            issued_challenge,
        },
    })
}
