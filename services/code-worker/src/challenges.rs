//! The challenges table, owned here. The verifier reads and updates the same rows (attempts,
//! status) through its own module.

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, ChallengeId, CompanyId, UserId};
use shared::events::Envelope;
use sqlx::PgPool;
use uuid::Uuid;

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
}

impl ChallengeStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// What came of this challenge's email (`CodeSent` / `CodeDeliveryFailed`), if it was
    /// handled before.
    pub async fn outcome(
        &self,
        challenge_id: ChallengeId,
    ) -> Result<Option<Envelope>, sqlx::Error> {
        let row: Option<(Option<serde_json::Value>,)> =
            sqlx::query_as("SELECT outcome_event FROM challenges WHERE challenge_id = $1")
                .bind(challenge_id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .and_then(|(json,)| json)
            .and_then(|json| serde_json::from_value(json).ok()))
    }

    /// The account's address. Reads login-intake's `users` table (the one read the code worker
    /// makes of it: the recipient must be the account's own address, never the client's word).
    pub async fn recipient(&self, user_id: UserId) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT email FROM users WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
    }

    /// Stores the challenge, and makes the user's older pending challenges invalid. When the
    /// challenge exists but its email never went out (a crash before sending), the new code
    /// replaces the old one, which nobody has seen.
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
               (challenge_id, attempt_id, user_id, code_hash, expires_at, mfa_required_event_id, company_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (challenge_id) DO UPDATE SET code_hash = EXCLUDED.code_hash
             WHERE challenges.email_sent_at IS NULL AND challenges.outcome_event IS NULL",
        )
        .bind(challenge.challenge_id.as_uuid())
        .bind(challenge.attempt_id.as_uuid())
        .bind(challenge.user_id.as_uuid())
        .bind(&challenge.code_hash)
        .bind(challenge.expires_at)
        .bind(challenge.cause_event_id)
        .bind(challenge.company_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Records the email's outcome; `sent` sets `email_sent_at`.
    pub async fn record_outcome(
        &self,
        challenge_id: ChallengeId,
        outcome: &Envelope,
        sent: bool,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE challenges SET outcome_event = $2,
               email_sent_at = CASE WHEN $3 THEN now() ELSE email_sent_at END
             WHERE challenge_id = $1",
        )
        .bind(challenge_id.as_uuid())
        .bind(serde_json::to_value(outcome).expect("events serialise"))
        .bind(sent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Admin changes to an account (`AccountChanged`). Each is idempotent.
impl ChallengeStore {
    /// The user's pending challenges stop working (password changed, account disabled); a
    /// verify then answers `superseded`, which tells the user to log in again.
    pub async fn invalidate_pending(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE challenges SET status = 'superseded', finished_at = now()
             WHERE user_id = $1 AND status = 'pending'",
        )
        .bind(user_id.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_user(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM challenges WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
