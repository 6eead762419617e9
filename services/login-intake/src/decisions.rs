//! Decisions come back over Kafka to whichever login-intake replica's consumer gets them; that
//! replica stores them and, in the same transaction, NOTIFYs `login_decided`. Every replica
//! LISTENs, so the one holding the waiting request wakes up at once, without polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mfa_bus::{EventHandler, HandlerError};
use shared::domain::{AttemptId, ChallengeId, CompanyId, UserId};
use shared::events::{Envelope, Event};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::store::{IntakeStore, StoredDecision};

const CHANNEL: &str = "login_decided";

/// Stores risk decisions (and final approvals after MFA) in `login_attempts`.
pub struct DecisionRecorder {
    pub pool: PgPool,
}

#[async_trait]
impl EventHandler for DecisionRecorder {
    async fn handle(&self, envelope: Envelope, _key: &str) -> Result<(), HandlerError> {
        let attempt = envelope.attempt_id.as_uuid();
        let mut tx = self.pool.begin().await?;
        // Only the first risk decision counts (redeliveries change nothing); the verifier's
        // approval after MFA then upgrades an `mfa_required`.
        let query = match &envelope.event {
            Event::LoginApproved(approved) if approved.approved_after_mfa => sqlx::query(
                "UPDATE login_attempts SET status = 'approved', approved_after_mfa = TRUE, decided_at = $2
                 WHERE attempt_id = $1",
            )
            .bind(attempt)
            .bind(envelope.occurred_at),
            Event::LoginApproved(approved) => sqlx::query(
                "INSERT INTO login_attempts (attempt_id, user_id, status, decided_at) VALUES ($1, $2, 'approved', $3)
                 ON CONFLICT (attempt_id) DO UPDATE SET status = 'approved', decided_at = $3
                 WHERE login_attempts.status IS NULL",
            )
            .bind(attempt)
            .bind(approved.user_id.as_uuid())
            .bind(envelope.occurred_at),
            Event::MfaRequired(required) => mfa_required(
                attempt,
                required.user_id,
                required.challenge_id,
                required.expires_at,
                false,
                envelope.occurred_at,
            ),
            // No new email: the answer names the pending challenge, whose code is on its way
            // or already in the inbox.
            Event::CodeThrottled(throttled) => mfa_required(
                attempt,
                throttled.user_id,
                throttled.challenge_id,
                throttled.expires_at,
                true,
                envelope.occurred_at,
            ),
            Event::LoginRejected(rejected) => sqlx::query(
                "INSERT INTO login_attempts (attempt_id, user_id, status, reason, decided_at)
                 VALUES ($1, $2, 'rejected', $3, $4)
                 ON CONFLICT (attempt_id) DO UPDATE SET status = 'rejected', reason = $3, decided_at = $4
                 WHERE login_attempts.status IS NULL",
            )
            .bind(attempt)
            .bind(rejected.user_id.map(|u| u.as_uuid()))
            .bind(rejected.reason.as_str())
            .bind(envelope.occurred_at),
            other => return Err(HandlerError::Skip(format!("{} is not a decision", other.event_type()))),
        };
        query.execute(&mut *tx).await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(envelope.attempt_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn mfa_required(
    attempt: uuid::Uuid,
    user_id: UserId,
    challenge_id: ChallengeId,
    expires_at: DateTime<Utc>,
    code_recently_sent: bool,
    decided_at: DateTime<Utc>,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(
        "INSERT INTO login_attempts
           (attempt_id, user_id, status, challenge_id, expires_at, code_recently_sent, decided_at)
         VALUES ($1, $2, 'mfa_required', $3, $4, $5, $6)
         ON CONFLICT (attempt_id) DO UPDATE
         SET status = 'mfa_required', challenge_id = $3, expires_at = $4, code_recently_sent = $5,
             decided_at = $6
         WHERE login_attempts.status IS NULL",
    )
    .bind(attempt)
    .bind(user_id.as_uuid())
    .bind(challenge_id.as_uuid())
    .bind(expires_at)
    .bind(code_recently_sent)
    .bind(decided_at)
}

const DECISION_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Requests waiting for their decision, woken by the `login_decided` notifications.
#[derive(Clone, Default)]
pub struct DecisionWaiters {
    waiting: Arc<Mutex<HashMap<AttemptId, Arc<Notify>>>>,
    /// Set at shutdown: requests stop waiting and answer with what is stored (`pending` when
    /// undecided), so the server drains in moments, not after a whole decision wait.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl DecisionWaiters {
    /// Wakes every waiting request for its final read; later ones do not wait at all.
    pub fn stop_waiting(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for notify in self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            notify.notify_one();
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn register(&self, attempt_id: AttemptId) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(attempt_id, Arc::clone(&notify));
        notify
    }

    fn forget(&self, attempt_id: AttemptId) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&attempt_id);
    }

    fn wake(&self, attempt_id: AttemptId) {
        if let Some(notify) = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&attempt_id)
        {
            // notify_one stores a permit, so a wake before the waiter sleeps is not lost.
            notify.notify_one();
        }
    }

    /// Runs `submit`, then waits up to `wait` for the attempt's decision. Registering before
    /// submitting means no notification can slip between the two.
    pub async fn submit_and_wait<F, E>(
        &self,
        store: &IntakeStore,
        attempt_id: AttemptId,
        company: &CompanyId,
        wait: Duration,
        submit: F,
    ) -> Result<StoredDecision, E>
    where
        F: std::future::Future<Output = Result<(), E>>,
        E: From<sqlx::Error>,
    {
        let notify = self.register(attempt_id);
        let _guard = ForgetOnDrop {
            waiters: self,
            attempt_id,
        };
        submit.await?;
        let wait = if self.is_stopping() {
            Duration::ZERO
        } else {
            wait
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let woken = tokio::time::timeout_at(deadline, notify.notified())
                .await
                .is_ok();
            // Read on every wake and once more at the deadline, in case a notification was
            // missed (e.g. while the listener reconnected).
            // The login is accepted: a database that hangs now makes the answer `pending`
            // (the client polls), never a hung request.
            let decision = match tokio::time::timeout(
                DECISION_READ_TIMEOUT,
                store.decision(attempt_id, company),
            )
            .await
            {
                Ok(read) => read?.unwrap_or(StoredDecision::Pending),
                Err(_) => return Ok(StoredDecision::Pending),
            };
            if decision != StoredDecision::Pending || !woken || self.is_stopping() {
                return Ok(decision);
            }
        }
    }

    /// Listens for `login_decided` until the process ends, reconnecting after errors.
    pub async fn listen(self, pool: PgPool) {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => {
                    if let Err(error) = listener.listen(CHANNEL).await {
                        tracing::warn!(%error, "LISTEN failed");
                    } else {
                        loop {
                            match listener.recv().await {
                                Ok(notification) => {
                                    if let Ok(attempt_id) = AttemptId::parse(notification.payload())
                                    {
                                        self.wake(attempt_id);
                                    }
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "decision listener lost its connection");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "decision listener cannot connect"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

struct ForgetOnDrop<'a> {
    waiters: &'a DecisionWaiters,
    attempt_id: AttemptId,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.waiters.forget(self.attempt_id);
    }
}
