//! The transactional outbox. Where a service changes its tables and announces the change,
//! both happen in one PostgreSQL transaction: `enqueue` writes the event beside the change,
//! and the service's `OutboxRelay` publishes it once committed. Nothing is announced that
//! did not happen, and nothing that happened goes unannounced.
//!
//! The relay is at least once (it can die between the broker's acknowledgement and marking
//! the row); the event id makes a repeat harmless downstream. One relay per producer works at
//! a time (an advisory lock), publishing in insertion order, so the events of one
//! transaction, and of one user, keep their order.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::housekeeping::Sweep;
use mfa_bus::{EventPublisher, OutgoingMessage};
use mfa_runtime::shutdown::Shutdown;
use shared::events::Envelope;

const CHANNEL: &str = "outbox";
const BATCH: i64 = 200;
/// A relay also looks without a notification this often (a missed one, another replica's).
const POLL: Duration = Duration::from_millis(500);
/// How often the backlog gauges are read (one indexed query).
const MEASURE_EVERY: Duration = Duration::from_secs(1);

/// Writes `envelope` for `topic` into the outbox, inside the caller's transaction, with the
/// current span's trace context, which the event carries on.
pub async fn enqueue(
    tx: &mut PgConnection,
    producer: &str,
    topic: &str,
    key: &str,
    envelope: &Envelope,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (event_id, producer, topic, key, payload, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(envelope.event_id)
    .bind(producer)
    .bind(topic)
    .bind(key)
    .bind(envelope.to_json())
    .bind(mfa_runtime::trace_context::current_traceparent())
    .execute(&mut *tx)
    .await?;
    // Delivered at commit, and only then.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(producer)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// How long a published row is kept (for inspection) before its producer prunes it.
pub const KEEP_PUBLISHED: Duration = Duration::from_secs(3600);

/// The pruning of one producer's published rows: `delete` is
/// `DELETE FROM outbox WHERE producer = '<producer>' AND published_at < $1`. Each service
/// prunes only its own rows, so a service that is down (or not deployed) keeps its rows for
/// inspection, and no service needs to know the others.
pub fn sweep(delete: &'static str) -> Sweep {
    Sweep {
        table: "outbox",
        delete,
        keep: KEEP_PUBLISHED,
    }
}

pub struct OutboxRelay {
    pub pool: PgPool,
    pub publisher: Arc<dyn EventPublisher>,
    /// The service whose rows this relay publishes.
    pub producer: &'static str,
    pub metrics: OutboxMetrics,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProducerLabels {
    producer: &'static str,
}

/// The backlog of a service's outbox: rows committed and not yet published, the age of the
/// oldest, and the rows published.
#[derive(Clone, Default)]
pub struct OutboxMetrics {
    pending: Family<ProducerLabels, Gauge>,
    oldest_age: Family<ProducerLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    published: Family<ProducerLabels, Counter>,
}

impl OutboxMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        mfa_metrics::register(
            registry,
            "mfa_outbox_pending_rows",
            "Outbox rows committed and not yet published",
            metrics.pending.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none)",
            metrics.oldest_age.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_outbox_published",
            "Outbox rows the relay published",
            metrics.published.clone(),
        );
        metrics
    }

    /// Sets the backlog gauges of `producer`: for a service whose events wait in a table of
    /// its own rather than in `outbox` (the code worker's email outcomes).
    pub fn set_backlog(&self, producer: &'static str, pending: i64, oldest_age_secs: f64) {
        let labels = ProducerLabels { producer };
        self.pending.get_or_create(&labels).set(pending);
        self.oldest_age
            .get_or_create(&labels)
            .set(oldest_age_secs.max(0.0));
    }

    /// Counts rows published by `producer` outside [`OutboxRelay`].
    pub fn count_published(&self, producer: &'static str, rows: u64) {
        self.published
            .get_or_create(&ProducerLabels { producer })
            .inc_by(rows);
    }
}

impl OutboxRelay {
    /// Publishes until `shutdown`, then once more, so what was committed before the signal
    /// leaves with the process.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut listener = self.listen().await;
        let mut measured_at: Option<std::time::Instant> = None;
        loop {
            self.publish_all().await;
            if measured_at.is_none_or(|at| at.elapsed() >= MEASURE_EVERY) {
                self.measure_backlog().await;
                measured_at = Some(std::time::Instant::now());
            }
            let notified = async {
                match listener.as_mut() {
                    Some(listener) => listener.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = notified => {
                    if received.is_err() {
                        listener = self.listen().await;
                    }
                }
                _ = tokio::time::sleep(POLL) => {
                    if listener.is_none() {
                        listener = self.listen().await;
                    }
                }
                _ = shutdown.wait() => break,
            }
        }
        self.publish_all().await;
    }

    /// Reads the backlog gauges; a failed read (database down) leaves them as they were.
    async fn measure_backlog(&self) {
        let backlog: Result<(i64, f64), sqlx::Error> = sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
             FROM outbox WHERE producer = $1 AND published_at IS NULL",
        )
        .bind(self.producer)
        .fetch_one(&self.pool)
        .await;
        if let Ok((pending, oldest)) = backlog {
            self.metrics.set_backlog(self.producer, pending, oldest);
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(CHANNEL).await.ok()?;
        Some(listener)
    }

    async fn publish_all(&self) {
        loop {
            match self.publish_batch().await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        producer = self.producer,
                        "outbox relay: will retry"
                    );
                    return;
                }
            }
        }
    }

    /// Publishes up to a batch of rows in order; returns how many went out.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('outbox:' || $1))")
            .bind(self.producer)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, topic, key, payload, traceparent FROM outbox
             WHERE producer = $1 AND published_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(self.producer)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut published = Vec::with_capacity(rows.len());
        let mut failure = None;
        for (id, topic, key, payload, traceparent) in rows {
            let message = OutgoingMessage {
                topic: &topic,
                key: &key,
                payload: &payload,
                traceparent: traceparent.as_deref(),
            };
            match self.publisher.send(message).await {
                Ok(()) => published.push(id),
                Err(error) => {
                    // Later rows wait: they must not overtake this one.
                    failure = Some(error);
                    break;
                }
            }
        }
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&published)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.metrics
            .count_published(self.producer, published.len() as u64);
        match failure {
            Some(error) => Err(RelayError::Publish(error)),
            None => Ok(published.len()),
        }
    }
}

/// id, topic, key, payload, traceparent.
type OutboxRow = (i64, String, String, Vec<u8>, Option<String>);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("publish")]
    Publish(#[from] mfa_bus::PublishError),
}
