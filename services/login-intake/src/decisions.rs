//! Decisions come back over Kafka to whichever login-intake replica's consumer gets them; that
//! replica stores them and, in the same transaction, NOTIFYs `login_decided`. Every replica
//! LISTENs, so the one holding the waiting request wakes up at once, without polling.
//!
//! Every attempt reaches a final state (issue 11.3). An `mfa_required` one stays so only while
//! its code can still be used: once its challenge is passed (on this attempt or another that
//! was given the same challenge) it is `approved`, and once it is locked, expired,
//! superseded, revoked or its email given up it is `rejected` with that reason. The
//! verifier's events settle it in `login_attempts` for every attempt of the challenge; what no
//! event reports (expiry, a newer code, an account change, a lost email) is read with the
//! challenge when the answer is made (`settle`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mfa_bus::{EventHandler, HandlerError};
use shared::domain::{AttemptId, ChallengeId, CompanyId, UserId};
use shared::events::{Envelope, Event, MfaFailureReason};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::store::{ChallengeNow, IntakeStore, StoredDecision};

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
            // The attempt the challenge was issued for, and every other one still waiting on
            // the same challenge (given it with `code_recently_sent`): passing the code
            // approves them all.
            Event::LoginApproved(approved) if approved.approved_after_mfa => sqlx::query(
                "UPDATE login_attempts SET status = 'approved', approved_after_mfa = TRUE, decided_at = $2
                 WHERE attempt_id = $1 OR (challenge_id = $3 AND status = 'mfa_required')",
            )
            .bind(attempt)
            .bind(envelope.occurred_at)
            .bind(approved.challenge_id.map(|c| c.as_uuid())),
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
                "INSERT INTO login_attempts (attempt_id, user_id, status, reason, decided_at, retry_at)
                 VALUES ($1, $2, 'rejected', $3, $4, $5)
                 ON CONFLICT (attempt_id) DO UPDATE SET status = 'rejected', reason = $3, decided_at = $4,
                   retry_at = $5
                 WHERE login_attempts.status IS NULL",
            )
            .bind(attempt)
            .bind(rejected.user_id.map(|u| u.as_uuid()))
            .bind(rejected.reason.as_str())
            .bind(envelope.occurred_at)
            // The wait counts from the decision, whose time the event carries.
            .bind(rejected.retry_after_secs.map(|secs| {
                shared::time::saturating_add(envelope.occurred_at, Duration::from_secs(secs))
            })),
            // A challenge that can no longer be passed ends every attempt still waiting on it.
            Event::MfaFailed(failed) => {
                let Some(reason) = ClosedReason::of_failure(failed.reason) else {
                    return Err(HandlerError::Skip("a wrong code leaves the challenge open".into()));
                };
                sqlx::query(
                    "UPDATE login_attempts SET status = 'rejected', reason = $2, decided_at = $3
                     WHERE challenge_id = $1 AND status = 'mfa_required'",
                )
                .bind(failed.challenge_id.as_uuid())
                .bind(reason.as_str())
                .bind(envelope.occurred_at)
            }
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

/// Why an attempt that asked for a code was rejected afterwards: its code can no longer be
/// used. Stable machine-readable reasons, as `reason` in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedReason {
    /// Too many wrong codes: the challenge is locked.
    CodeLocked,
    /// The code's time ran out before it was passed.
    CodeExpired,
    /// A newer code was emailed to the account.
    Superseded,
    /// The account was changed while the code was pending (password changed, disabled).
    Revoked,
    /// The code's email could not be sent.
    CodeDeliveryFailed,
}

impl ClosedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedReason::CodeLocked => "code_locked",
            ClosedReason::CodeExpired => "code_expired",
            ClosedReason::Superseded => "superseded",
            ClosedReason::Revoked => "revoked",
            ClosedReason::CodeDeliveryFailed => "code_delivery_failed",
        }
    }

    /// The verifier's refusal that ends the challenge; None for a wrong code, after which
    /// it still takes the next try.
    pub fn of_failure(reason: MfaFailureReason) -> Option<Self> {
        match reason {
            MfaFailureReason::InvalidCode => None,
            MfaFailureReason::TooManyAttempts => Some(ClosedReason::CodeLocked),
            MfaFailureReason::Expired => Some(ClosedReason::CodeExpired),
            MfaFailureReason::Superseded => Some(ClosedReason::Superseded),
            MfaFailureReason::Revoked => Some(ClosedReason::Revoked),
        }
    }

    fn rejected(self) -> StoredDecision {
        StoredDecision::Rejected {
            reason: self.as_str().into(),
            retry_at: None,
        }
    }
}

/// The answer about an attempt at `now`: its stored decision, unless it is `mfa_required` and
/// its challenge (as the code worker and the verifier left it) can no longer be passed. The
/// challenge's own state comes first, then its expiry, as the verifier judges a try.
pub fn settle(
    stored: StoredDecision,
    challenge: Option<ChallengeNow>,
    now: DateTime<Utc>,
) -> StoredDecision {
    let StoredDecision::MfaRequired { expires_at, .. } = stored else {
        return stored;
    };
    let closed = match challenge {
        // Passed on this attempt or on another given the same challenge, before the
        // verifier's approval reached this table.
        Some(ChallengeNow::Used) => return StoredDecision::Approved { after_mfa: true },
        Some(ChallengeNow::Locked) => ClosedReason::CodeLocked,
        Some(ChallengeNow::Superseded) => ClosedReason::Superseded,
        Some(ChallengeNow::Revoked) => ClosedReason::Revoked,
        Some(ChallengeNow::Undelivered) => ClosedReason::CodeDeliveryFailed,
        // Not stored yet (the code worker is a Kafka hop behind), pending, or pruned.
        Some(ChallengeNow::Pending) | None if now >= expires_at => ClosedReason::CodeExpired,
        Some(ChallengeNow::Pending) | None => return stored,
    };
    closed.rejected()
}

/// Whole seconds from `now` until `retry_at`, rounded up so a client that waits that long is
/// not refused again; 0 once it has passed.
pub fn seconds_until(retry_at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let millis = u64::try_from((retry_at - now).num_milliseconds()).unwrap_or(0);
    millis.div_ceil(1000)
}

/// The answer about an attempt at `now` (None: no such attempt for `company`).
pub async fn read(
    store: &IntakeStore,
    attempt_id: AttemptId,
    company: &CompanyId,
    now: DateTime<Utc>,
) -> Result<Option<StoredDecision>, sqlx::Error> {
    Ok(store
        .decision(attempt_id, company)
        .await?
        .map(|(stored, challenge)| settle(stored, challenge, now)))
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
                read(store, attempt_id, company, Utc::now()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(now: DateTime<Utc>) -> StoredDecision {
        StoredDecision::MfaRequired {
            challenge_id: ChallengeId::from_uuid(uuid::Uuid::from_u128(7)),
            expires_at: now + chrono::Duration::minutes(10),
            code_recently_sent: true,
        }
    }

    fn rejected(reason: ClosedReason) -> StoredDecision {
        StoredDecision::Rejected {
            reason: reason.as_str().into(),
            retry_at: None,
        }
    }

    #[test]
    fn an_attempt_waits_only_while_its_code_can_be_used() {
        let now = Utc::now();
        for challenge in [None, Some(ChallengeNow::Pending)] {
            assert_eq!(settle(waiting(now), challenge, now), waiting(now));
        }
        for (challenge, reason) in [
            (ChallengeNow::Locked, ClosedReason::CodeLocked),
            (ChallengeNow::Superseded, ClosedReason::Superseded),
            (ChallengeNow::Revoked, ClosedReason::Revoked),
            (ChallengeNow::Undelivered, ClosedReason::CodeDeliveryFailed),
        ] {
            assert_eq!(
                settle(waiting(now), Some(challenge), now),
                rejected(reason),
                "{challenge:?}"
            );
        }
        // Passed, on this attempt or on another given the same challenge.
        assert_eq!(
            settle(waiting(now), Some(ChallengeNow::Used), now),
            StoredDecision::Approved { after_mfa: true }
        );
    }

    #[test]
    fn expiry_ends_a_waiting_attempt_at_its_instant_and_a_closed_challenge_says_why() {
        let now = Utc::now();
        let decision = waiting(now);
        let StoredDecision::MfaRequired { expires_at, .. } = decision else {
            unreachable!()
        };
        let just_before = expires_at - chrono::Duration::milliseconds(1);
        assert_eq!(settle(decision.clone(), None, just_before), decision);
        for challenge in [None, Some(ChallengeNow::Pending)] {
            assert_eq!(
                settle(decision.clone(), challenge, expires_at),
                rejected(ClosedReason::CodeExpired)
            );
        }
        // Locked before it expired: the lock is the reason, as a try would be told.
        assert_eq!(
            settle(decision.clone(), Some(ChallengeNow::Locked), expires_at),
            rejected(ClosedReason::CodeLocked)
        );
        assert_eq!(
            settle(decision, Some(ChallengeNow::Used), expires_at),
            StoredDecision::Approved { after_mfa: true }
        );
    }

    #[test]
    fn a_decided_attempt_keeps_its_decision() {
        let now = Utc::now();
        let later = now + chrono::Duration::days(1);
        for decided in [
            StoredDecision::Pending,
            StoredDecision::Approved { after_mfa: false },
            rejected(ClosedReason::CodeLocked),
            StoredDecision::Rejected {
                reason: "too_many_codes".into(),
                retry_at: Some(now),
            },
        ] {
            assert_eq!(
                settle(decided.clone(), Some(ChallengeNow::Used), later),
                decided
            );
        }
    }

    #[test]
    fn only_a_challenge_ending_refusal_closes_the_attempts() {
        assert_eq!(
            ClosedReason::of_failure(MfaFailureReason::InvalidCode),
            None
        );
        assert_eq!(
            ClosedReason::of_failure(MfaFailureReason::TooManyAttempts),
            Some(ClosedReason::CodeLocked)
        );
        assert_eq!(
            ClosedReason::of_failure(MfaFailureReason::Expired),
            Some(ClosedReason::CodeExpired)
        );
    }

    #[test]
    fn the_wait_is_whole_seconds_rounded_up_and_none_once_passed() {
        let now = Utc::now();
        let ms = chrono::Duration::milliseconds;
        assert_eq!(seconds_until(now + ms(3_300_000), now), 3300);
        assert_eq!(seconds_until(now + ms(1), now), 1);
        assert_eq!(seconds_until(now + ms(1001), now), 2);
        assert_eq!(seconds_until(now, now), 0);
        assert_eq!(seconds_until(now - ms(5000), now), 0);
    }
}
