//! An event log built login by login, and one event at a time through the decision flow:
//! for the modules that compare the live worker's state over PostgreSQL with replay's memory.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use risk_worker::geo::GeoIp;
use risk_worker::model::features::Features;
use risk_worker::rules::Policy;
use risk_worker::state::{self, DecisionIds, RiskState};
use serde_json::Value;
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, DeviceId, Platform, PrimaryFactor, UserAgent,
    UserId,
};
use shared::events::{
    AccountChange, AccountChanged, CompanyRiskPolicy, Envelope, Event, FeedbackSource,
    FeedbackVerdict, LoginApproved, LoginAttempted, LoginFeedback, MfaSucceeded, ReportedClient,
    RiskPolicyChanged, SCHEMA_VERSION,
};
use shared::personal::PseudonymKey;
use uuid::Uuid;

pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

pub fn acme() -> CompanyId {
    CompanyId::parse("acme").unwrap()
}

pub struct Log {
    pub events: Vec<Envelope>,
    /// The time of the newest event: each one is half an hour after the one before.
    pub at: DateTime<Utc>,
    n: u128,
}

impl Log {
    pub fn new() -> Self {
        Self {
            events: Vec::new(),
            at: DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            n: 0,
        }
    }

    /// The next event comes `gap` (and half an hour) later.
    pub fn wait(&mut self, gap: Duration) {
        self.at += gap;
    }

    pub fn push(&mut self, producer: &str, attempt: Option<AttemptId>, event: Event) -> AttemptId {
        self.n += 1;
        self.at += Duration::minutes(30);
        let attempt =
            attempt.unwrap_or_else(|| AttemptId::from_uuid(Uuid::from_u128(1000 + self.n)));
        self.events.push(Envelope {
            event_id: Uuid::from_u128(self.n),
            schema_version: SCHEMA_VERSION,
            occurred_at: self.at,
            attempt_id: attempt,
            causation_id: None,
            producer: producer.into(),
            event,
        });
        attempt
    }

    pub fn login(&mut self, user: UserId, ip: &str, device: &str) -> AttemptId {
        self.login_with(user, ip, device, AuthMethod::Password)
    }

    /// A login whose first factor (`auth_method`) succeeded.
    pub fn login_with(
        &mut self,
        user: UserId,
        ip: &str,
        device: &str,
        auth_method: AuthMethod,
    ) -> AttemptId {
        self.push(
            "login-intake",
            None,
            Event::LoginAttempted(LoginAttempted {
                user_id: Some(user),
                company_id: Some(acme()),
                auth_method,
                primary_factor: PrimaryFactor::Succeeded,
                privileged: false,
                platform: Platform::Dashboard,
                client: shared::personal::Personal::Clear(shared::events::LoginClient {
                    ip: ip.parse().unwrap(),
                    user_agent: UserAgent::parse(CHROME).unwrap(),
                    device_id: Some(DeviceId::parse(device).unwrap()),
                }),
                locale: shared::domain::Locale::En,
            }),
        )
    }

    pub fn passes_mfa(&mut self, user: UserId, attempt: AttemptId) {
        let challenge_id = ChallengeId::from_uuid(Uuid::from_u128(7_000 + self.n));
        self.push(
            "verifier",
            Some(attempt),
            Event::MfaSucceeded(MfaSucceeded {
                user_id: user,
                challenge_id,
            }),
        );
        self.push(
            "verifier",
            Some(attempt),
            Event::LoginApproved(LoginApproved {
                counted: None,
                user_id: user,
                approved_after_mfa: true,
                challenge_id: Some(challenge_id),
                risk: None,
            }),
        );
    }

    /// The user's word on the login `attempt` (from `ip` and `device`), given by an admin.
    pub fn feedback(
        &mut self,
        user: UserId,
        attempt: AttemptId,
        verdict: FeedbackVerdict,
        ip: &str,
        device: &str,
    ) {
        self.push(
            "login-intake",
            Some(attempt),
            Event::LoginFeedback(LoginFeedback {
                user_id: user,
                company_id: acme(),
                verdict,
                source: FeedbackSource::Admin,
                reported: shared::personal::Personal::Clear(ReportedClient {
                    ip: Some(ip.parse().unwrap()),
                    device_id: Some(DeviceId::parse(device).unwrap()),
                }),
            }),
        );
    }

    /// An admin changed the account.
    pub fn account_changed(&mut self, user: UserId, change: AccountChange) {
        self.push(
            "login-intake",
            None,
            Event::AccountChanged(AccountChanged {
                user_id: user,
                change,
            }),
        );
    }

    pub fn policy(&mut self, version: u64, policy: CompanyRiskPolicy) {
        self.push(
            "login-intake",
            None,
            Event::RiskPolicyChanged(RiskPolicyChanged {
                company_id: acme(),
                version,
                policy,
            }),
        );
    }
}

/// One event through the flow `consumer::RiskHandler` runs (`state::decide_login` for a
/// login, `state::apply` for the rest), decided at its own time, with no GeoIP data and the
/// default policy. Returns the decision of a login.
pub async fn decide<S: RiskState>(
    state: &mut S,
    envelope: &Envelope,
    pseudonyms: &PseudonymKey,
) -> Option<Value> {
    let Event::LoginAttempted(attempt) = &envelope.event else {
        // A feedback's reported client: in the clear in these logs, as replay opens it.
        let reported = match &envelope.event {
            Event::LoginFeedback(feedback) => feedback.reported.in_clear(),
            _ => None,
        };
        state::apply(state, envelope, reported).await.unwrap();
        return None;
    };
    let client = attempt.client.in_clear().unwrap();
    let decided = state::decide_login(
        state,
        envelope,
        state::OpenedAttempt {
            attempt,
            client,
            features: &Features::of(client, &GeoIp::none()),
        },
        pseudonyms,
        envelope.occurred_at,
        DecisionIds {
            event_id: Uuid::now_v7(),
            challenge_id: ChallengeId::new_random(),
        },
        &Policy::default(),
    )
    .await
    .unwrap();
    Some(serde_json::from_slice(&decided.to_json()).unwrap())
}
