//! `risk-worker replay` against the live worker, on the same event log.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::kafka::events_of;
use crate::support::*;

/// Issue 3: `risk-worker replay` over the event log decides exactly as the live worker did:
/// the same decision type and the same risk (score, level, reasons, model version) for
/// every login, learning from the same approvals and MFA results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_worker_and_replay_decide_alike() {
    use risk_worker::geo::GeoIp;
    use risk_worker::replay::Replay;
    use shared::events::Envelope;

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

    // The event log, as an auditor would replay it: what the risk worker consumed, in time
    // order (the live worker consumed each before the next login, as awaited above).
    let topics = system.kafka.topics();
    let mut input: Vec<Envelope> =
        events_of(&system, &[&topics.login_attempts, &topics.verifications])
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
    input.sort_by_key(|e| (e.occurred_at, e.event_id));
    let live: std::collections::HashMap<String, Value> =
        events_of(&system, &[&topics.risk_decisions])
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
    Replay::new(policy, std::sync::Arc::new(GeoIp::none()))
        .run(&lines[..], &mut output)
        .unwrap();
    let replayed: Vec<Value> = output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(replayed.len(), 5 + statuses.len());
    let last = &replayed[replayed.len() - 1]["payload"]["risk"];
    assert!(
        last["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("failed_attempts_burst")),
        "{last}"
    );
    for decision in &replayed {
        let attempt = decision["attempt_id"].as_str().unwrap();
        let live = &live[attempt];
        assert_eq!(live["event_type"], decision["event_type"], "{attempt}");
        assert_eq!(
            live["payload"]["risk"], decision["payload"]["risk"],
            "{attempt}"
        );
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
