//! The transactional outbox. Where a service changes its tables and announces the change,
//! both happen in one PostgreSQL transaction: `enqueue` writes the event beside the change,
//! and the service's `OutboxRelay` publishes it once committed. Nothing is announced that
//! did not happen, and nothing that happened goes unannounced.
//!
//! The relay is at least once (it can die between the broker's acknowledgement and marking
//! the row); the event id makes a repeat harmless downstream. One relay per producer works at
//! a time (an advisory lock), publishing in insertion order, so the events of one
//! transaction, and of one user, keep their order.
//!
//! The relay also keeps the producer's audit chain ([`crate::audit_chain`], `shared::audit`):
//! it seals each row (its seq in the chain, the chain's head advanced over the row's exact
//! topic, key and payload) and commits that before sending the row with the `mfa-seal`
//! header; once every sealed row was acknowledged, it signs checkpoints of the head (at most
//! every 200 ms while events flow, and on its last pass at shutdown) onto the
//! audit-checkpoints topic.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::audit_chain::CHECKPOINT_INTERVAL;
use crate::audit_chain::{self, ChainError, CorruptChain};
use crate::housekeeping::Sweep;
use chrono::{DateTime, Utc};
use mfa_bus::{EventPublisher, OutgoingMessage};
use mfa_runtime::shutdown::Shutdown;
use shared::audit::{AuditSigner, Checkpoint, Seal};
use shared::events::Envelope;
use uuid::Uuid;

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
    /// The service whose rows this relay publishes, and whose audit chain it extends.
    pub producer: &'static str,
    /// The producer's key: the relay signs the chain's checkpoints with it.
    pub signer: AuditSigner,
    /// Where checkpoints go (`Topics::audit_checkpoints`).
    pub checkpoints_topic: String,
    pub metrics: OutboxMetrics,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProducerLabels {
    producer: &'static str,
}

/// The backlog of a service's outbox: rows committed and not yet published, the age of the
/// oldest, the rows published, and the checkpoints of its audit chain signed.
#[derive(Clone, Default)]
pub struct OutboxMetrics {
    pending: Family<ProducerLabels, Gauge>,
    oldest_age: Family<ProducerLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    published: Family<ProducerLabels, Counter>,
    checkpoints_signed: Family<ProducerLabels, Counter>,
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
        mfa_metrics::register(
            registry,
            "mfa_audit_checkpoints_signed",
            "Checkpoints of the producer's audit chain signed and published",
            metrics.checkpoints_signed.clone(),
        );
        metrics
    }

    fn set_backlog(&self, producer: &'static str, pending: i64, oldest_age_secs: f64) {
        let labels = ProducerLabels { producer };
        self.pending.get_or_create(&labels).set(pending);
        self.oldest_age
            .get_or_create(&labels)
            .set(oldest_age_secs.max(0.0));
    }

    fn count_published(&self, producer: &'static str, rows: u64) {
        self.published
            .get_or_create(&ProducerLabels { producer })
            .inc_by(rows);
    }

    fn count_checkpoint(&self, producer: &'static str) {
        self.checkpoints_signed
            .get_or_create(&ProducerLabels { producer })
            .inc();
    }
}

impl OutboxRelay {
    /// Publishes until `shutdown`, then once more, so what was committed before the signal
    /// leaves with the process, and its last checkpoint covers all of it.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut listener = self.listen().await;
        let mut measured_at: Option<std::time::Instant> = None;
        let mut checked_at: Option<std::time::Instant> = None;
        loop {
            // A checkpoint is due at most every `CHECKPOINT_INTERVAL`: while events flow,
            // the passes between two looks skip the chain's transaction (five round trips).
            let look = checked_at.is_none_or(|at| at.elapsed() >= CHECKPOINT_INTERVAL);
            let tail_uncovered = if look {
                checked_at = Some(std::time::Instant::now());
                self.pass(false).await
            } else {
                self.publish_all().await;
                true
            };
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
                // Also the clock of the checkpoints: entries a checkpoint was not yet due to
                // cover are covered as soon as it is, so an auditor reading the log a moment
                // after the last event finds it covered.
                _ = tokio::time::sleep(if tail_uncovered { CHECKPOINT_INTERVAL } else { POLL }) => {
                    if listener.is_none() {
                        listener = self.listen().await;
                    }
                }
                _ = shutdown.wait() => break,
            }
        }
        self.pass(true).await;
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

    /// Publishes what is waiting, then signs a checkpoint if one is due (`closing`: the last
    /// pass, which covers whatever is left). Failures are logged: the next pass retries.
    /// True when entries are left uncovered (a checkpoint was not yet due, or failed).
    async fn pass(&self, closing: bool) -> bool {
        if !self.publish_all().await {
            return false;
        }
        match self.checkpoint_if_due(Utc::now(), closing).await {
            Ok(Covered::Yes) => false,
            Ok(Covered::NotYet) => true,
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    producer = self.producer,
                    "outbox relay: checkpoint will be retried"
                );
                true
            }
        }
    }

    /// True when everything was published.
    async fn publish_all(&self) -> bool {
        loop {
            match self.publish_batch().await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => return true,
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        producer = self.producer,
                        "outbox relay: will retry"
                    );
                    return false;
                }
            }
        }
    }

    /// Seals up to a batch of new rows, then publishes up to a batch of sealed ones in seq
    /// order; returns how many went out.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        self.seal_batch().await?;
        self.publish_sealed().await
    }

    /// Takes the lock that makes this relay the producer's only one for the transaction.
    async fn lock(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('outbox:' || $1))")
            .bind(self.producer)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Gives up to a batch of unsealed rows, in insertion order, their place in the chain,
    /// and commits it with the chain's new head before any of them is sent: whatever later
    /// sends a row (this relay, a replica, the next run after a crash) sends it under the
    /// same seal. Returns how many were sealed.
    pub async fn seal_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        self.lock(&mut tx).await?;
        let rows: Vec<UnsealedRow> = sqlx::query_as(
            "SELECT id, topic, key, payload FROM outbox
             WHERE producer = $1 AND published_at IS NULL AND seal_seq IS NULL
             ORDER BY id LIMIT $2",
        )
        .bind(self.producer)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let mut chain = audit_chain::load_or_start(&mut tx, self.producer).await?;
        let (ids, seqs): (Vec<i64>, Vec<i64>) = rows
            .iter()
            .map(|(id, topic, key, payload)| {
                let seal = chain.seal(topic, key.as_bytes(), payload);
                (*id, i64::try_from(seal.seq).unwrap_or(i64::MAX))
            })
            .unzip();
        sqlx::query(
            "UPDATE outbox o SET seal_chain = $1, seal_seq = s.seq
             FROM UNNEST($2::bigint[], $3::bigint[]) AS s(id, seq) WHERE o.id = s.id",
        )
        .bind(chain.chain_id)
        .bind(&ids)
        .bind(&seqs)
        .execute(&mut *tx)
        .await?;
        audit_chain::store_head(&mut tx, self.producer, &chain).await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Publishes up to a batch of sealed rows in seq order, all in flight at once (the
    /// publisher keeps their order within a partition, so per partition the seqs rise with
    /// the offsets); returns how many went out.
    async fn publish_sealed(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        self.lock(&mut tx).await?;
        let rows: Vec<SealedRow> = sqlx::query_as(
            "SELECT id, topic, key, payload, traceparent, seal_chain, seal_seq FROM outbox
             WHERE producer = $1 AND published_at IS NULL AND seal_seq IS NOT NULL
             ORDER BY seal_seq LIMIT $2",
        )
        .bind(self.producer)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let messages = rows
            .iter()
            .map(|row| {
                Ok(OutgoingMessage {
                    topic: &row.topic,
                    key: &row.key,
                    payload: &row.payload,
                    traceparent: row.traceparent.as_deref(),
                    seal: Some(row.seal()?),
                })
            })
            .collect::<Result<Vec<_>, CorruptChain>>()?;
        // Only the rows before the first failure are marked. Those after it go again, even
        // ones the broker took: copies under the same seal, which the audit and the
        // consumers take as repeats. Which partition each went to need not be known.
        let (acknowledged, failure) = match self.publisher.send_all(&messages).await {
            Ok(()) => (rows.len(), None),
            Err(partial) => (partial.acknowledged, Some(partial.error)),
        };
        let published: Vec<i64> = rows[..acknowledged].iter().map(|row| row.id).collect();
        // Not waited on to disk: a mark lost to a database crash only sends its rows again,
        // as a relay that dies between the acknowledgement and the mark does.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
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

    /// Signs and publishes a checkpoint of the chain's head if one is due at `now`
    /// (`closing`: whenever entries are uncovered). Only once every sealed row was
    /// acknowledged: a checkpoint never covers an entry the broker may not have. A crash
    /// after the send and before the record sends an identical-seq checkpoint again later,
    /// which an auditor takes as a repeat. Returns the checkpoint sent.
    pub async fn checkpoint(
        &self,
        now: DateTime<Utc>,
        closing: bool,
    ) -> Result<Option<Checkpoint>, RelayError> {
        Ok(self.sign_if_due(now, closing).await?.0)
    }

    async fn checkpoint_if_due(
        &self,
        now: DateTime<Utc>,
        closing: bool,
    ) -> Result<Covered, RelayError> {
        Ok(self.sign_if_due(now, closing).await?.1)
    }

    /// The checkpoint sent, if one was due, and whether the chain is now covered.
    async fn sign_if_due(
        &self,
        now: DateTime<Utc>,
        closing: bool,
    ) -> Result<(Option<Checkpoint>, Covered), RelayError> {
        let mut tx = self.pool.begin().await?;
        self.lock(&mut tx).await?;
        let unacknowledged: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox
             WHERE producer = $1 AND published_at IS NULL AND seal_seq IS NOT NULL)",
        )
        .bind(self.producer)
        .fetch_one(&mut *tx)
        .await?;
        let chain = match audit_chain::load(&mut tx, self.producer).await? {
            Some(chain) if !unacknowledged && chain.checkpoint_due(now, closing) => chain,
            other => {
                tx.commit().await?;
                let uncovered = unacknowledged || other.is_some_and(|chain| chain.uncovered() > 0);
                let covered = if uncovered {
                    Covered::NotYet
                } else {
                    Covered::Yes
                };
                return Ok((None, covered));
            }
        };
        let checkpoint = self.signer.checkpoint(chain.chain_id, &chain.head, now);
        let key = chain.chain_id.to_string();
        self.publisher
            .send(OutgoingMessage {
                topic: &self.checkpoints_topic,
                key: &key,
                payload: &checkpoint.to_json(),
                traceparent: None,
                seal: None,
            })
            .await?;
        audit_chain::store_checkpoint(&mut tx, self.producer, checkpoint.seq, checkpoint.signed_at)
            .await?;
        tx.commit().await?;
        self.metrics.count_checkpoint(self.producer);
        tracing::debug!(
            producer = self.producer,
            seq = checkpoint.seq,
            "audit checkpoint signed"
        );
        Ok((Some(checkpoint), Covered::Yes))
    }
}

/// Whether every entry of the chain is covered by a checkpoint after a pass.
enum Covered {
    Yes,
    NotYet,
}

/// id, topic, key, payload.
type UnsealedRow = (i64, String, String, Vec<u8>);

#[derive(sqlx::FromRow)]
struct SealedRow {
    id: i64,
    topic: String,
    key: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
    seal_chain: Uuid,
    seal_seq: i64,
}

impl SealedRow {
    fn seal(&self) -> Result<Seal, CorruptChain> {
        match u64::try_from(self.seal_seq) {
            Ok(seq) if seq > 0 => Ok(Seal {
                chain_id: self.seal_chain,
                seq,
            }),
            _ => Err(CorruptChain {
                producer: format!("outbox row {}", self.id),
                what: "a seal seq below 1",
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("publish")]
    Publish(#[from] mfa_bus::PublishError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Corrupt(#[from] CorruptChain),
}
