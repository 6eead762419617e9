//! Reading a deployment's log from Kafka: every partition of the namespace's event topics and
//! of its checkpoints topic, from the earliest offset to the end each had when reading
//! started (records published meanwhile are left for the next audit), merged into one
//! stream by timestamp.
//!
//! Memory stays bounded whatever the log's size: librdkafka's prefetch is capped
//! ([`KafkaSourceConfig::prefetch_kbytes`]), and a partition whose local buffer holds
//! [`PAUSE_AT`] records is paused until the merge has taken half of them (the merge has to
//! wait for the slowest partition, and the others must not pile up meanwhile).
//!
//! The ends are asked once, per partition, with a watermark query at read-uncommitted
//! isolation (the services never write transactionally, and Tansu 0.6.0 answers a
//! read-committed query with SQL that PostgreSQL 15 rejects).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use shared::topics::Topics;

use crate::record::LogRecord;
use crate::source::{Next, Progress, RecordSource, SourceError};

/// Records buffered per partition before it is paused.
pub const PAUSE_AT: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("cannot configure the Kafka client")]
    Client(#[source] KafkaError),
    #[error("cannot reach the Kafka broker at {brokers} (is MFA_KAFKA_BROKERS right and the broker up?)")]
    BrokerUnreachable {
        brokers: String,
        #[source]
        source: KafkaError,
    },
    #[error("the broker at {brokers} has no topic {} (is the namespace {namespace:?} right? the services create their topics at start-up)", missing.join(", "))]
    MissingTopics {
        brokers: String,
        namespace: String,
        missing: Vec<String>,
    },
    #[error("cannot ask where {topic}/{partition} ends")]
    Watermarks {
        topic: String,
        partition: i32,
        #[source]
        source: KafkaError,
    },
    #[error("cannot assign the partitions to read")]
    Assign(#[source] KafkaError),
    #[error("no record came for {waited:?} while {waiting} still had records to read (last error: {last_error})")]
    Stalled {
        waited: Duration,
        waiting: String,
        last_error: String,
    },
}

/// Where to read from; the broker and namespace as the services read them
/// (`MFA_KAFKA_BROKERS`, `MFA_TOPIC_NAMESPACE`).
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    pub brokers: String,
    pub namespace: String,
    /// Also the login requests and dead letters, which are not events of the log.
    pub all_topics: bool,
    /// How long the broker may hold a fetch that has nothing to return.
    pub fetch_wait: Duration,
    /// Cap of librdkafka's prefetched records, in KiB.
    pub prefetch_kbytes: u32,
    /// How long to wait for a broker that does not answer, at the start and then between
    /// two records.
    pub timeout: Duration,
    /// No progress lines on standard error.
    pub quiet: bool,
}

impl KafkaSourceConfig {
    pub fn new(brokers: &str, namespace: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            namespace: namespace.to_owned(),
            all_topics: false,
            fetch_wait: Duration::from_millis(100),
            prefetch_kbytes: 16 * 1024,
            timeout: Duration::from_secs(30),
            quiet: false,
        }
    }

    /// The topics read: the event topics and the checkpoints (and with `all_topics` the
    /// requests and dead letters too).
    pub fn topics(&self) -> Vec<String> {
        let topics = Topics::new(&self.namespace);
        if self.all_topics {
            topics
                .all()
                .iter()
                .map(|topic| (*topic).to_owned())
                .collect()
        } else {
            let mut wanted: Vec<String> = topics
                .event_topics()
                .iter()
                .map(|topic| (*topic).to_owned())
                .collect();
            wanted.push(topics.audit_checkpoints.clone());
            wanted
        }
    }
}

struct PartitionState {
    topic: String,
    partition: i32,
    /// The first offset past the records to read: the end at start time.
    end: i64,
    /// The next offset expected from the broker.
    next: i64,
    buffer: VecDeque<LogRecord>,
    paused: bool,
}

impl PartitionState {
    fn done_reading(&self) -> bool {
        self.next >= self.end
    }

    fn name(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }
}

/// The log of one namespace on a broker, in timestamp order.
pub struct KafkaSource {
    consumer: BaseConsumer,
    partitions: Vec<PartitionState>,
    /// Spare records, so reading reuses their buffers.
    spare: Vec<LogRecord>,
    timeout: Duration,
    read: u64,
    to_read: u64,
    progress: Progress,
    last_error: String,
}

impl KafkaSource {
    /// Connects, checks that every topic exists, and notes where each partition ends now.
    pub fn connect(config: &KafkaSourceConfig) -> Result<Self, KafkaSourceError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            // Needed by librdkafka for a consumer; nothing is committed under it.
            .set("group.id", format!("mfa-audit-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_uncommitted")
            .set(
                "fetch.wait.max.ms",
                config.fetch_wait.as_millis().to_string(),
            )
            .set(
                "queued.max.messages.kbytes",
                config.prefetch_kbytes.max(1).to_string(),
            )
            .set("socket.timeout.ms", config.timeout.as_millis().to_string())
            .create()
            .map_err(KafkaSourceError::Client)?;
        let metadata = consumer
            .fetch_metadata(None, config.timeout)
            .map_err(|source| KafkaSourceError::BrokerUnreachable {
                brokers: config.brokers.clone(),
                source,
            })?;
        let wanted = config.topics();
        let mut partitions = Vec::new();
        let mut missing = Vec::new();
        for name in &wanted {
            match metadata
                .topics()
                .iter()
                .find(|topic| topic.name() == name && topic.error().is_none())
            {
                Some(topic) if !topic.partitions().is_empty() => {
                    let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
                    ids.sort_unstable();
                    for partition in ids {
                        partitions.push((name.clone(), partition));
                    }
                }
                _ => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(KafkaSourceError::MissingTopics {
                brokers: config.brokers.clone(),
                namespace: config.namespace.clone(),
                missing,
            });
        }
        let mut assignment = TopicPartitionList::new();
        let mut states = Vec::with_capacity(partitions.len());
        let mut to_read = 0;
        for (topic, partition) in partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, config.timeout)
                .map_err(|source| KafkaSourceError::Watermarks {
                    topic: topic.clone(),
                    partition,
                    source,
                })?;
            if high > low {
                assignment
                    .add_partition_offset(&topic, partition, Offset::Offset(low))
                    .map_err(KafkaSourceError::Assign)?;
                to_read += (high - low) as u64;
            }
            states.push(PartitionState {
                topic,
                partition,
                end: high,
                next: low,
                buffer: VecDeque::new(),
                paused: false,
            });
        }
        consumer
            .assign(&assignment)
            .map_err(KafkaSourceError::Assign)?;
        Ok(Self {
            consumer,
            partitions: states,
            spare: Vec::new(),
            timeout: config.timeout,
            read: 0,
            to_read,
            progress: Progress::new(
                &format!("reading {} on {}", config.namespace, config.brokers),
                config.quiet,
            ),
            last_error: "none".to_owned(),
        })
    }

    /// How many records the log held at start time (the sum of the partitions' ranges).
    pub fn records_at_start(&self) -> u64 {
        self.to_read
    }

    /// `(topic, partition, first offset, end offset)` of every partition read.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.partitions
            .iter()
            .map(|state| (state.topic.as_str(), state.partition, state.end))
    }

    /// Polls the broker once, filing what came into its partition's buffer.
    fn poll_once(&mut self, wait: Duration) -> Result<bool, KafkaSourceError> {
        let Some(polled) = self.consumer.poll(wait) else {
            return Ok(false);
        };
        let message = match polled {
            Ok(message) => message,
            Err(error) => {
                // A broker that blips is waited for (up to the timeout), not given up on.
                self.last_error = error.to_string();
                return Ok(false);
            }
        };
        let Some(state) = self
            .partitions
            .iter_mut()
            .find(|state| state.partition == message.partition() && state.topic == message.topic())
        else {
            return Ok(false);
        };
        let offset = message.offset();
        // Past the end at start time, or a copy from before a pause: not ours to read.
        if offset >= state.end || offset < state.next {
            return Ok(true);
        }
        state.next = offset + 1;
        let mut record = self.spare.pop().unwrap_or_default();
        record.topic.clear();
        record.topic.push_str(message.topic());
        record.partition = message.partition();
        record.offset = offset;
        record.timestamp_ms = message.timestamp().to_millis().unwrap_or(-1);
        record.set_key(message.key());
        match message.headers() {
            Some(headers) => {
                record.set_headers(headers.iter().map(|header| (header.key, header.value)))
            }
            None => record.headers.clear(),
        }
        record.value.clear();
        record
            .value
            .extend_from_slice(message.payload().unwrap_or_default());
        state.buffer.push_back(record);
        if state.buffer.len() >= PAUSE_AT && !state.paused && !state.done_reading() {
            let mut list = TopicPartitionList::new();
            list.add_partition(&state.topic, state.partition);
            if self.consumer.pause(&list).is_ok() {
                state.paused = true;
            }
        }
        Ok(true)
    }

    fn resume_if_drained(&mut self, index: usize) {
        let state = &mut self.partitions[index];
        if state.paused && state.buffer.len() <= PAUSE_AT / 2 {
            let mut list = TopicPartitionList::new();
            list.add_partition(&state.topic, state.partition);
            if self.consumer.resume(&list).is_ok() {
                state.paused = false;
            }
        }
    }

    /// Reads until every partition still to be read has a record in hand: only then is the
    /// oldest record known.
    fn fill(&mut self) -> Result<(), KafkaSourceError> {
        let mut waiting_since = Instant::now();
        while self
            .partitions
            .iter()
            .any(|state| state.buffer.is_empty() && !state.done_reading())
        {
            if self.poll_once(Duration::from_millis(200))? {
                waiting_since = Instant::now();
            } else if waiting_since.elapsed() >= self.timeout {
                let waiting: Vec<String> = self
                    .partitions
                    .iter()
                    .filter(|state| state.buffer.is_empty() && !state.done_reading())
                    .map(|state| format!("{} (at {} of {})", state.name(), state.next, state.end))
                    .collect();
                return Err(KafkaSourceError::Stalled {
                    waited: self.timeout,
                    waiting: waiting.join(", "),
                    last_error: self.last_error.clone(),
                });
            }
            let (read, to_read) = (self.read, self.to_read);
            self.progress
                .maybe_report(read, || format!("{read} of {to_read}"));
        }
        Ok(())
    }
}

impl RecordSource for KafkaSource {
    fn next_into(&mut self, record: &mut LogRecord) -> Result<Option<Next>, SourceError> {
        self.fill()?;
        let oldest = self
            .partitions
            .iter()
            .enumerate()
            .filter_map(|(index, state)| {
                state.buffer.front().map(|front| {
                    (
                        (
                            front.timestamp_ms,
                            &state.topic,
                            state.partition,
                            front.offset,
                        ),
                        index,
                    )
                })
            })
            .min()
            .map(|(_, index)| index);
        let Some(index) = oldest else {
            return Ok(None);
        };
        let Some(mut taken) = self.partitions[index].buffer.pop_front() else {
            return Ok(None);
        };
        std::mem::swap(record, &mut taken);
        self.spare.push(taken);
        self.resume_if_drained(index);
        self.read += 1;
        let (read, to_read) = (self.read, self.to_read);
        self.progress.tick(read, || format!("{read} of {to_read}"));
        Ok(Some(Next::Record))
    }
}
