//! `risk-worker replay` against the live worker, on the same event log.

use std::collections::HashMap;
use std::time::Duration;

use risk_worker::geo::GeoIp;
use risk_worker::replay::Replay;
use serde_json::{json, Value};
use shared::events::Envelope;

use crate::support::kafka::events_of;
use crate::support::*;

/// The event log, as an auditor would replay it: what the risk worker consumed, in time order
/// (the live worker consumed each before the next login, as the tests await), replayed with
/// the live system's policy. The live decisions by attempt id, and the replayed ones.
async fn replay_the_log(
    system: &TestSystem,
    code_caps: CodeCaps,
) -> (HashMap<String, Value>, Vec<Value>) {
    let topics = system.kafka.topics();
    let mut input: Vec<Envelope> =
        events_of(system, &[&topics.login_attempts, &topics.verifications])
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
    input.sort_by_key(|e| (e.occurred_at, e.event_id));
    let live: HashMap<String, Value> = events_of(system, &[&topics.risk_decisions])
        .into_iter()
        .map(|v| (v["attempt_id"].as_str().unwrap().to_owned(), v))
        .collect();
    let lines: Vec<u8> = input
        .iter()
        .flat_map(|e| [e.to_json(), b"\n".to_vec()].concat())
        .collect();
    let mut output = Vec::new();
    let policy = risk_worker::rules::Policy {
        code_ttl: Options::default().code_ttl,
        code_caps,
        ..Default::default()
    };
    // The log's personal fields are sealed: replay opens them with the deployment's keys.
    let keys = PrefetchedKeys::of(system, &input).await;
    Replay::new(policy, std::sync::Arc::new(GeoIp::none()))
        .with_pseudonym_key(system.data_protection.pseudonym_key.clone())
        .with_data_keys(keys)
        .run(&lines[..], &mut output)
        .unwrap();
    let replayed = output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    (live, replayed)
}

/// Issue 3: `risk-worker replay` over the event log decides exactly as the live worker did:
/// the same decision type and the same risk (score, level, reasons, model version) for
/// every login, learning from the same approvals and MFA results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_worker_and_replay_decide_alike() {
    // No email throttling here, so every challenge is a new code (replay caps code emails
    // as the live worker does: given the same caps, it decides alike).
    let code_caps = CodeCaps {
        min_gap: Duration::ZERO,
        emails_per_hour: 1000,
        ..CodeCaps::default()
    };
    let system = spawn_system_with(Options {
        code_caps: code_caps.clone(),
        ..Options::default()
    })
    .await;
    let alice = unique_email("alice");
    let alice_id = system
        .create_user(&alice, Some(PASSWORD), "acme", false)
        .await;
    let bob = unique_email("bob");
    let bob_id = system
        .create_user(&bob, Some(PASSWORD), "acme", false)
        .await;
    let mut driver = LoginDriver::default();
    // (who, device, address, browser, passes the challenge if asked)
    let (a, b) = ((&alice, &alice_id), (&bob, &bob_id));
    let steps = [
        (a, Some("laptop"), HOME_IP, CHROME_WINDOWS, true),
        (b, Some("phone"), "192.0.2.10", SAFARI_IPHONE, true),
        (a, Some("laptop"), HOME_IP, CHROME_WINDOWS, true),
        (a, Some("tablet"), "203.0.113.5", FIREFOX_LINUX, true),
        (b, Some("phone"), "192.0.2.10", SAFARI_IPHONE, true),
        (a, None, "203.0.113.66", CHROME_WINDOWS, false),
        (a, Some("laptop"), "192.0.2.200", CHROME_WINDOWS, true),
    ];
    let mut statuses = Vec::new();
    for ((email, user), device, ip, user_agent, pass) in steps {
        let status = driver
            .step(&system, email, user, device, ip, user_agent, pass)
            .await;
        statuses.push(status);
    }
    // Wrong passwords from an attacker's address (a burst: 5 in 15 minutes), then its login
    // with the right one.
    for _ in 0..5 {
        let wrong = system
            .login(
                &alice,
                "not the password",
                None,
                "203.0.113.66",
                CHROME_WINDOWS,
            )
            .await;
        assert_eq!(wrong.body["status"], "rejected");
    }
    statuses.push(
        driver
            .step(
                &system,
                &alice,
                &alice_id,
                Some("x"),
                "203.0.113.66",
                CHROME_WINDOWS,
                false,
            )
            .await,
    );
    assert!(statuses.contains(&"approved".to_owned()), "{statuses:?}");
    assert!(
        statuses.contains(&"mfa_required".to_owned()),
        "{statuses:?}"
    );

    let (live, replayed) = replay_the_log(&system, code_caps).await;
    assert_eq!(replayed.len(), 5 + statuses.len());
    let last = &replayed[replayed.len() - 1]["payload"]["risk"];
    assert!(
        last["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("failed_attempts_burst")),
        "{last}"
    );
    assert_replayed_as_live(&live, &replayed, &["risk", "counted"]);
    for decision in &replayed {
        assert!(decision["payload"]["risk"]["score"].is_number());
    }
    // Nothing stuck in the outbox (the relay marks a row just after the broker took it).
    system
        .wait_for_count(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND $1::uuid IS NOT NULL",
            &alice_id,
            |stuck| stuck == 0,
        )
        .await;
}

/// Logs users in, passes the challenges of those meant to pass, and waits each time until
/// the risk worker learned what it should, so the next login is decided on that history.
#[derive(Default)]
struct LoginDriver {
    emails: std::collections::HashMap<String, usize>,
    learned: std::collections::HashMap<String, i64>,
}

impl LoginDriver {
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &mut self,
        system: &TestSystem,
        email: &str,
        user: &str,
        device: Option<&str>,
        ip: &str,
        user_agent: &str,
        pass: bool,
    ) -> String {
        let login = system.login(email, PASSWORD, device, ip, user_agent).await;
        let known = self.learned.entry(user.to_owned()).or_default();
        match login.body["status"].as_str().unwrap() {
            "mfa_required" => {
                let sent = self.emails.entry(email.to_owned()).or_default();
                *sent += 1;
                let code = system.mail.wait_for_code(email, *sent).await;
                if pass {
                    let challenge = login.body["challenge_id"].as_str().unwrap();
                    assert_eq!(system.verify(challenge, &code).await.status, 200);
                    *known += 1;
                }
            }
            "approved" => *known += 1,
            other => panic!("unexpected {other}: {}", login.body),
        }
        let expected = *known;
        system
            .wait_for_count(
                "SELECT count(*) FROM risk_login_history WHERE user_id = $1",
                user,
                |n| n == expected,
            )
            .await;
        login.body["status"].as_str().unwrap().to_owned()
    }
}

/// Issue 10: replay caps code emails as the live worker does. A login within the gap of a
/// pending code reuses its challenge (`CodeThrottled`); once that challenge is locked, one
/// within the gap gets a new code, as nothing can be reused (issue 11.2). Replay decides
/// both alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_worker_and_replay_throttle_alike() {
    let code_caps = CodeCaps {
        min_gap: Duration::from_secs(30),
        emails_per_hour: 1000,
        ..CodeCaps::default()
    };
    let system = spawn_system_with(Options {
        code_caps: code_caps.clone(),
        ..Options::default()
    })
    .await;
    let carol = unique_email("carol");
    let carol_id = system
        .create_user(&carol, Some(PASSWORD), "acme", false)
        .await;
    let log_in = || system.login(&carol, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS);
    let first = log_in().await;
    assert_eq!(first.body["status"], "mfa_required", "{}", first.body);
    let code = system.mail.wait_for_code(&carol, 1).await;
    let again = log_in().await;
    assert_eq!(again.body["status"], "mfa_required", "{}", again.body);
    assert_eq!(again.body["code_recently_sent"], true);
    assert_eq!(again.body["challenge_id"], first.body["challenge_id"]);
    // Five wrong codes lock the challenge; the next login waits until the risk worker has
    // seen it closed (the replayed log holds the MfaFailed before that login too).
    let challenge = first.body["challenge_id"].as_str().unwrap();
    for _ in 0..5 {
        system.verify(challenge, wrong_code(&code)).await;
    }
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_challenges WHERE user_id = $1 AND closed_at IS NOT NULL",
            &carol_id,
            |closed| closed == 1,
        )
        .await;
    let renewed = log_in().await;
    assert_eq!(renewed.body["status"], "mfa_required", "{}", renewed.body);
    assert_eq!(renewed.body["code_recently_sent"], false);
    assert_ne!(renewed.body["challenge_id"], first.body["challenge_id"]);

    let (live, replayed) = replay_the_log(&system, code_caps).await;
    let kinds: Vec<&str> = replayed
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["MfaRequired", "CodeThrottled", "MfaRequired"]);
    // Replay's challenge ids are its own (derived from the input's): the throttled login
    // names replay's first challenge, as the live one named the live one, and the login
    // after the lock a new one.
    assert_eq!(
        replayed[1]["payload"]["challenge_id"],
        replayed[0]["payload"]["challenge_id"]
    );
    assert_ne!(
        replayed[2]["payload"]["challenge_id"],
        replayed[0]["payload"]["challenge_id"]
    );
    assert_replayed_as_live(&live, &replayed, &["reason", "risk", "counted"]);
}
