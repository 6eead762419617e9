//! The live worker in process, on the stack's PostgreSQL and Kafka: its `/metrics` counts
//! each decision once, however often its `LoginAttempted` is delivered.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use chrono::Utc;
use mfa_bus::kafka::KafkaPublisher;
use mfa_bus::metrics::BusMetrics;
use mfa_bus::EventPublisher;
use mfa_runtime::shutdown::Shutdown;
use mfa_testkit::stack;
use risk_worker::config::{Config, ModelConfig};
use risk_worker::startup::Worker;
use shared::domain::{AttemptId, AuthMethod, Locale, Platform, PrimaryFactor, UserAgent};
use shared::events::{Envelope, Event, LoginAttempted};

const DECIDED: &str = r#"mfa_risk_decisions_total{platform="workspace",auth_method="password",decision="rejected",reason="invalid_credentials"}"#;

async fn scrape(http: &reqwest::Client, url: &str) -> String {
    let response = http.get(url).send().await.expect("/metrics answers");
    assert!(response.status().is_success(), "{response:?}");
    response.text().await.unwrap()
}

/// The value of the sample line starting with `series` (labels included), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Scrapes until `done` holds, for up to 20 s; the last scrape.
async fn scrape_until(http: &reqwest::Client, url: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = scrape(http, url).await;
        if done(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not there after 20 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_redelivered_login_is_decided_and_counted_once() {
    let infra = stack::infra(
        &stack::create_database().await,
        stack::setting("MFA_KAFKA_BROKERS"),
    );
    let worker = Worker::build(Config {
        infra: infra.clone(),
        model: ModelConfig {
            policy: Default::default(),
            geoip: Default::default(),
        },
        audit_signer: shared::audit::AuditSigner::generate("risk-worker", "live-test").1,
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .expect("risk-worker starts");
    let url = format!("http://{}/metrics", worker.metrics_address());
    let (trigger, shutdown) = Shutdown::new();
    let running = tokio::spawn(worker.run(shutdown));

    // An unknown account: rejected, whatever the model says.
    let attempt_id = AttemptId::new();
    let login = Envelope::new(
        "login-intake",
        attempt_id,
        None,
        Utc::now(),
        Event::LoginAttempted(LoginAttempted {
            user_id: None,
            company_id: None,
            auth_method: AuthMethod::Password,
            primary_factor: PrimaryFactor::Failed,
            privileged: false,
            platform: Platform::Workspace,
            client: shared::personal::Personal::Clear(shared::events::LoginClient {
                ip: "203.0.113.9".parse().unwrap(),
                user_agent: UserAgent::parse("Mozilla/5.0").unwrap(),
                device_id: None,
            }),
            locale: Locale::default(),
        }),
    );
    let topics = infra.kafka.topics();
    let publisher = KafkaPublisher::new(&infra.kafka, &BusMetrics::unregistered()).unwrap();
    let key = attempt_id.to_string();
    publisher
        .publish(&topics.login_attempts, &key, &login)
        .await
        .unwrap();

    let http = reqwest::Client::new();
    let handled = format!(
        r#"mfa_consumer_messages_total{{group="{}",topic="{}",outcome="handled"}}"#,
        infra.kafka.group_id("risk-worker"),
        topics.login_attempts
    );
    let first = scrape_until(&http, &url, |text| {
        sample(text, DECIDED) == Some(1.0) && sample(text, &handled) == Some(1.0)
    })
    .await;
    assert!(first.contains(r#"mfa_risk_levels_total{level="#), "{first}");
    assert_eq!(sample(&first, "mfa_db_pool_max_connections"), Some(10.0));

    // The same message again (a redelivery): handled, its stored decision recognised, and
    // nothing counted twice.
    publisher
        .publish(&topics.login_attempts, &key, &login)
        .await
        .unwrap();
    let second = scrape_until(&http, &url, |text| sample(text, &handled) == Some(2.0)).await;
    assert_eq!(sample(&second, DECIDED), Some(1.0), "{second}");
    let outbox = r#"mfa_outbox_published_total{producer="risk-worker"}"#;
    let published = scrape_until(&http, &url, |text| sample(text, outbox) == Some(1.0)).await;
    assert_eq!(sample(&published, DECIDED), Some(1.0), "{published}");

    trigger.fire();
    running.await.unwrap().expect("the worker stops cleanly");
}
