//! Issue 5: graceful shutdown, a hanging or missing database, an SMTP outage, and the
//! transactional outbox while the broker can't take events.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support;
use crate::support::kafka::{read_topic, wait_for_message};
use crate::support::*;

/// Issue 5, graceful shutdown: on the shutdown signal (what SIGTERM fires, see
/// `mfa_runtime::shutdown`) the request in flight still gets its answer, every service stops
/// within 10 s without error, and no new request is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_request_in_flight_and_stops_within_ten_seconds() {
    let system = spawn_system().await;
    let email = unique_email("shutdown");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let request = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&system.api_key)
        .json(
            &json!({ "email": email, "password": PASSWORD, "platform": "dashboard",
                       "context": { "ip": HOME_IP, "user_agent": CHROME_WINDOWS } }),
        );
    let in_flight = tokio::spawn(request.send());
    // The login is accepted (recorded) before the signal comes.
    system
        .wait_for_count(
            "SELECT count(*) FROM login_attempts WHERE user_id = $1",
            &user_id,
            |n| n == 1,
        )
        .await;
    let (intake_url, http) = (system.intake_url.clone(), system.http.clone());
    let stopped = system.shut_down().await;

    let answer = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert!(
        [200, 202].contains(&answer.status().as_u16()),
        "{}",
        answer.status()
    );
    for (service, outcome) in stopped {
        let (took, clean) = outcome.unwrap_or_else(|| panic!("{service} still runs after 15 s"));
        println!("{service} stopped {took:?} after the signal");
        assert!(took < Duration::from_secs(10), "{service} took {took:?}");
        assert!(clean, "{service} ended with an error");
    }
    assert!(
        http.get(format!("{intake_url}/healthz"))
            .send()
            .await
            .is_err(),
        "no new connection is taken after shutdown"
    );
}

/// Issue 5: with the database hanging or gone, login-intake answers 503 with a clear error
/// within 2 s and never hangs, its readiness says so, and it recovers by itself when the
/// database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_or_missing_database_gets_a_quick_503_and_the_service_recovers() {
    use std::time::Instant;
    use support::proxy::Mode;

    let system = spawn_system().await;
    let (email, _) = system
        .enrolled_user("laptop-1", HOME_IP, CHROME_WINDOWS)
        .await;
    let readyz = format!("{}/readyz", system.intake_url);
    for outage in [Mode::Hang, Mode::Refuse] {
        system.database_proxy.set(outage);
        let started = Instant::now();
        let login = system
            .login(&email, PASSWORD, Some("laptop-1"), HOME_IP, CHROME_WINDOWS)
            .await;
        let took = started.elapsed();
        assert_eq!(login.status, 503, "{outage:?}: {}", login.body);
        assert!(
            ["dependency_timeout", "service_unavailable"]
                .contains(&login.body["error"].as_str().unwrap_or_default()),
            "{outage:?}: {}",
            login.body
        );
        assert!(
            took < Duration::from_secs(2),
            "{outage:?}: answered after {took:?}"
        );

        let started = Instant::now();
        let ready = system.http.get(&readyz).send().await.unwrap();
        assert_eq!(ready.status(), 503, "{outage:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{outage:?}");

        system.database_proxy.set(Mode::Forward);
        let started = Instant::now();
        loop {
            let login = system
                .login(&email, PASSWORD, Some("laptop-1"), HOME_IP, CHROME_WINDOWS)
                .await;
            if login.status == 200 && login.body["status"] == "approved" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{outage:?}: not recovered: {} {}",
                login.status,
                login.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(system.http.get(&readyz).send().await.unwrap().status(), 200);
    }
}

/// Issue 5, SMTP outage: while the server is unreachable the code email waits and is retried
/// with back-off (the consumer is not held up: other logins still get their decisions); once
/// it is back the email goes out once, with `CodeSent`. An email that can't go out within the
/// retry window ends in `CodeDeliveryFailed`, and nothing is sent later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_the_email_and_a_long_one_ends_in_code_delivery_failed() {
    use support::proxy::Mode;

    let system = spawn_system_with(Options {
        email_retry: code_worker::sender::RetryPolicy {
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(500),
            retry_window: Duration::from_secs(4),
        },
        ..Options::default()
    })
    .await;
    let topics = system.kafka.topics();
    let outcome_of = |challenge: &str| {
        read_topic(&system.kafka, &topics.challenges)
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| v["payload"]["challenge_id"] == challenge)
            .map(|v| v["event_type"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // A short outage: the email arrives after it, once.
    system.smtp_proxy.set(Mode::Refuse);
    let email = unique_email("smtp-short");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(system.mail.emails_to(&email).await.is_empty());
    assert!(
        outcome_of(&challenge).is_empty(),
        "no outcome while retrying"
    );
    // Meanwhile the consumer is free: another user's login is decided.
    let other = unique_email("smtp-other");
    system
        .create_user(&other, Some(PASSWORD), "acme", false)
        .await;
    let other_login = system
        .login(&other, PASSWORD, Some("d9"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(other_login.body["status"], "mfa_required");
    system.smtp_proxy.set(Mode::Forward);
    let code = system.mail.wait_for_code(&email, 1).await;
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    wait_for_message(&system.kafka, &topics.challenges, |v| {
        v["event_type"] == "CodeSent" && v["payload"]["challenge_id"] == challenge.as_str()
    })
    .await;

    // A long outage: past the retry window, CodeDeliveryFailed, and no late email.
    system.smtp_proxy.set(Mode::Refuse);
    let email = unique_email("smtp-long");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    let failed = wait_for_message(&system.kafka, &topics.challenges, |v| {
        v["event_type"] == "CodeDeliveryFailed"
            && v["payload"]["challenge_id"] == challenge.as_str()
    })
    .await;
    assert!(
        failed["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("tries"),
        "{failed}"
    );
    system.smtp_proxy.set(Mode::Forward);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        system.mail.emails_to(&email).await.is_empty(),
        "nothing sent after giving up"
    );
    assert_eq!(outcome_of(&challenge), ["CodeDeliveryFailed"]);
    // The attempt ends with it, instead of waiting for a code that never comes (issue 11.3).
    let settled = system
        .get_login(login.body["attempt_id"].as_str().unwrap())
        .await;
    assert_eq!(settled.body["status"], "rejected", "{}", settled.body);
    assert_eq!(settled.body["reason"], "code_delivery_failed");
}

/// Issue 5, transactional outbox: an event enqueued with a change leaves only if the change
/// commits; while the broker can't take it, it waits in the outbox (the change stays done),
/// and it is published, once, when a relay reaches the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_publishes_committed_events_once_the_broker_takes_them() {
    use mfa_bus::kafka::KafkaPublisher;
    use mfa_bus::metrics::BusMetrics;
    use mfa_store::outbox::{self, OutboxMetrics, OutboxRelay};
    use shared::events::{AccountChange, AccountChanged, Envelope, Event};
    use std::sync::Arc;

    let system = spawn_system().await;
    let topic = system.kafka.topics().accounts;
    let event = |n: u128| {
        Envelope::new(
            "outbox-test",
            shared::domain::AttemptId::new(),
            None,
            chrono::Utc::now(),
            Event::AccountChanged(AccountChanged {
                user_id: shared::domain::UserId::from_uuid(uuid::Uuid::from_u128(n)),
                change: AccountChange::Enabled,
            }),
        )
    };
    let (committed, rolled_back) = (event(1), event(2));
    let (_, signer) = shared::audit::AuditSigner::generate("outbox-test", "outbox-test-1");
    let mut tx = system.pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, "outbox-test", &topic, "k", &committed)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = system.pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, "outbox-test", &topic, "k", &rolled_back)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    // No broker at this address: the row stays, unpublished.
    let mut unreachable = system.kafka.clone();
    unreachable.brokers = "127.0.0.1:1".into();
    let down = OutboxRelay {
        pool: system.pool.clone(),
        publisher: Arc::new(
            KafkaPublisher::with_timeout(
                &unreachable,
                Duration::from_millis(500),
                &BusMetrics::unregistered(),
            )
            .unwrap(),
        ),
        producer: "outbox-test",
        signer: signer.clone(),
        checkpoints_topic: system.kafka.topics().audit_checkpoints,
        metrics: OutboxMetrics::default(),
    };
    assert!(down.publish_batch().await.is_err());
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE producer = 'outbox-test' AND published_at IS NULL",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(waiting, 1, "only the committed event, waiting");

    let up = OutboxRelay {
        pool: system.pool.clone(),
        publisher: Arc::new(
            KafkaPublisher::new(&system.kafka, &BusMetrics::unregistered()).unwrap(),
        ),
        producer: "outbox-test",
        signer: signer.clone(),
        checkpoints_topic: system.kafka.topics().audit_checkpoints,
        metrics: OutboxMetrics::default(),
    };
    assert_eq!(up.publish_batch().await.unwrap(), 1);
    assert_eq!(up.publish_batch().await.unwrap(), 0, "published once");
    wait_for_message(&system.kafka, &topic, |v| {
        v["event_id"] == committed.event_id.to_string()
    })
    .await;
    let on_topic: Vec<Value> = read_topic(&system.kafka, &topic)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["producer"] == "outbox-test")
        .collect();
    assert_eq!(on_topic.len(), 1, "{on_topic:?}");
    assert_eq!(on_topic[0]["event_id"], committed.event_id.to_string());
}
