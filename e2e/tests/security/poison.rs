//! Malformed and unknown messages on the internal topics.

use std::time::Duration;

use crate::capture_logs;
use crate::support;
use crate::support::kafka::read_topic;
use crate::support::*;

/// A malformed or unknown message on an internal topic neither crashes nor stalls the
/// consumer: the malformed one is dead-lettered with the reason, and logins keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_dead_lettered_and_consumers_move_on() {
    capture_logs();
    let system = spawn_system().await;
    let topics = system.kafka.topics();
    let garbage: [&[u8]; 3] = [
        b"not json at all",
        br#"{"event_type":"LoginAttempted","payload":{"user_id":42}}"#,
        br#"{"event_id":"0190f0c4-1111-7000-8000-000000000001","event_type":"FromTheFuture","schema_version":9}"#,
    ];
    for (i, payload) in garbage.iter().enumerate() {
        support::kafka::produce(
            &system.kafka,
            &topics.login_attempts,
            &format!("k{i}"),
            payload,
        )
        .await;
        support::kafka::produce(
            &system.kafka,
            &topics.risk_decisions,
            &format!("k{i}"),
            payload,
        )
        .await;
    }
    // The flow still works end to end.
    let email = unique_email("after-garbage");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
    system.mail.wait_for_code(&email, 1).await;

    // Two malformed messages per topic, each read by its consumers; the unknown type is skipped.
    for _ in 0..100 {
        let dead = read_topic(&system.kafka, &topics.dead_letters);
        let from_attempts = dead
            .iter()
            .filter(|(_, d)| d["source_topic"] == topics.login_attempts.as_str())
            .count();
        let from_decisions = dead
            .iter()
            .filter(|(_, d)| d["source_topic"] == topics.risk_decisions.as_str())
            .count();
        if from_attempts >= 2 && from_decisions >= 2 {
            assert!(dead
                .iter()
                .all(|(_, d)| d["reason"].as_str().unwrap().contains("malformed event")));
            assert!(!dead
                .iter()
                .any(|(_, d)| d["reason"].as_str().unwrap().contains("FromTheFuture")));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the malformed events were not dead-lettered");
}
