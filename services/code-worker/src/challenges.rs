//! The challenges table, owned here. The verifier reads and updates the same rows (attempts,
//! status) through its own module.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use mfa_store::outbox;
use serde::{Deserialize, Serialize};
use shared::domain::{AttemptId, ChallengeId, CompanyId, Locale, Platform, UserAgent, UserId};
use shared::events::Envelope;
use sqlx::PgPool;
use uuid::Uuid;

use crate::consumer::PRODUCER;

#[derive(Clone)]
pub struct ChallengeStore {
    pool: PgPool,
}

pub struct NewChallenge {
    pub challenge_id: ChallengeId,
    pub attempt_id: AttemptId,
    pub user_id: UserId,
    pub company_id: CompanyId,
    pub code_hash: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub cause_event_id: Uuid,
    pub sealed_code: Vec<u8>,
    pub email: EmailContext,
    /// Past this the email is given up (`CodeDeliveryFailed`): well inside the code's life.
    pub give_up_at: DateTime<Utc>,
    /// When the `MfaRequired` happened: the email's delivery is timed from it.
    pub mfa_required_at: DateTime<Utc>,
}

impl ChallengeStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Stores the challenge with its pending email (sealed code, what the email says, when
    /// to give up), and makes the user's older pending challenges invalid, in one
    /// transaction. A challenge already stored (a redelivered `MfaRequired`) is left as it is:
    /// its email is the sender's job. The current span's trace context is kept with it: the
    /// sender's span for the email and the verifier's for each try continue the login's trace.
    pub async fn store(&self, challenge: &NewChallenge) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE challenges SET status = 'superseded', finished_at = now()
             WHERE user_id = $1 AND status = 'pending' AND challenge_id <> $2",
        )
        .bind(challenge.user_id.as_uuid())
        .bind(challenge.challenge_id.as_uuid())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO challenges
               (challenge_id, attempt_id, user_id, code_hash, expires_at, mfa_required_event_id,
                company_id, email_code_sealed, email_context, email_next_attempt_at,
                email_give_up_at, mfa_required_at, traceparent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), $10, $11, $12)
             ON CONFLICT (challenge_id) DO NOTHING",
        )
        .bind(challenge.challenge_id.as_uuid())
        .bind(challenge.attempt_id.as_uuid())
        .bind(challenge.user_id.as_uuid())
        .bind(&challenge.code_hash)
        .bind(challenge.expires_at)
        .bind(challenge.cause_event_id)
        .bind(challenge.company_id.as_str())
        .bind(&challenge.sealed_code)
        .bind(sqlx::types::Json(&challenge.email))
        .bind(challenge.give_up_at)
        .bind(challenge.mfa_required_at)
        .bind(mfa_runtime::trace_context::current_traceparent())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Takes up to `limit` emails that are due, for `lease`: another sender (a replica)
    /// skips them meanwhile, and takes them over if this one dies before recording. The
    /// recipient is read from login-intake's `users` table (the one read the code worker
    /// makes of it: the address must be the account's own, never the client's word).
    pub async fn claim_due_emails(
        &self,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<PendingEmail>, sqlx::Error> {
        let rows: Vec<PendingEmailRow> = sqlx::query_as(
            "UPDATE challenges c
             SET email_next_attempt_at = now() + make_interval(secs => $2),
                 email_attempts = c.email_attempts + 1
             FROM (SELECT challenge_id FROM challenges
                   WHERE email_code_sealed IS NOT NULL AND email_next_attempt_at <= now()
                   ORDER BY email_next_attempt_at
                   LIMIT $1 FOR UPDATE SKIP LOCKED) due
             WHERE c.challenge_id = due.challenge_id
             RETURNING c.challenge_id, c.attempt_id, c.user_id, c.expires_at,
                       c.mfa_required_event_id, c.email_code_sealed, c.email_context,
                       c.email_attempts, c.email_give_up_at, c.status, c.mfa_required_at,
                       c.traceparent,
                       (SELECT email FROM users u WHERE u.user_id = c.user_id) AS recipient",
        )
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(PendingEmailRow::parse)
            .collect())
    }

    /// The email went out (`sent`) or was given up: the outcome is recorded, the sealed code
    /// erased, and the outcome written into the outbox for `topic`, keyed by the user, in one
    /// transaction, in the current span's trace (the outbox relay publishes it). Only the
    /// sender holding the job records it. False when an outcome was recorded before (another
    /// sender's, after this one's lease ran out): nothing changed.
    pub async fn record_outcome(
        &self,
        challenge_id: ChallengeId,
        outcome: &Envelope,
        sent: bool,
        topic: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // `outcome_published_at`: handed to the outbox, in this transaction.
        let user: Option<Uuid> = sqlx::query_scalar(
            "UPDATE challenges SET outcome_event = $2, outcome_published_at = now(),
               email_sent_at = CASE WHEN $3 THEN now() ELSE email_sent_at END,
               email_code_sealed = NULL, email_next_attempt_at = NULL
             WHERE challenge_id = $1 AND outcome_event IS NULL
             RETURNING user_id",
        )
        .bind(challenge_id.as_uuid())
        .bind(sqlx::types::Json(outcome))
        .bind(sent)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else {
            return Ok(false);
        };
        outbox::enqueue(&mut tx, PRODUCER, topic, &user.to_string(), outcome).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes the outcome recorded for a challenge into the outbox again (a redelivered
    /// `MfaRequired`): a no-op while its row is still there (the same event id), a republish
    /// of the same event once the published row was pruned. False when no outcome is recorded.
    pub async fn enqueue_recorded_outcome(
        &self,
        challenge_id: ChallengeId,
        topic: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(Uuid, serde_json::Value)> = sqlx::query_as(
            "SELECT user_id, outcome_event FROM challenges
             WHERE challenge_id = $1 AND outcome_event IS NOT NULL",
        )
        .bind(challenge_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((user, json)) = row else {
            return Ok(false);
        };
        // Written by this service from an `Envelope`: one that does not read back is a row
        // edited by hand, announced as nothing rather than as garbage.
        let Ok(outcome) = serde_json::from_value::<Envelope>(json) else {
            tracing::error!(%challenge_id, "the recorded email outcome is not an event");
            return Ok(true);
        };
        outbox::enqueue(&mut tx, PRODUCER, topic, &user.to_string(), &outcome).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Hands the outcomes an older code worker recorded and did not publish (its own
    /// publishing loop, before the outbox) to the outbox, once, at start-up.
    pub async fn hand_unpublished_outcomes_to_outbox(
        &self,
        topic: &str,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(
            "UPDATE challenges SET outcome_published_at = now()
             WHERE outcome_event IS NOT NULL AND outcome_published_at IS NULL
             RETURNING user_id, outcome_event",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut handed = 0;
        for (user, json) in rows {
            if let Ok(outcome) = serde_json::from_value::<Envelope>(json) {
                outbox::enqueue(&mut tx, PRODUCER, topic, &user.to_string(), &outcome).await?;
                handed += 1;
            }
        }
        tx.commit().await?;
        Ok(handed)
    }

    /// A failed try: the next one at `next_attempt_at`.
    pub async fn retry_later(
        &self,
        challenge_id: ChallengeId,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE challenges SET email_next_attempt_at = $2, email_last_error = $3
             WHERE challenge_id = $1 AND email_code_sealed IS NOT NULL",
        )
        .bind(challenge_id.as_uuid())
        .bind(next_attempt_at)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// What the email says about the login, kept with the pending email.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailContext {
    pub platform: Platform,
    pub ip: IpAddr,
    pub user_agent: UserAgent,
    /// English for emails queued before the language was kept.
    #[serde(default)]
    pub locale: Locale,
}

/// A code email to send now.
#[derive(Debug, Clone)]
pub struct PendingEmail {
    pub challenge_id: ChallengeId,
    pub attempt_id: AttemptId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub cause_event_id: Uuid,
    pub sealed_code: Vec<u8>,
    pub context: EmailContext,
    /// This try's number, from 1.
    pub attempt: i32,
    pub give_up_at: DateTime<Utc>,
    /// Still `pending`: not used, locked or superseded meanwhile.
    pub still_pending: bool,
    /// The code was used: an earlier try's email arrived, though its outcome was not
    /// recorded (the database went away after the SMTP server accepted it).
    pub code_used: bool,
    /// None when the account is gone.
    pub recipient: Option<String>,
    /// None for a challenge stored before it was kept.
    pub mfa_required_at: Option<DateTime<Utc>>,
    /// The trace context of the span that stored the challenge.
    pub traceparent: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PendingEmailRow {
    challenge_id: Uuid,
    attempt_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    mfa_required_event_id: Uuid,
    email_code_sealed: Option<Vec<u8>>,
    email_context: Option<serde_json::Value>,
    email_attempts: i32,
    email_give_up_at: Option<DateTime<Utc>>,
    status: String,
    mfa_required_at: Option<DateTime<Utc>>,
    traceparent: Option<String>,
    recipient: Option<String>,
}

impl PendingEmailRow {
    fn parse(self) -> Option<PendingEmail> {
        Some(PendingEmail {
            challenge_id: ChallengeId::from_uuid(self.challenge_id),
            attempt_id: AttemptId::from_uuid(self.attempt_id),
            user_id: UserId::from_uuid(self.user_id),
            expires_at: self.expires_at,
            cause_event_id: self.mfa_required_event_id,
            sealed_code: self.email_code_sealed?,
            context: serde_json::from_value(self.email_context?).ok()?,
            attempt: self.email_attempts,
            give_up_at: self.email_give_up_at.unwrap_or(self.expires_at),
            still_pending: self.status == "pending",
            code_used: self.status == "used",
            recipient: self.recipient,
            mfa_required_at: self.mfa_required_at,
            traceparent: self.traceparent,
        })
    }
}

/// Admin changes to an account (`AccountChanged`). Each is idempotent.
impl ChallengeStore {
    /// The user's pending challenges stop working (password changed, account disabled); a
    /// verify then answers `revoked`, which says why and tells the user to log in again.
    pub async fn invalidate_pending(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE challenges SET status = 'revoked', finished_at = now()
             WHERE user_id = $1 AND status = 'pending'",
        )
        .bind(user_id.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user's challenges and notifications (they name the login's address and user
    /// agent) go with the account.
    pub async fn delete_user(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for table in ["challenges", "login_notifications"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user_id.as_uuid())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}
