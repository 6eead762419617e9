//! A redelivered event and a retried request repeat nothing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::kafka::{produce, read_topic, wait_for_message};
use crate::support::*;

/// 9. A redelivered MfaRequired sends one email, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_mfa_required_sends_one_email() {
    let system = spawn_system().await;
    let email = unique_email("redelivery");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge_id = login.body["challenge_id"].as_str().unwrap().to_owned();
    system.mail.wait_for_emails(&email, 1).await;
    let topics = system.kafka.topics();
    let code_sent = |v: &Value| {
        v["event_type"] == "CodeSent" && v["payload"]["challenge_id"] == challenge_id.as_str()
    };
    wait_for_message(&system.kafka, &topics.challenges, code_sent).await;
    let code_worker_metrics = system
        .metrics_urls()
        .into_iter()
        .find(|(service, _)| *service == "code-worker")
        .map(|(_, url)| url)
        .unwrap();
    let decisions_handled = || async {
        metrics::Scrape::of(&system.http, &code_worker_metrics)
            .await
            .sum(
                "mfa_consumer_messages_total",
                &[
                    ("topic", topics.risk_decisions.as_str()),
                    ("outcome", "handled"),
                ],
            )
    };
    let handled_before = decisions_handled().await;

    let required = read_topic(&system.kafka, &topics.risk_decisions)
        .into_iter()
        .find(|(_, v)| {
            v["event_type"] == "MfaRequired"
                && v["payload"]["challenge_id"] == challenge_id.as_str()
        })
        .expect("the MfaRequired is on the topic");
    produce(
        &system.kafka,
        &topics.risk_decisions,
        &user_id,
        required.1.to_string().as_bytes(),
    )
    .await;

    // The code worker answers the duplicate by writing the recorded CodeSent into its outbox
    // again: the same event, still there, so nothing new is published.
    for _ in 0..100 {
        if decisions_handled().await > handled_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        decisions_handled().await,
        handled_before + 1.0,
        "the duplicate was handled"
    );
    // Past the relay's next pass.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent: Vec<Value> = read_topic(&system.kafka, &topics.challenges)
        .into_iter()
        .map(|(_, v)| v)
        .filter(code_sent)
        .collect();
    assert_eq!(sent.len(), 1, "the CodeSent, once: {sent:?}");
    assert_eq!(
        system.mail.emails_to(&email).await.len(),
        1,
        "one email, not two"
    );
}

/// A retry with the same Idempotency-Key gets the first answer again and repeats nothing: no
/// second attempt or email for a login, no extra try for a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_an_idempotency_key_repeat_nothing() {
    let system = spawn_system().await;
    let email = unique_email("retry");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let body = json!({ "email": email, "password": PASSWORD, "platform": "ios",
                       "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE, "device_id": "phone" } });
    let send = |url: String, key: &'static str, body: Value| {
        system
            .http
            .post(url)
            .bearer_auth(&system.api_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let login_url = format!("{}/v1/logins", system.intake_url);

    let first = send(login_url.clone(), "login-1", body.clone())
        .await
        .unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = send(login_url.clone(), "login-1", body.clone())
        .await
        .unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first, "the same answer, the same attempt");
    let attempts = read_topic(&system.kafka, &system.kafka.topics().login_attempts).len();
    assert_eq!(attempts, 1, "one LoginAttempted for two requests");

    let mut other = body.clone();
    other["platform"] = "android".into();
    let reused = send(login_url, "login-1", other).await.unwrap();
    assert_eq!(reused.status(), 422);
    let reused: Value = reused.json().await.unwrap();
    assert_eq!(reused["error"], "idempotency_key_reused");

    // A wrong code retried with its key spends one try, not two.
    let challenge = first["challenge_id"].as_str().unwrap();
    let code = system.mail.wait_for_code(&email, 1).await;
    let wrong = wrong_code(&code);
    let verify_url = format!("{}/v1/challenges/{challenge}/verify", system.verifier_url);
    for _ in 0..2 {
        let answer: Value = send(verify_url.clone(), "verify-1", json!({ "code": wrong }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["attempts_remaining"], 4, "{answer}");
    }
    let next: Value = send(verify_url.clone(), "verify-2", json!({ "code": wrong }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        next["attempts_remaining"], 3,
        "a new key is a new try: {next}"
    );
    for _ in 0..2 {
        let approved = send(verify_url.clone(), "verify-3", json!({ "code": code }))
            .await
            .unwrap();
        assert_eq!(
            approved.status(),
            200,
            "a retried success is replayed, not already_used"
        );
    }
    assert_eq!(system.mail.emails_to(&email).await.len(), 1);
}
