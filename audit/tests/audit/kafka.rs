//! The Kafka source against the stack's broker: a constructed log published into a fresh
//! namespace, exported and verified by the binary; the broker's offsets; clear errors.

// Test set-up: a step that fails is the test failing, and says where.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use mfa_audit::export_source::ExportSource;
use mfa_audit::record::LogRecord;
use mfa_audit::source::{Next, RecordSource};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use shared::topics::Topics;

use crate::support::{audit, path, text, Log};

fn brokers() -> String {
    mfa_testkit::stack::setting("MFA_KAFKA_BROKERS")
}

fn fresh_namespace() -> String {
    format!("audit{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Creates the namespace's event and checkpoint topics, `partitions` each.
fn create_topics(namespace: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let topics = Topics::new(namespace);
    let mut names: Vec<&str> = topics.event_topics().to_vec();
    names.push(&topics.audit_checkpoints);
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    let runtime = tokio_free_block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
    ));
    for result in runtime.unwrap() {
        result.unwrap();
    }
}

/// rdkafka's admin calls are futures; one poll loop is enough to drive them here.
fn tokio_free_block_on<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Publishes each record to its topic and partition, as the services' relays do: one at a
/// time, each acknowledged before the next.
fn publish(records: &[LogRecord]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for record in records {
        let mut headers = OwnedHeaders::new();
        for header in &record.headers {
            headers = headers.insert(Header {
                key: &header.name,
                value: header.value.as_deref(),
            });
        }
        let key = record.key.clone().unwrap_or_default();
        producer
            .send(
                BaseRecord::to(&record.topic)
                    .partition(record.partition)
                    .key(&key)
                    .payload(&record.value)
                    .timestamp(record.timestamp_ms)
                    .headers(headers),
            )
            .map_err(|(error, _)| error)
            .unwrap();
        producer.flush(Duration::from_secs(20)).unwrap();
    }
}

fn read_export(path: &std::path::Path) -> Vec<LogRecord> {
    let mut source = ExportSource::open(path).unwrap();
    let mut records = Vec::new();
    let mut record = LogRecord::default();
    while let Some(next) = source.next_into(&mut record).unwrap() {
        assert_eq!(next, Next::Record);
        records.push(record.clone());
    }
    records
}

#[test]
fn a_published_log_exports_byte_for_byte_in_timestamp_order_and_verifies_clean() {
    let namespace = fresh_namespace();
    create_topics(&namespace, 3);
    let log = Log::generate(
        120,
        &namespace,
        chrono::Utc::now() - chrono::Duration::minutes(30),
    );
    publish(&log.records);
    let out_file = log.dir.path().join("export.jsonl");
    let out = audit(&[
        "export",
        "--out",
        path(&out_file),
        "--brokers",
        &brokers(),
        "--namespace",
        &namespace,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("exported {} records", log.records.len())));
    let exported = read_export(&out_file);
    assert_eq!(exported.len(), log.records.len());
    // In merged order: timestamps never go back.
    for pair in exported.windows(2) {
        assert!(
            pair[0].timestamp_ms <= pair[1].timestamp_ms,
            "{} at {} before {} at {}",
            pair[0].location(),
            pair[0].timestamp_ms,
            pair[1].location(),
            pair[1].timestamp_ms
        );
    }
    // The same records, byte for byte, at the same places (the generator numbers each
    // partition's offsets from 0, as a fresh topic does).
    let by_place = |records: &[LogRecord]| -> BTreeMap<(String, i32, i64), LogRecord> {
        records
            .iter()
            .map(|record| {
                (
                    (record.topic.clone(), record.partition, record.offset),
                    record.clone(),
                )
            })
            .collect()
    };
    assert_eq!(by_place(&exported), by_place(&log.records));

    let keys = log.key_file();
    let from_file = audit(&[
        "verify",
        "--from",
        path(&out_file),
        "--keys",
        path(&keys),
        "--quiet",
    ]);
    assert_eq!(
        from_file.status.code(),
        Some(0),
        "{}",
        text(&from_file.stdout)
    );
    let from_kafka = audit(&[
        "verify",
        "--keys",
        path(&keys),
        "--brokers",
        &brokers(),
        "--namespace",
        &namespace,
    ]);
    let stdout = text(&from_kafka.stdout);
    assert_eq!(
        from_kafka.status.code(),
        Some(0),
        "{stdout}{}",
        text(&from_kafka.stderr)
    );
    assert!(
        stdout.contains(&format!("records {}", log.records.len())),
        "{stdout}"
    );
}

/// What the offset check rests on: Tansu 0.6.0 numbers each partition's records 0, 1, 2...
/// with an idempotent producer, the services' settings, as librdkafka reads them back.
#[test]
fn offsets_are_contiguous_on_this_broker() {
    let namespace = fresh_namespace();
    create_topics(&namespace, 3);
    let log = Log::generate(
        60,
        &namespace,
        chrono::Utc::now() - chrono::Duration::minutes(5),
    );
    publish(&log.records);
    let out_file = log.dir.path().join("export.jsonl");
    let out = audit(&[
        "export",
        "--out",
        path(&out_file),
        "--brokers",
        &brokers(),
        "--namespace",
        &namespace,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut offsets: BTreeMap<(String, i32), Vec<i64>> = BTreeMap::new();
    for record in read_export(&out_file) {
        offsets
            .entry((record.topic, record.partition))
            .or_default()
            .push(record.offset);
    }
    assert!(!offsets.is_empty());
    for (partition, seen) in offsets {
        let expected: Vec<i64> = (0..seen.len() as i64).collect();
        assert_eq!(seen, expected, "{partition:?}");
    }
}

#[test]
fn an_unknown_namespace_names_its_missing_topics() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("export.jsonl");
    let namespace = fresh_namespace();
    let out = audit(&[
        "export",
        "--out",
        path(&out_file),
        "--brokers",
        &brokers(),
        "--namespace",
        &namespace,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("has no topic"), "{stderr}");
    assert!(
        stderr.contains(&format!("{namespace}.login-attempts")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{namespace}.audit-checkpoints")),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_broker_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("export.jsonl");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broker = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let out = audit(&[
        "export",
        "--out",
        path(&out_file),
        "--brokers",
        &broker,
        "--broker-timeout-secs",
        "3",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the Kafka broker at {broker}")),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    let out = audit(&["export", "--out", path(&out_file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("MFA_KAFKA_BROKERS"),
        "{}",
        text(&out.stderr)
    );
}
