//! Kafka (rdkafka) implementations of [`crate`]: an acknowledged producer, explicit topic
//! creation, and a consumer loop that stores each offset only after its message was handled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
pub use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;

use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracing::Instrument;

use crate::group_watch::{self, StallWatch};
use crate::metrics::{BusMetrics, Outcome};
use crate::{
    EventPublisher, HandlerError, IncomingMessage, MessageHandler, OutgoingMessage, PartialSend,
    PublishError,
};
use mfa_runtime::config::KafkaConfig;
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::trace_context::{continue_trace, TRACEPARENT};
use shared::audit::SEAL_HEADER;

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(10);

fn base_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        // Fail fast when the broker is gone, instead of librdkafka's minutes of retries.
        .set("socket.timeout.ms", "10000");
    client
}

/// A producer whose `publish` returns only after the broker acknowledged the message.
///
/// It rebuilds its librdkafka producer when that one looks stuck: after a fatal error, or
/// after several publishes in a row failed. (An idempotent producer that lost messages while
/// the broker was away bumped its epoch, and Tansu 0.6.0 then refused everything it sent,
/// seen in the chaos harness's broker restart; the producer is no longer idempotent, but a
/// client in a fatal state is still replaced.) A new producer goes on.
/// Nothing is lost by it: a failed publish is never reported as done, so its caller (an
/// outbox relay, or a login answered 503) tries again.
#[derive(Clone)]
pub struct KafkaPublisher {
    state: Arc<PublisherState>,
    produce_timeout: Duration,
    metrics: BusMetrics,
}

struct PublisherState {
    config: ClientConfig,
    producer: std::sync::RwLock<FutureProducer>,
    health: std::sync::Mutex<ProducerHealth>,
}

struct ProducerHealth {
    consecutive_failures: u32,
    created_at: std::time::Instant,
}

/// Failed publishes in a row after which the producer is rebuilt.
const REBUILD_AFTER_FAILURES: u32 = 3;
/// At most one rebuild per this long: a broker that is simply down costs a new producer
/// every few seconds, not one per failed message.
const REBUILD_INTERVAL: Duration = Duration::from_secs(5);

impl KafkaPublisher {
    pub fn new(config: &KafkaConfig, metrics: &BusMetrics) -> Result<Self, KafkaError> {
        Self::with_timeout(config, PRODUCE_TIMEOUT, metrics)
    }

    /// A publisher that gives a message up after `produce_timeout` (queueing, retries and
    /// the broker's acknowledgement included): an HTTP request that must answer quickly
    /// uses a short one, so a message it reported as failed is not delivered much later.
    pub fn with_timeout(
        config: &KafkaConfig,
        produce_timeout: Duration,
        metrics: &BusMetrics,
    ) -> Result<Self, KafkaError> {
        let mut client = base_config(config);
        client
            .set("acks", "all")
            // Not idempotent: on Tansu 0.6.0 an idempotent produce is acknowledged after
            // 5-6 ms at p50, a plain one after 0.5-0.7 ms (`bench/examples/broker_latency`),
            // and every event of a login is produced twice on its way. The order within a
            // partition (the audit chain's seqs rise with the offsets) is kept through
            // librdkafka's retries by one request in flight per connection instead. A retry
            // can duplicate a record: a copy under the same seal, which the audit and the
            // consumers (event ids) take as a repeat, as after a relay's crash.
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set(
                "message.timeout.ms",
                produce_timeout.as_millis().max(1).to_string(),
            )
            // The login path waits on this message: no lingering for a batch to fill.
            .set("linger.ms", "0")
            // One record a batch. Tansu 0.6.0 answers a fetch from an offset inside a
            // record batch with the batch after it, so a consumer that resumes mid-batch (a
            // restart, a rebalance: offsets are stored a message at a time) would never see
            // the rest of that batch (BENCHMARKS.md, "A broker defect found on the way").
            .set("batch.num.messages", "1");
        let producer = client.create()?;
        Ok(Self {
            state: Arc::new(PublisherState {
                config: client,
                producer: std::sync::RwLock::new(producer),
                health: std::sync::Mutex::new(ProducerHealth {
                    consecutive_failures: 0,
                    created_at: std::time::Instant::now(),
                }),
            }),
            produce_timeout,
            metrics: metrics.clone(),
        })
    }

    fn producer(&self) -> FutureProducer {
        self.state
            .producer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn health(&self) -> std::sync::MutexGuard<'_, ProducerHealth> {
        self.state
            .health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn after_failure(&self, producer: &FutureProducer) {
        let fatal = producer.client().fatal_error();
        let mut health = self.health();
        health.consecutive_failures += 1;
        let stuck = fatal.is_some() || health.consecutive_failures >= REBUILD_AFTER_FAILURES;
        if !stuck || health.created_at.elapsed() < REBUILD_INTERVAL {
            return;
        }
        match self.state.config.create::<FutureProducer>() {
            Ok(fresh) => {
                let old = std::mem::replace(
                    &mut *self
                        .state
                        .producer
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                    fresh,
                );
                tracing::warn!(
                    failures = health.consecutive_failures,
                    fatal = ?fatal,
                    "producer rebuilt after failed publishes"
                );
                *health = ProducerHealth {
                    consecutive_failures: 0,
                    created_at: std::time::Instant::now(),
                };
                // Destroying a librdkafka handle can block while it winds down.
                drop(health);
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(error) => tracing::warn!(%error, "could not rebuild the producer"),
        }
    }

    /// Asks the broker for its metadata: the readiness check.
    pub async fn check_broker(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.producer();
        tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, timeout).map(|_| ())
        })
        .await
        .map_err(|_| KafkaError::Canceled)?
    }

    /// Waits for messages in flight (on shutdown). librdkafka's flush blocks its thread for
    /// up to `timeout`, so it runs on the blocking pool, not on an async worker.
    pub async fn flush(&self, timeout: Duration) {
        let producer = self.producer();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!("producer flush did not complete");
        }
    }
}

/// The record of `message`, with its seal and trace context as headers.
fn record<'a>(message: &OutgoingMessage<'a>) -> FutureRecord<'a, str, [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(2);
    if let Some(seal) = message.seal {
        headers = headers.insert(Header {
            key: SEAL_HEADER,
            value: Some(seal.to_string().as_str()),
        });
    }
    if let Some(traceparent) = message.traceparent {
        headers = headers.insert(Header {
            key: TRACEPARENT,
            value: Some(traceparent),
        });
    }
    let record = FutureRecord::to(message.topic)
        .key(message.key)
        .payload(message.payload);
    if headers.count() > 0 {
        record.headers(headers)
    } else {
        record
    }
}

impl KafkaPublisher {
    fn after_send(&self, producer: &FutureProducer, topic: &str, sent: bool) {
        self.metrics.published(topic, sent);
        if sent {
            self.health().consecutive_failures = 0;
        } else {
            self.after_failure(producer);
        }
    }
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    async fn send(&self, message: OutgoingMessage<'_>) -> Result<(), PublishError> {
        let producer = self.producer();
        let sent = producer.send(record(&message), self.produce_timeout).await;
        self.after_send(&producer, message.topic, sent.is_ok());
        sent.map(|_| ()).map_err(|(error, _)| PublishError {
            topic: message.topic.to_owned(),
            cause: Box::new(error),
        })
    }

    /// Every message is handed to librdkafka at once, in order, then each acknowledgement
    /// awaited: the broker thread sends them back to back without a wake-up of this task
    /// between two. With one request in flight, librdkafka keeps their order within a
    /// partition through its retries; a message that fails for good (its timeout) has the
    /// ones handed over with it fail by the same deadline.
    async fn send_all(&self, messages: &[OutgoingMessage<'_>]) -> Result<(), PartialSend> {
        let producer = self.producer();
        let mut in_flight = Vec::with_capacity(messages.len());
        let mut refused = None;
        for (index, message) in messages.iter().enumerate() {
            match producer.send_result(record(message)) {
                Ok(delivery) => in_flight.push(delivery),
                Err((error, _)) => {
                    // Its queue is full, or the producer failed: none after it is handed
                    // over, so none can overtake it.
                    self.after_send(&producer, message.topic, false);
                    refused = Some((index, error));
                    break;
                }
            }
        }
        let mut first_failure: Option<(usize, PublishError)> = None;
        for (index, delivery) in in_flight.into_iter().enumerate() {
            let outcome = match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((error, _))) => Err(Box::new(error) as crate::Cause),
                Err(canceled) => Err(Box::new(canceled) as crate::Cause),
            };
            let topic = messages[index].topic;
            self.after_send(&producer, topic, outcome.is_ok());
            if let (Err(cause), None) = (outcome, &first_failure) {
                first_failure = Some((
                    index,
                    PublishError {
                        topic: topic.to_owned(),
                        cause,
                    },
                ));
            }
        }
        let failure = first_failure.or_else(|| {
            refused.map(|(index, error)| {
                (
                    index,
                    PublishError {
                        topic: messages[index].topic.to_owned(),
                        cause: Box::new(error),
                    },
                )
            })
        });
        match failure {
            None => Ok(()),
            Some((acknowledged, error)) => Err(PartialSend {
                acknowledged,
                error,
            }),
        }
    }
}

/// Creates the deployment's topics if they do not exist. The broker is never trusted to
/// auto-create them: it would pick its own partition count and retention.
pub async fn ensure_topics(config: &KafkaConfig) -> Result<(), KafkaError> {
    // A broker that is restarting (or whose storage is) answers with timeouts for a while:
    // a service started then waits for it rather than exit, as it would for any dependency
    // it meets later. Errors that no wait mends (a bad replication factor...) end at once.
    let give_up = tokio::time::Instant::now() + STARTUP_BROKER_WAIT;
    let mut backoff = Duration::from_millis(500);
    loop {
        match create_topics(config).await {
            Err(error) if is_transient(&error) && tokio::time::Instant::now() < give_up => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    ?backoff,
                    "broker not ready for topic creation; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            result => return result,
        }
    }
}

/// How long a starting service waits for the broker to create its topics.
const STARTUP_BROKER_WAIT: Duration = Duration::from_secs(60);

fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    let code = match error {
        KafkaError::AdminOp(code) => *code,
        other => match other.rdkafka_error_code() {
            Some(code) => code,
            None => return false,
        },
    };
    matches!(
        code,
        OperationTimedOut
            | RequestTimedOut
            | BrokerTransportFailure
            | AllBrokersDown
            | NotController
            | LeaderNotAvailable
            | NotCoordinator
            | CoordinatorNotAvailable
            | NetworkException
            | Unknown
    )
}

/// The names among `wanted` that the broker's metadata does not list yet.
async fn missing_topics(
    config: &KafkaConfig,
    wanted: Vec<String>,
) -> Result<Vec<String>, KafkaError> {
    let client: rdkafka::consumer::BaseConsumer = base_config(config).create()?;
    // A metadata request is blocking in librdkafka: not on an async worker.
    tokio::task::spawn_blocking(move || {
        let metadata = client.fetch_metadata(None, Duration::from_secs(10))?;
        let known: std::collections::HashSet<&str> =
            metadata.topics().iter().map(|topic| topic.name()).collect();
        Ok(wanted
            .into_iter()
            .filter(|name| !known.contains(name.as_str()))
            .collect())
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}

async fn create_topics(config: &KafkaConfig) -> Result<(), KafkaError> {
    let topics = config.topics();
    // Only what is missing is created: a restarting service then needs no CreateTopics at
    // all, which Tansu 0.6.0 can leave timing out for minutes after its storage restarted
    // while metadata, produce and fetch work again.
    let missing = missing_topics(
        config,
        topics.all().into_iter().map(str::to_owned).collect(),
    )
    .await?;
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = base_config(config).create()?;
    let retention = config.retention_ms.to_string();
    let requests_retention = config.login_requests_retention.as_millis().to_string();
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|name| {
            let topic = NewTopic::new(
                name,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            if *name == topics.login_requests {
                // Raw requests carry addresses in the clear, out of reach of erasure: kept
                // days, not as long as the events (`KafkaConfig::login_requests_retention`).
                // `cleanup.policy` is Kafka's default, said here because Tansu's SQL storage
                // prunes only topics that name it (its memory storage prunes nothing). Never
                // on the other topics: Tansu 0.6.0 reads retention.ms -1 with it as "older
                // than 0 s" and would empty the event log. A topic created before this
                // setting keeps its retention until an operator alters it (kafka-configs
                // --alter): rdkafka offers only the replacing AlterConfigs, which Tansu 0.6.0
                // does not answer, and replacing a topic's whole configuration at every
                // start-up would undo what an operator set.
                topic
                    .set("retention.ms", &requests_retention)
                    .set("cleanup.policy", "delete")
            } else {
                topic.set("retention.ms", &retention)
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::AdminOp(code)).inspect_err(
                    |_| tracing::error!(topic = %name, %code, "could not create topic"),
                )
            }
        }
    }
    Ok(())
}

/// One consumer in a consumer group, reading `topics` one message at a time.
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<GroupEvents>>,
    group: String,
    metrics: BusMetrics,
    topics: Vec<String>,
    stall_watch: Option<StallWatch>,
    /// Set while a message is being retried (a dependency is failing): a partition standing
    /// still elsewhere then most likely waits on the same outage, not on a lost assignment.
    retrying: Arc<std::sync::atomic::AtomicBool>,
}

/// Logs each assignment and revocation: which partitions a replica holds is what one needs
/// to know when a group stalls or a partition goes unread.
pub struct GroupEvents {
    group: String,
}

impl ClientContext for GroupEvents {}

impl ConsumerContext for GroupEvents {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &rdkafka::TopicPartitionList| {
            list.elements()
                .iter()
                .map(|p| format!("{}/{}", p.topic(), p.partition()))
                .collect::<Vec<_>>()
                .join(",")
        };
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, partitions = %partitions(list), "partitions assigned")
            }
            Rebalance::Revoke(list) => {
                tracing::info!(group = %self.group, partitions = %partitions(list), "partitions revoked")
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed")
            }
        }
    }
}

impl KafkaConsumer {
    pub fn new(
        config: &KafkaConfig,
        group: &str,
        topics: &[&str],
        metrics: &BusMetrics,
    ) -> Result<Self, KafkaError> {
        let consumer: StreamConsumer<GroupEvents> = base_config(config)
            .set("group.id", group)
            // Offsets are stored by hand after a message is handled, then committed in the
            // background: a crash re-delivers at most what was in hand, never skips it.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "500")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", config.fetch_wait_ms.to_string())
            // A dead member's partitions move within seconds, not after the 45 s default.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .create_with_context(GroupEvents {
                group: group.to_owned(),
            })?;
        consumer.subscribe(topics)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            group: group.to_owned(),
            metrics: metrics.clone(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            stall_watch: Some(StallWatch::new(base_config(config), group, topics)?),
            retrying: Arc::default(),
        })
    }

    /// Leaves the group and joins it again, so the coordinator assigns every partition anew.
    fn rejoin(&self) {
        self.consumer.unsubscribe();
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if let Err(error) = self.consumer.subscribe(&topics) {
            tracing::warn!(%error, group = %self.group, "could not subscribe again");
        }
    }

    /// Handles messages until `shutdown`. A message that can't be handled is retried with
    /// back-off (dependency down) or dead-lettered (poison); its offset is stored only then.
    pub async fn run<H: MessageHandler>(
        mut self,
        handler: H,
        dead_letters: DeadLetters,
        mut shutdown: Shutdown,
    ) {
        let rejoin = Arc::new(tokio::sync::Notify::new());
        let watching = self.stall_watch.take().map(|watch| {
            tokio::spawn(watch_for_orphans(
                watch,
                self.consumer.clone(),
                self.group.clone(),
                self.retrying.clone(),
                rejoin.clone(),
            ))
        });
        let measuring = tokio::spawn(measure_lag(
            self.consumer.clone(),
            self.group.clone(),
            self.metrics.clone(),
        ));
        loop {
            let message = tokio::select! {
                _ = shutdown.wait() => break,
                _ = rejoin.notified() => {
                    self.rejoin();
                    continue;
                }
                message = self.consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, group = %self.group, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let received = std::time::Instant::now();
            let headers = message.headers();
            let traceparent = headers.and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == TRACEPARENT)
                    .and_then(|header| header.value)
                    .and_then(|value| std::str::from_utf8(value).ok())
            });
            let incoming = IncomingMessage {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                key: message.key(),
                payload: message.payload().unwrap_or_default(),
                traceparent,
            };
            // One span per message, a child of the producer's: the login's trace goes on
            // here. The handler fills in `attempt_id` once it has decoded the event.
            let span = tracing::info_span!(
                "consume",
                otel.name = %format!("{} process", incoming.topic),
                otel.kind = "consumer",
                messaging.system = "kafka",
                messaging.destination.name = incoming.topic,
                messaging.consumer.group.name = %self.group,
                messaging.kafka.partition = incoming.partition,
                messaging.kafka.offset = incoming.offset,
                attempt_id = tracing::field::Empty,
            );
            continue_trace(&span, incoming.traceparent);
            let Some(outcome) = self
                .handle_until_done(&handler, &dead_letters, incoming, &shutdown)
                .instrument(span)
                .await
            else {
                break;
            };
            self.metrics.finished(
                &self.group,
                incoming.topic,
                outcome,
                received.elapsed().as_secs_f64(),
            );
            if let Err(error) = self.consumer.store_offset_from_message(&message) {
                tracing::warn!(%error, "could not store offset");
            }
        }
        if let Some(watching) = watching {
            watching.abort();
        }
        measuring.abort();
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(%error, "final offset commit");
        }
    }

    /// How the message was finished with; None when shutdown interrupted the retries (the
    /// message stays unhandled).
    async fn handle_until_done<H: MessageHandler>(
        &self,
        handler: &H,
        dead_letters: &DeadLetters,
        message: IncomingMessage<'_>,
        shutdown: &Shutdown,
    ) -> Option<Outcome> {
        let mut backoff = Duration::from_millis(100);
        let retrying = RetryingFlag(&self.retrying);
        loop {
            let failure = match handler.handle(message).await {
                Ok(()) => return Some(Outcome::Handled),
                Err(HandlerError::Skip(reason)) => {
                    tracing::debug!(topic = message.topic, offset = message.offset, %reason, "skipped message");
                    return Some(Outcome::Skipped);
                }
                Err(HandlerError::Reject(reason)) => {
                    tracing::warn!(topic = message.topic, offset = message.offset, %reason, "dead-lettering message");
                    match dead_letters.send(&self.group, &message, &reason).await {
                        Ok(()) => return Some(Outcome::DeadLettered),
                        Err(error) => Box::new(error) as crate::Cause,
                    }
                }
                Err(HandlerError::Retry(cause)) => cause,
            };
            retrying.set();
            self.metrics.retried(&self.group, message.topic);
            tracing::warn!(
                topic = message.topic,
                offset = message.offset,
                error = &*failure as &dyn std::error::Error,
                ?backoff,
                "will retry message"
            );
            if shutdown.is_fired() {
                return None;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Raised while a message is retried, lowered however the handling ends.
struct RetryingFlag<'a>(&'a std::sync::atomic::AtomicBool);

impl RetryingFlag<'_> {
    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for RetryingFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How often each partition's lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Every [`LAG_EVERY`], the lag of each partition this member holds: the partition's end
/// less the member's position (the next offset it will handle; before its first message, the
/// group's committed offset). The end is the one librdkafka keeps from its fetch responses,
/// read without a request: asking the broker (ListOffsets) makes Tansu 0.6.0 on PostgreSQL
/// fail a query and drop the consumer's connection, fetches in flight with it. librdkafka's
/// statistics hold the same lag, but rdkafka 0.39's consumer drops the statistics events it
/// polls. Partitions given up lose their series.
async fn measure_lag(
    consumer: Arc<StreamConsumer<GroupEvents>>,
    group: String,
    metrics: BusMetrics,
) {
    let mut reported: Vec<(String, i32)> = Vec::new();
    loop {
        tokio::time::sleep(LAG_EVERY).await;
        let asking = consumer.clone();
        let Ok(lags) = tokio::task::spawn_blocking(move || partition_lags(&asking)).await else {
            return;
        };
        for (topic, partition) in &reported {
            if !lags.iter().any(|(t, p, _)| t == topic && p == partition) {
                metrics.lag(&group, topic, *partition, -1);
            }
        }
        reported = lags.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        for (topic, partition, lag) in lags {
            metrics.lag(&group, &topic, partition, lag);
        }
    }
}

/// `(topic, partition, lag)` of the assigned partitions whose end and position are known.
fn partition_lags(consumer: &StreamConsumer<GroupEvents>) -> Vec<(String, i32, i64)> {
    use rdkafka::Offset;
    let Ok(positions) = consumer.position() else {
        return Vec::new();
    };
    let offset = |offset: Offset| match offset {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    };
    // Asked of the group coordinator only when a partition has no position yet.
    let committed = positions
        .elements()
        .iter()
        .any(|p| offset(p.offset()).is_none())
        .then(|| consumer.committed(Duration::from_secs(2)).ok())
        .flatten();
    let mut lags = Vec::new();
    for element in positions.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let Some(end) = cached_end_offset(consumer, topic, partition) else {
            continue;
        };
        let position = offset(element.offset()).or_else(|| {
            committed
                .as_ref()
                .and_then(|list| offset(list.find_partition(topic, partition)?.offset()))
        });
        if let Some(position) = position {
            lags.push((topic.to_owned(), partition, (end - position).max(0)));
        }
    }
    lags
}

/// The partition's end offset as librdkafka last saw it in a fetch response (no request).
fn cached_end_offset(
    consumer: &StreamConsumer<GroupEvents>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client handle is valid while `consumer` is borrowed; librdkafka reads the
    // NUL-terminated `topic`, alive for the call, and writes only the two integers.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// Every [`group_watch::CHECK_EVERY`], asks whether a partition of the group's topics is
/// orphaned, and if so rings `rejoin` (at most once per [`group_watch::STALL_AFTER`]).
async fn watch_for_orphans(
    mut watch: StallWatch,
    consumer: Arc<StreamConsumer<GroupEvents>>,
    group: String,
    retrying: Arc<std::sync::atomic::AtomicBool>,
    rejoin: Arc<tokio::sync::Notify>,
) {
    loop {
        tokio::time::sleep(group_watch::CHECK_EVERY).await;
        if retrying.load(std::sync::atomic::Ordering::Relaxed) {
            watch.forget();
            continue;
        }
        let ours = consumer.assignment().unwrap_or_default();
        let checked = tokio::task::spawn_blocking(move || {
            let orphaned = watch.orphaned(&ours, std::time::Instant::now());
            (watch, orphaned)
        })
        .await;
        let Ok((returned, orphaned)) = checked else {
            return;
        };
        watch = returned;
        if !orphaned.is_empty() {
            tracing::warn!(%group, partitions = %orphaned.join(","), "partitions unread by the group: rejoining it");
            watch.forget();
            rejoin.notify_one();
        }
    }
}

/// Where unreadable messages go, with why. The record names the message (topic, partition,
/// offset) instead of copying it: a malformed message may hold anything, secrets included.
#[derive(Clone)]
pub struct DeadLetters {
    publisher: Arc<dyn EventPublisher>,
    topic: String,
}

/// One dead-letter record.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub source_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub consumer_group: String,
    pub reason: String,
    pub payload_bytes: usize,
    pub dead_lettered_at: chrono::DateTime<Utc>,
}

impl DeadLetters {
    pub fn new(publisher: Arc<dyn EventPublisher>, topic: String) -> Self {
        Self { publisher, topic }
    }

    pub async fn send(
        &self,
        group: &str,
        message: &IncomingMessage<'_>,
        reason: &str,
    ) -> Result<(), PublishError> {
        let record = DeadLetter {
            source_topic: message.topic.to_owned(),
            partition: message.partition,
            offset: message.offset,
            consumer_group: group.to_owned(),
            reason: reason.to_owned(),
            payload_bytes: message.payload.len(),
            dead_lettered_at: Utc::now(),
        };
        let key = format!("{}/{}/{}", message.topic, message.partition, message.offset);
        #[expect(
            clippy::expect_used,
            reason = "a dead letter is plain data with string keys: serde_json cannot fail on it"
        )]
        let payload = serde_json::to_vec(&record).expect("dead letters serialise");
        self.publisher
            .publish_bytes(&self.topic, &key, &payload)
            .await
    }
}
