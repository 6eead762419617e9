//! The event log itself: documented types, valid against their schemas, no secrets.

use std::collections::HashSet;

use serde_json::Value;

use crate::support::kafka::{all_events, wait_for_message};
use crate::support::secrets::digit_runs;
use crate::support::*;

/// 10. The event topics hold only documented event types, each valid against its committed
/// JSON Schema, and no code or password anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_is_schema_valid_and_holds_no_secrets() {
    let system = spawn_system().await;
    let email = unique_email("audit");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    let code = system.mail.wait_for_code(&email, 1).await;
    let wrong = wrong_code(&code);
    system.verify(&challenge, wrong).await;
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    system
        .login(
            &email,
            "a wrong password",
            Some("d1"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    let second = system
        .login(&email, PASSWORD, Some("d2"), "203.0.113.5", FIREFOX_LINUX)
        .await;
    let second_code = system.mail.wait_for_code(&email, 2).await;
    let topics = system.kafka.topics();
    let second_challenge = second.body["challenge_id"].as_str().unwrap().to_owned();
    wait_for_message(&system.kafka, &topics.challenges, |v| {
        v["payload"]["challenge_id"] == second_challenge.as_str()
    })
    .await;

    let schemas_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let events = all_events(&system);
    assert!(events.len() >= 10, "{} events", events.len());
    let mut seen = HashSet::new();
    for event in &events {
        let event_type = event["event_type"]
            .as_str()
            .expect("every event has a type");
        seen.insert(event_type.to_owned());
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(schemas_dir.join(format!("{event_type}.schema.json")))
                .unwrap_or_else(|_| panic!("{event_type} is not a documented event type")),
        )
        .unwrap();
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        let errors: Vec<String> = validator
            .iter_errors(event)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{event_type} does not match its schema: {errors:?}\n{event}"
        );

        let text = event.to_string();
        for secret in [PASSWORD, "a wrong password"] {
            assert!(!text.contains(secret), "a password in {text}");
        }
        for code in [&code, &second_code, &wrong.to_owned()] {
            assert!(!digit_runs(event).contains(code), "a code in {text}");
        }
    }
    for expected in [
        "LoginAttempted",
        "MfaRequired",
        "CodeSent",
        "MfaFailed",
        "MfaSucceeded",
        "LoginApproved",
        "LoginRejected",
    ] {
        assert!(seen.contains(expected), "{expected} missing from {seen:?}");
    }
}
