//! A "wasn't me" for an attacker on the user's own network (the exact home address, a
//! device of its own): the risk evaluation found such reports marking the victim's home for
//! good, so that every later login of theirs from it asked for a code (issue 17,
//! BENCHMARKS.md "What a 'wasn't me' buys"). A code the user passes from the reported network
//! now clears the network's mark, never the reported device's: the same events through
//! replay (memory) and through the live worker's state over PostgreSQL decide alike.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use shared::domain::UserId;
use shared::events::FeedbackVerdict;
use uuid::Uuid;

use crate::log::Log;
use crate::policy::{live, replayed};

const HOME: &str = "81.2.69.142";

fn alice() -> UserId {
    UserId::from_uuid(Uuid::from_u128(0xa11ce))
}

fn log() -> Log {
    let alice = alice();
    let mut log = Log::new();
    let first = log.login(alice, HOME, "laptop");
    log.passes_mfa(alice, first);
    log.login(alice, HOME, "laptop");
    // Someone at her home with her password and her browser, on a device id of their own;
    // it is reported.
    let attacker = log.login(alice, HOME, "attacker");
    log.feedback(alice, attacker, FeedbackVerdict::WasntMe, HOME, "attacker");
    // Her next login from home asks for a code (the network is reported); she passes it.
    let after = log.login(alice, HOME, "laptop");
    log.passes_mfa(alice, after);
    log.login(alice, HOME, "laptop");
    log.login(alice, HOME, "laptop");
    // The attacker again, from the same home: the device is still reported.
    log.login(alice, HOME, "attacker");
    log
}

fn outcome(decision: &Value) -> (String, bool, bool) {
    let reasons = decision["payload"]["risk"]["reasons"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (
        decision["event_type"].as_str().unwrap().to_owned(),
        reasons.contains(&"reported_network".into()),
        reasons.contains(&"reported_device".into()),
    )
}

#[tokio::test]
async fn a_code_passed_from_a_reported_network_clears_the_network_not_the_device_alike_live_and_in_replay(
) {
    let log = log();
    let replay: Vec<_> = replayed(&log).iter().map(outcome).collect();
    let live: Vec<_> = live(&log).await.iter().map(outcome).collect();
    assert_eq!(replay, live);
    let kinds: Vec<&str> = replay.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "MfaRequired",
            "LoginApproved",
            // A new device id in her browser at her own address looks like her private
            // window: approved, then reported (a client backend's or an admin's call).
            "LoginApproved",
            // After the report: her own laptop at home, the network reported.
            "MfaRequired",
            // She passed that code: home is hers again.
            "LoginApproved",
            "LoginApproved",
            // The reported device is not.
            "MfaRequired",
        ]
    );
    assert!(replay[3].1, "the report marked her home: {:?}", replay[3]);
    assert!(!replay[4].1 && !replay[5].1, "{replay:?}");
    let attacker_again = &replay[6];
    assert!(attacker_again.2, "{attacker_again:?}");
    assert!(!attacker_again.1, "{attacker_again:?}");
}
