//! Reading a topic from the beginning up to its current end, and producing raw messages, as
//! an auditor or a client backend would.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;
use shared::config::KafkaConfig;

/// Every message on `topic` right now, as JSON (key, value).
pub fn read_topic(kafka: &KafkaConfig, topic: &str) -> Vec<(String, Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", format!("audit-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("audit consumer");
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for partition in 0..kafka.partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(5))
            .expect("watermarks");
        if high > low {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(low))
                .unwrap();
            ends.push(high - low);
        }
    }
    let mut messages = Vec::new();
    if ends.is_empty() {
        return messages;
    }
    consumer.assign(&assignment).expect("assign");
    let expected: i64 = ends.iter().sum();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while (messages.len() as i64) < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let key = message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            let value: Value = serde_json::from_slice(message.payload().unwrap_or_default())
                .unwrap_or_else(|_| {
                    Value::String(
                        String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                    )
                });
            messages.push((key, value));
        }
    }
    assert_eq!(
        messages.len() as i64,
        expected,
        "could not read all of {topic}"
    );
    messages
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
