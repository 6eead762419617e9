//! A company's risk policy (`RiskPolicyChanged`) in the decision flow: the same events through
//! `risk-worker replay` (memory) and through the live worker's state over PostgreSQL give the
//! same decisions, each recording the policy version it was made under; trusted networks,
//! observe-only (approved, said so, not learned), challenge levels, and an older version
//! delivered late changing nothing.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mfa_testkit::stack;
use risk_worker::geo::GeoIp;
use risk_worker::replay::Replay;
use risk_worker::rules::Policy;
use risk_worker::store::RiskStore;
use serde_json::Value;
use shared::domain::UserId;
use shared::events::{ChallengeLevel, Cidr, CompanyRiskPolicy};
use uuid::Uuid;

use crate::log::{decide, Log};

const HOME: &str = "81.2.69.142";
const OFFICE: &str = "203.0.113.40";
const CAFE: &str = "198.51.100.7";

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
pub fn gist(decision: &Value) -> Value {
    let payload = &decision["payload"];
    serde_json::json!({
        "attempt_id": decision["attempt_id"],
        "event_type": decision["event_type"],
        "risk": payload["risk"],
    })
}

pub fn replayed(log: &Log) -> Vec<Value> {
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

/// The same events through the live worker's flow over PostgreSQL, each decided at its own
/// time.
pub async fn live(log: &Log) -> Vec<Value> {
    let url = stack::create_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let pseudonyms = mfa_testkit::stack::data_protection().pseudonym_key;
    let store = RiskStore::new(pool, pseudonyms.clone());
    let mut decisions = Vec::new();
    for envelope in &log.events {
        let mut state = store.publishing("t.risk-decisions", "key");
        decisions.extend(decide(&mut state, envelope, &pseudonyms).await);
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
