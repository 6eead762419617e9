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

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::housekeeping::Sweep;
use mfa_bus::EventPublisher;
use mfa_runtime::shutdown::Shutdown;
use shared::events::Envelope;

const CHANNEL: &str = "outbox";
const BATCH: i64 = 200;
/// A relay also looks without a notification this often (a missed one, another replica's).
const POLL: Duration = Duration::from_millis(500);

/// Writes `envelope` for `topic` into the outbox, inside the caller's transaction.
pub async fn enqueue(
    tx: &mut PgConnection,
    producer: &str,
    topic: &str,
    key: &str,
    envelope: &Envelope,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (event_id, producer, topic, key, payload) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(envelope.event_id)
    .bind(producer)
    .bind(topic)
    .bind(key)
    .bind(envelope.to_json())
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
}

impl OutboxRelay {
    /// Publishes until `shutdown`, then once more, so what was committed before the signal
    /// leaves with the process.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut listener = self.listen().await;
        loop {
            self.publish_all().await;
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
        let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, topic, key, payload FROM outbox
             WHERE producer = $1 AND published_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(self.producer)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut published = Vec::with_capacity(rows.len());
        let mut failure = None;
        for (id, topic, key, payload) in rows {
            match self.publisher.publish_bytes(&topic, &key, &payload).await {
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
        match failure {
            Some(error) => Err(RelayError::Publish(error)),
            None => Ok(published.len()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("publish")]
    Publish(#[from] mfa_bus::PublishError),
}
