//! Reading a topic from its beginning up to its current end, as an auditor replaying the
//! event log would.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::TestkitError;

/// How long reading a topic to its end may take: the broker has it all, so this is only
/// reached when it stopped answering.
const READ_WITHIN: Duration = Duration::from_secs(60);

pub struct RawMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
    /// The record's headers in order (`traceparent`, `mfa-seal`...), values as sent.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RawMessage {
    /// The first header called `name`, when it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

/// Every message on `topic` (of `partitions` partitions) right now. Blocking: call it from
/// a blocking thread.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> Result<Vec<RawMessage>, TestkitError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("audit-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        // Tansu 0.6.0 answers a read-committed "latest offset" with a query PostgreSQL 15
        // rejects (a subquery without an alias, accepted from 16 on). Nothing here writes
        // transactionally, so read-uncommitted reads the same messages.
        .set("isolation.level", "read_uncommitted")
        .create()
        .map_err(TestkitError::kafka("audit consumer"))?;
    let mut assignment = TopicPartitionList::new();
    let mut expected = 0;
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .map_err(TestkitError::kafka(format!("watermarks of {topic}")))?;
        if high > low {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(low))
                .map_err(TestkitError::kafka("assignment"))?;
            expected += high - low;
        }
    }
    let mut messages = Vec::new();
    if expected == 0 {
        return Ok(messages);
    }
    consumer
        .assign(&assignment)
        .map_err(TestkitError::kafka("assign"))?;
    let deadline = std::time::Instant::now() + READ_WITHIN;
    while (messages.len() as i64) < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            messages.push(RawMessage {
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default(),
                payload: message.payload().unwrap_or_default().to_vec(),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|header| {
                                (
                                    header.key.to_owned(),
                                    header.value.unwrap_or_default().to_vec(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    if (messages.len() as i64) < expected {
        return Err(TestkitError::TopicIncomplete {
            topic: topic.to_owned(),
            read: messages.len(),
            expected,
            within: READ_WITHIN,
        });
    }
    Ok(messages)
}

/// The offset of the first message a reader of `topic`'s `partition` gets when it starts at
/// `offset`, as a consumer resuming from a committed offset does. A broker that answers from
/// the start of the record batch holding `offset` (or, as Tansu 0.6.0 does, from the batch
/// after it) gives another offset than `offset`. Blocking: call it from a blocking thread.
pub fn first_offset_read_from(
    brokers: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Option<i64>, TestkitError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("resume-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("isolation.level", "read_uncommitted")
        .create()
        .map_err(TestkitError::kafka("resuming consumer"))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(TestkitError::kafka("assignment"))?;
    consumer
        .assign(&assignment)
        .map_err(TestkitError::kafka("assign"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            return Ok(Some(message.offset()));
        }
    }
    Ok(None)
}
