//! "Wasn't me" under a company policy that then requires a new password
//! (`password_change_on_takeover_report`): the same events through `risk-worker replay`
//! (memory) and through the live worker's state over PostgreSQL give the same decisions. With
//! the switch on, the reporting user's password logins are refused `password_change_required`
//! (from their own known laptop at home too, and the attacker's), an SSO login is not, and a
//! new password (or the account's deletion) ends it; with it off, the report only makes that
//! network and device high risk.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mfa_testkit::stack;
use risk_worker::store::RiskStore;
use serde_json::Value;
use shared::domain::{AuthMethod, UserId};
use shared::events::{AccountChange, CompanyRiskPolicy, Event, FeedbackVerdict};
use uuid::Uuid;

use crate::log::{decide, Log};
use crate::policy::replayed;

const HOME: &str = "81.2.69.142";
const CAFE: &str = "198.51.100.7";

fn alice() -> UserId {
    UserId::from_uuid(Uuid::from_u128(0xa11ce))
}

fn bob() -> UserId {
    UserId::from_uuid(Uuid::from_u128(0xb0b))
}

/// Alice known on her laptop at home, the company's policy (the switch `on` or off), an
/// attacker with her password reported by an admin, her logins until and after her password
/// is changed; then Bob reported (his own first login, as it happens) and deleted.
fn log(on: bool) -> Log {
    let (alice, bob) = (alice(), bob());
    let mut log = Log::new();
    let first = log.login(alice, HOME, "laptop");
    log.passes_mfa(alice, first);
    for _ in 0..3 {
        log.login(alice, HOME, "laptop");
    }
    log.policy(
        1,
        CompanyRiskPolicy {
            password_change_on_takeover_report: Some(on),
            ..CompanyRiskPolicy::default()
        },
    );
    let attacker = log.login(alice, CAFE, "attacker");
    log.feedback(alice, attacker, FeedbackVerdict::WasntMe, CAFE, "attacker");
    log.login(alice, HOME, "laptop");
    log.login(alice, CAFE, "attacker");
    log.login_with(alice, HOME, "laptop", AuthMethod::Sso);
    log.account_changed(alice, AccountChange::PasswordChanged);
    log.login(alice, HOME, "laptop");
    let bobs = log.login(bob, HOME, "phone");
    log.feedback(bob, bobs, FeedbackVerdict::WasntMe, HOME, "phone");
    log.login(bob, HOME, "phone");
    log.account_changed(bob, AccountChange::Deleted);
    log.login(bob, HOME, "phone");
    log
}

/// What a decision says, without its ids (replay derives its own): its kind, its rejection's
/// reason and its risk.
fn gist(decision: &Value) -> Value {
    let payload = &decision["payload"];
    serde_json::json!({
        "attempt_id": decision["attempt_id"],
        "event_type": decision["event_type"],
        "reason": payload["reason"],
        "risk": payload["risk"],
    })
}

fn outcomes(decisions: &[Value]) -> Vec<String> {
    decisions
        .iter()
        .map(|d| match d["payload"]["reason"].as_str() {
            Some(reason) => format!("{} {reason}", d["event_type"].as_str().unwrap()),
            None => d["event_type"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// The log through the live worker's flow over PostgreSQL; `on`: whether its switch is. Checks
/// that Alice is marked right after her report exactly when it is, and returns the decisions
/// and the users still marked at the end.
async fn live(log: &Log, on: bool) -> (Vec<Value>, Vec<Uuid>) {
    let url = stack::create_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let pseudonyms = stack::data_protection().pseudonym_key;
    let store = RiskStore::new(pool.clone(), pseudonyms.clone());
    let mut decisions = Vec::new();
    let mut first_report = true;
    for envelope in &log.events {
        let mut state = store.publishing("t.risk-decisions", "key");
        decisions.extend(decide(&mut state, envelope, &pseudonyms).await);
        if first_report && matches!(envelope.event, Event::LoginFeedback(_)) {
            first_report = false;
            assert_eq!(
                store.password_change_required(alice()).await.unwrap(),
                on,
                "the report marks Alice exactly under the switch"
            );
        }
    }
    let marked: Vec<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM risk_password_change_required ORDER BY user_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    (decisions, marked)
}

#[tokio::test]
async fn wasnt_me_under_the_switch_refuses_password_logins_until_the_password_changes_alike_live_and_in_replay(
) {
    for on in [true, false] {
        let log = log(on);
        let replay = replayed(&log);
        let (live, marked) = live(&log, on).await;
        let gists = |decisions: &[Value]| decisions.iter().map(gist).collect::<Vec<_>>();
        assert_eq!(gists(&replay), gists(&live), "switch on: {on}");
        // Alice's mark went with her new password, Bob's with his account.
        assert_eq!(marked, Vec::<Uuid>::new(), "switch on: {on}");

        let expected: &[&str] = if on {
            &[
                "MfaRequired",
                "LoginApproved",
                "LoginApproved",
                "LoginApproved",
                // The attacker, whom Alice's admin then reports.
                "MfaRequired",
                // Her own laptop at home, with the right password: refused.
                "LoginRejected password_change_required",
                "LoginRejected password_change_required",
                // SSO did not use the password.
                "LoginApproved",
                // The password changed.
                "LoginApproved",
                "MfaRequired",
                "LoginRejected password_change_required",
                // Bob deleted: a new account's first login.
                "MfaRequired",
            ]
        } else {
            &[
                "MfaRequired",
                "LoginApproved",
                "LoginApproved",
                "LoginApproved",
                "MfaRequired",
                // No mark: home is known; the reported network and device ask for a code.
                "LoginApproved",
                "MfaRequired",
                "LoginApproved",
                "LoginApproved",
                "MfaRequired",
                "MfaRequired",
                "MfaRequired",
            ]
        };
        assert_eq!(outcomes(&replay), expected, "switch on: {on}");
        if on {
            // The refusal still records the assessment: a known laptop at home is low risk.
            assert_eq!(replay[5]["payload"]["risk"]["level"], "low");
            assert_eq!(replay[5]["payload"]["risk"]["policy_version"], 1);
            assert!(replay[5]["payload"].get("retry_after_secs").is_none());
        } else {
            let reasons = &replay[6]["payload"]["risk"]["reasons"];
            assert!(
                reasons
                    .as_array()
                    .unwrap()
                    .contains(&"reported_network".into()),
                "{reasons}"
            );
        }
    }
}
