//! The message bus: the small interfaces the services use to publish and receive messages,
//! and their Kafka implementation ([`kafka`]: an acknowledged, ordered producer, explicit
//! topic creation, a consumer that stores each offset only after its message was handled,
//! dead letters, and the [`group_watch`] that rejoins a group when a partition is orphaned).
//! A later single-binary mode can implement the interfaces in process.

pub mod group_watch;
pub mod kafka;
pub mod metrics;

use async_trait::async_trait;

use shared::audit::Seal;
use shared::events::{DecodeError, Envelope};

/// The cause of a failure, kept as a value so that logs show its whole chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("could not publish to {topic}")]
pub struct PublishError {
    pub topic: String,
    #[source]
    pub cause: Cause,
}

/// A message to publish. `traceparent` is the W3C trace context it continues (a Kafka
/// record header), so the consumer's span joins the producer's trace. `seal` is the event's
/// place in its producer's audit chain (the `mfa-seal` header, `shared::audit`): set by the
/// outbox relay on every event, absent on what is not an event (dead letters, checkpoints).
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
    pub topic: &'a str,
    pub key: &'a str,
    pub payload: &'a [u8],
    pub traceparent: Option<&'a str>,
    pub seal: Option<Seal>,
}

/// Publishes messages and returns once the broker acknowledged them: a caller may report work
/// as done only after `publish` returned `Ok`.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn send(&self, message: OutgoingMessage<'_>) -> Result<(), PublishError>;

    /// Publishes `messages` in their order and returns once each was acknowledged or failed;
    /// `Ok(())` when all were. An implementation may hand them all over at once, as long as
    /// the order holds within a partition and a failure fails the later messages of its
    /// partition, so what the caller takes as done, the messages before
    /// [`PartialSend::acknowledged`], is a prefix per partition.
    async fn send_all(&self, messages: &[OutgoingMessage<'_>]) -> Result<(), PartialSend> {
        for (index, message) in messages.iter().enumerate() {
            if let Err(error) = self.send(*message).await {
                return Err(PartialSend {
                    acknowledged: index,
                    error,
                });
            }
        }
        Ok(())
    }

    /// A message outside any login's trace (a dead letter).
    async fn publish_bytes(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        self.send(OutgoingMessage {
            topic,
            key,
            payload,
            traceparent: None,
            seal: None,
        })
        .await
    }

    /// An event, in the trace of the current span, outside any audit chain: for a test that
    /// stands in for a producer. The services publish their events through the outbox
    /// (`mfa_store::outbox`), whose relay seals each one.
    async fn publish(
        &self,
        topic: &str,
        key: &str,
        envelope: &Envelope,
    ) -> Result<(), PublishError> {
        let traceparent = mfa_runtime::trace_context::current_traceparent();
        self.send(OutgoingMessage {
            topic,
            key,
            payload: &envelope.to_json(),
            traceparent: traceparent.as_deref(),
            seal: None,
        })
        .await
    }
}

/// A [`EventPublisher::send_all`] that did not get every message through.
#[derive(Debug, thiserror::Error)]
#[error("{acknowledged} messages acknowledged before one failed")]
pub struct PartialSend {
    /// How many messages from the start were acknowledged before the first that failed.
    /// Some after it may have been delivered too: sending them again makes duplicates, never
    /// a gap (event ids make a repeat harmless downstream).
    pub acknowledged: usize,
    #[source]
    pub error: PublishError,
}

/// A message as received, before decoding.
#[derive(Debug, Clone, Copy)]
pub struct IncomingMessage<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// The producer's trace context, from the record's `traceparent` header.
    pub traceparent: Option<&'a str>,
}

/// What a handler could not do.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A dependency failed (database, broker, SMTP...): the same message is tried again
    /// later, and nothing after it in its partition is handled before it.
    #[error("transient failure")]
    Retry(#[source] Cause),
    /// The message can never be handled (malformed, violates a rule): it goes to the
    /// dead-letter topic with this reason and the consumer moves on.
    #[error("unprocessable message: {0}")]
    Reject(String),
    /// The message is of a kind this consumer does not handle: skipped.
    #[error("skipped: {0}")]
    Skip(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        HandlerError::Retry(Box::new(error))
    }
}

impl From<PublishError> for HandlerError {
    fn from(error: PublishError) -> Self {
        HandlerError::Retry(Box::new(error))
    }
}

/// Handles raw messages. Must be idempotent: delivery is at least once.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    async fn handle(&self, message: IncomingMessage<'_>) -> Result<(), HandlerError>;
}

/// Handles decoded events. Must be idempotent: delivery is at least once.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// `key` is the message's partition key (the user's, see `Envelope`), for the events the
    /// handler publishes in turn.
    async fn handle(&self, event: Envelope, key: &str) -> Result<(), HandlerError>;
}

/// Adapts an [`EventHandler`] to raw messages: malformed messages are rejected (dead-lettered),
/// event types this build does not know are skipped (a newer producer may have added them).
pub struct DecodingHandler<H>(pub H);

#[async_trait]
impl<H: EventHandler> MessageHandler for DecodingHandler<H> {
    async fn handle(&self, message: IncomingMessage<'_>) -> Result<(), HandlerError> {
        match Envelope::from_json(message.payload) {
            Ok(event) => {
                // The consumer's span declares the field: its log lines and its trace name
                // the login.
                tracing::Span::current()
                    .record("attempt_id", tracing::field::display(event.attempt_id));
                let key = message
                    .key
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .unwrap_or_default();
                self.0.handle(event, key).await
            }
            Err(error @ DecodeError::UnknownType(_)) => Err(HandlerError::Skip(error.to_string())),
            Err(error @ DecodeError::Malformed(_)) => Err(HandlerError::Reject(error.to_string())),
        }
    }
}
