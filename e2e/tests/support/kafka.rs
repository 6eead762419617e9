//! Reading a topic from the beginning up to its current end, and producing raw messages, as
//! an auditor or a client backend would.

use std::time::Duration;

use mfa_runtime::config::KafkaConfig;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

use super::TestSystem;

/// Every message on `topic` right now, as JSON (key, value).
pub fn read_topic(kafka: &KafkaConfig, topic: &str) -> Vec<(String, Value)> {
    mfa_testkit::event_log::read_topic(&kafka.brokers, topic, kafka.partitions)
        .unwrap_or_else(|error| panic!("could not read {topic}: {error}"))
        .into_iter()
        .map(|message| {
            let value = serde_json::from_slice(&message.payload).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&message.payload).into_owned())
            });
            (message.key, value)
        })
        .collect()
}

/// The events on `topics`, topic after topic.
pub fn events_of(system: &TestSystem, topics: &[&str]) -> Vec<Value> {
    topics
        .iter()
        .flat_map(|topic| read_topic(&system.kafka, topic))
        .map(|(_, value)| value)
        .collect()
}

/// The events on every event topic.
pub fn all_events(system: &TestSystem) -> Vec<Value> {
    let topics = system.kafka.topics();
    events_of(system, &topics.event_topics())
}

pub async fn produce(kafka: &KafkaConfig, topic: &str, key: &str, payload: &[u8]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .expect("producer");
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .expect("produced");
}

/// Waits until a message on `topic` satisfies `wanted`, and returns it.
pub async fn wait_for_message(
    kafka: &KafkaConfig,
    topic: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let topic_owned = topic.to_owned();
        let config = kafka.clone();
        let messages = tokio::task::spawn_blocking(move || read_topic(&config, &topic_owned))
            .await
            .unwrap();
        if let Some((_, value)) = messages.into_iter().find(|(_, value)| wanted(value)) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no matching message on {topic}");
}
