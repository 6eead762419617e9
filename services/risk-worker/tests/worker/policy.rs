//! A company's risk policy (`RiskPolicyChanged`) in the decision flow: the same events through
//! `risk-worker replay` (memory) and through the live worker's state over PostgreSQL give the
//! same decisions, each recording the policy version it was made under; trusted networks,
//! observe-only (approved, said so, not learned), challenge levels, and an older version
//! delivered late changing nothing.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use mfa_testkit::stack;
use risk_worker::geo::GeoIp;
use risk_worker::model::features::Features;
use risk_worker::replay::Replay;
use risk_worker::rules::Policy;
use risk_worker::state::{self, DecisionIds};
use risk_worker::store::RiskStore;
use serde_json::Value;
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, DeviceId, Platform, PrimaryFactor, UserAgent,
    UserId,
};
use shared::events::{
    ChallengeLevel, Cidr, CompanyRiskPolicy, Envelope, Event, LoginApproved, LoginAttempted,
    MfaSucceeded, RiskPolicyChanged, SCHEMA_VERSION,
};
use uuid::Uuid;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const HOME: &str = "81.2.69.142";
const OFFICE: &str = "203.0.113.40";
const CAFE: &str = "198.51.100.7";

fn acme() -> CompanyId {
    CompanyId::parse("acme").unwrap()
}

struct Log {
    events: Vec<Envelope>,
    at: DateTime<Utc>,
    n: u128,
}

impl Log {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            at: DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            n: 0,
        }
    }

    fn push(&mut self, producer: &str, attempt: Option<AttemptId>, event: Event) -> AttemptId {
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

    fn login(&mut self, user: UserId, ip: &str, device: &str) -> AttemptId {
        self.push(
            "login-intake",
            None,
            Event::LoginAttempted(LoginAttempted {
                user_id: Some(user),
                company_id: Some(acme()),
                auth_method: AuthMethod::Password,
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

    fn passes_mfa(&mut self, user: UserId, attempt: AttemptId) {
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

    fn policy(&mut self, version: u64, policy: CompanyRiskPolicy) {
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

/// A user known on her laptop at home, then the company's policies and her logins under
/// them. Returns the log and, per decision, what the test expects of it.
fn log_with_policies(with_policies: bool) -> Log {
    let alice = UserId::from_uuid(Uuid::from_u128(0xa11ce));
    let mut log = Log::new();
    let first = log.login(alice, HOME, "laptop");
    log.passes_mfa(alice, first);
    for _ in 0..4 {
        log.login(alice, HOME, "laptop");
    }
    if with_policies {
        log.policy(
            1,
            CompanyRiskPolicy {
                trusted_networks: Some(vec![Cidr::parse("203.0.113.0/24").unwrap()]),
                ..CompanyRiskPolicy::default()
            },
        );
    }
    // A new phone at the office: trusted, approved (and learned).
    log.login(alice, OFFICE, "phone");
    if with_policies {
        log.policy(
            2,
            CompanyRiskPolicy {
                observe_only: Some(true),
                ..CompanyRiskPolicy::default()
            },
        );
    }
    // A new tablet at a café, twice: observed both times (the first approval learned nothing).
    log.login(alice, CAFE, "tablet");
    log.login(alice, CAFE, "tablet");
    if with_policies {
        // Version 1 delivered late: changes nothing.
        log.policy(
            1,
            CompanyRiskPolicy {
                trusted_networks: Some(vec![Cidr::parse("198.51.100.0/24").unwrap()]),
                ..CompanyRiskPolicy::default()
            },
        );
        log.policy(
            3,
            CompanyRiskPolicy {
                challenge_levels: Some(vec![ChallengeLevel::High]),
                ..CompanyRiskPolicy::default()
            },
        );
    }
    // The tablet again: medium risk, which version 3 no longer challenges.
    log.login(alice, CAFE, "tablet");
    log
}

/// What a decision says, without its ids (replay derives its own).
fn gist(decision: &Value) -> Value {
    let payload = &decision["payload"];
    serde_json::json!({
        "attempt_id": decision["attempt_id"],
        "event_type": decision["event_type"],
        "risk": payload["risk"],
    })
}

fn replayed(log: &Log) -> Vec<Value> {
    let input: Vec<u8> = log
        .events
        .iter()
        .flat_map(|e| [e.to_json(), b"\n".to_vec()].concat())
        .collect();
    let mut output = Vec::new();
    Replay::new(Policy::default(), Arc::new(GeoIp::none()))
        .run(&input[..], &mut output)
        .unwrap();
    output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// The same events through the live worker's flow (`state::decide_login` and `state::apply`
/// over PostgreSQL, as `consumer::RiskHandler` runs them), each decided at its own time.
async fn live(log: &Log) -> Vec<Value> {
    let url = stack::create_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let pseudonyms = mfa_testkit::stack::data_protection().pseudonym_key;
    let store = RiskStore::new(pool, pseudonyms.clone());
    let geo = GeoIp::none();
    let policy = Policy::default();
    let mut decisions = Vec::new();
    for envelope in &log.events {
        let mut state = store.publishing("t.risk-decisions", "key");
        if let Event::LoginAttempted(attempt) = &envelope.event {
            let client = attempt.client.in_clear().unwrap();
            let decided = state::decide_login(
                &mut state,
                envelope,
                state::OpenedAttempt {
                    attempt,
                    client,
                    features: &Features::of(client, &geo),
                },
                &pseudonyms,
                envelope.occurred_at,
                DecisionIds {
                    event_id: Uuid::now_v7(),
                    challenge_id: ChallengeId::new_random(),
                },
                &policy,
            )
            .await
            .unwrap();
            decisions.push(serde_json::from_slice(&decided.to_json()).unwrap());
        } else {
            state::apply(&mut state, envelope, None).await.unwrap();
        }
    }
    decisions
}

#[tokio::test]
async fn a_policy_in_the_log_changes_the_next_decisions_alike_live_and_in_replay() {
    let log = log_with_policies(true);
    let replay = replayed(&log);
    let live = live(&log).await;
    let gists = |decisions: &[Value]| decisions.iter().map(gist).collect::<Vec<_>>();
    assert_eq!(gists(&replay), gists(&live));

    let kinds: Vec<&str> = replay
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    let versions: Vec<Option<u64>> = replay
        .iter()
        .map(|d| d["payload"]["risk"]["policy_version"].as_u64())
        .collect();
    let observed: Vec<bool> = replay
        .iter()
        .map(|d| d["payload"]["risk"].get("observed").is_some())
        .collect();
    assert_eq!(
        kinds,
        [
            "MfaRequired",
            "LoginApproved",
            "LoginApproved",
            "LoginApproved",
            "LoginApproved",
            // The office phone (trusted), the café tablet twice (observed), then version 3.
            "LoginApproved",
            "LoginApproved",
            "LoginApproved",
            "LoginApproved",
        ]
    );
    assert_eq!(
        versions,
        [
            None,
            None,
            None,
            None,
            None,
            Some(1),
            Some(2),
            Some(2),
            Some(3)
        ]
    );
    assert_eq!(
        observed,
        [false, false, false, false, false, false, true, true, false]
    );
    let tablet = &replay[6]["payload"]["risk"];
    assert_eq!(tablet["observed"]["would_have"], "mfa_required");
    assert!(tablet["reasons"]
        .as_array()
        .unwrap()
        .contains(&"new_device".into()));
    // Not learned from the observed approval: the tablet is still new the next time.
    assert!(replay[7]["payload"]["risk"]["reasons"]
        .as_array()
        .unwrap()
        .contains(&"new_device".into()));
    assert_eq!(replay[8]["payload"]["risk"]["level"], "medium");

    // Without the policies, the same logins ask for codes.
    let plain = replayed(&log_with_policies(false));
    let plain_kinds: Vec<&str> = plain
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(&plain_kinds[5..], ["MfaRequired"; 4]);
    assert!(plain
        .iter()
        .all(|d| d["payload"]["risk"].get("policy_version").is_none()));
}
