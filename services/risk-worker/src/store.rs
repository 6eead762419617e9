//! The risk worker's tables: known attributes (what each user has had approved logins from),
//! failed logins, and one row per decided attempt.

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, UserId};
use shared::events::Envelope;
use sqlx::{PgPool, Postgres, Transaction};

use shared::domain::ChallengeId;
use uuid::Uuid;

use crate::rules::{CodeHistory, History, LoginFingerprint};

#[derive(Clone)]
pub struct RiskStore {
    pool: PgPool,
}

/// A decision about to be stored, with its effects on the history.
pub struct DecisionRecord<'a> {
    pub attempt_id: AttemptId,
    pub user_id: Option<UserId>,
    pub event: &'a Envelope,
    pub fingerprint: &'a LoginFingerprint,
    /// The login's time: when failures happened and attributes were seen.
    pub occurred_at: DateTime<Utc>,
    pub failed: bool,
    /// Learn the fingerprint now (an approval); after MFA it is learned later.
    pub learn_now: bool,
    /// A new challenge (`MfaRequired`): its id, issue time and expiry, for the code caps.
    pub issued_challenge: Option<(ChallengeId, DateTime<Utc>, DateTime<Utc>)>,
}

impl RiskStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The decision already made for this attempt, if any.
    pub async fn decision(&self, attempt_id: AttemptId) -> Result<Option<Envelope>, sqlx::Error> {
        let row: Option<(serde_json::Value,)> =
            sqlx::query_as("SELECT decision_event FROM risk_decisions WHERE attempt_id = $1")
                .bind(attempt_id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(json,)| serde_json::from_value(json).ok()))
    }

    pub async fn history(
        &self,
        user_id: UserId,
        fingerprint: &LoginFingerprint,
        failures_since: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<History, sqlx::Error> {
        let (has_approved_login, knows_device, knows_network, knows_browser): (bool, bool, bool, bool) =
            sqlx::query_as(
                "SELECT
                   EXISTS (SELECT 1 FROM risk_known_attributes WHERE user_id = $1),
                   EXISTS (SELECT 1 FROM risk_known_attributes WHERE user_id = $1 AND kind = 'device' AND value = $2),
                   EXISTS (SELECT 1 FROM risk_known_attributes WHERE user_id = $1 AND kind = 'network' AND value = $3),
                   EXISTS (SELECT 1 FROM risk_known_attributes WHERE user_id = $1 AND kind = 'browser' AND value = $4)",
            )
            .bind(user_id.as_uuid())
            .bind(&fingerprint.device)
            .bind(&fingerprint.network)
            .bind(&fingerprint.browser)
            .fetch_one(&self.pool)
            .await?;
        let recent_failures: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM risk_failed_logins WHERE user_id = $1 AND occurred_at >= $2 AND occurred_at < $3",
        )
        .bind(user_id.as_uuid())
        .bind(failures_since)
        .bind(before)
        .fetch_one(&self.pool)
        .await?;
        Ok(History {
            has_approved_login,
            knows_device,
            knows_network,
            knows_browser,
            recent_failures: recent_failures.try_into().unwrap_or(u32::MAX),
        })
    }

    /// Stores the decision and its effects in one transaction. Returns false when another
    /// delivery of the same attempt stored one first (then nothing was changed).
    pub async fn record(&self, record: DecisionRecord<'_>) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO risk_decisions
               (attempt_id, user_id, decision_event, device_value, network_value, browser_value, learned_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (attempt_id) DO NOTHING",
        )
        .bind(record.attempt_id.as_uuid())
        .bind(record.user_id.map(|u| u.as_uuid()))
        .bind(serde_json::to_value(record.event).expect("events serialise"))
        .bind(&record.fingerprint.device)
        .bind(&record.fingerprint.network)
        .bind(&record.fingerprint.browser)
        .bind(record.learn_now.then_some(record.occurred_at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(false);
        }
        if let Some(user_id) = record.user_id {
            if record.failed {
                sqlx::query("INSERT INTO risk_failed_logins (attempt_id, user_id, occurred_at) VALUES ($1, $2, $3)")
                    .bind(record.attempt_id.as_uuid())
                    .bind(user_id.as_uuid())
                    .bind(record.occurred_at)
                    .execute(&mut *tx)
                    .await?;
            }
            if record.learn_now {
                learn(&mut tx, user_id, record.fingerprint, record.occurred_at).await?;
            }
            if let Some((challenge_id, issued_at, expires_at)) = record.issued_challenge {
                sqlx::query(
                    "INSERT INTO risk_challenges (challenge_id, user_id, issued_at, expires_at)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(challenge_id.as_uuid())
                .bind(user_id.as_uuid())
                .bind(issued_at)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The user passed MFA for `attempt_id`: its fingerprint becomes known. Idempotent.
    pub async fn learn_after_mfa(
        &self,
        attempt_id: AttemptId,
        at: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(uuid::Uuid, String, String, String)> = sqlx::query_as(
            "UPDATE risk_decisions SET learned_at = $2
             WHERE attempt_id = $1 AND learned_at IS NULL AND user_id IS NOT NULL
             RETURNING user_id, device_value, network_value, browser_value",
        )
        .bind(attempt_id.as_uuid())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((user_id, device, network, browser)) = row else {
            return Ok(false);
        };
        let fingerprint = LoginFingerprint {
            device,
            network,
            browser,
        };
        learn(&mut tx, UserId::from_uuid(user_id), &fingerprint, at).await?;
        tx.commit().await?;
        Ok(true)
    }
}

async fn learn(
    tx: &mut Transaction<'_, Postgres>,
    user_id: UserId,
    fingerprint: &LoginFingerprint,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO risk_known_attributes (user_id, kind, value, first_seen, last_seen)
         SELECT $1, kind, value, $5, $5
         FROM (VALUES ('device', $2), ('network', $3), ('browser', $4)) AS seen (kind, value)
         ON CONFLICT (user_id, kind, value)
         DO UPDATE SET last_seen = GREATEST(risk_known_attributes.last_seen, EXCLUDED.last_seen)",
    )
    .bind(user_id.as_uuid())
    .bind(&fingerprint.device)
    .bind(&fingerprint.network)
    .bind(&fingerprint.browser)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The code caps' view of an account: what the risk worker issued, and what the verifier and
/// code worker reported back.
impl RiskStore {
    pub async fn code_history(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<CodeHistory, sqlx::Error> {
        let hour_ago = now - chrono::Duration::hours(1);
        let (issued_last_hour, last_issued_at): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE issued_at > $2), max(issued_at)
             FROM risk_challenges WHERE user_id = $1",
        )
        .bind(user_id.as_uuid())
        .bind(hour_ago)
        .fetch_one(&self.pool)
        .await?;
        // Only the newest challenge can be pending: issuing one supersedes the others.
        let newest: Option<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT challenge_id, expires_at, closed_at FROM risk_challenges
             WHERE user_id = $1 ORDER BY issued_at DESC LIMIT 1",
        )
        .bind(user_id.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        let failed_codes_last_day: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM risk_failed_codes WHERE user_id = $1 AND occurred_at > $2",
        )
        .bind(user_id.as_uuid())
        .bind(now - chrono::Duration::hours(24))
        .fetch_one(&self.pool)
        .await?;
        Ok(CodeHistory {
            issued_last_hour: issued_last_hour.try_into().unwrap_or(u32::MAX),
            last_issued_at,
            pending: newest.and_then(|(id, expires_at, closed_at)| {
                (closed_at.is_none() && expires_at > now)
                    .then(|| (ChallengeId::from_uuid(id), expires_at))
            }),
            failed_codes_last_day: failed_codes_last_day.try_into().unwrap_or(u32::MAX),
        })
    }

    /// The challenge can no longer be passed. Idempotent.
    pub async fn close_challenge(
        &self,
        challenge_id: ChallengeId,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE risk_challenges SET closed_at = COALESCE(closed_at, $2) WHERE challenge_id = $1")
            .bind(challenge_id.as_uuid())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A wrong code was entered (one `MfaFailed` event). Idempotent by event id.
    pub async fn record_failed_code(
        &self,
        event_id: Uuid,
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO risk_failed_codes (event_id, user_id, occurred_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(event_id)
            .bind(user_id.as_uuid())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Admin changes to an account (`AccountChanged`). Each is idempotent.
impl RiskStore {
    /// Forgets what the user has logged in from: the next login asks for a code.
    pub async fn forget_history(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM risk_known_attributes WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user's open challenges can no longer be passed (password changed, disabled).
    pub async fn close_challenges_of(
        &self,
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE risk_challenges SET closed_at = $2 WHERE user_id = $1 AND closed_at IS NULL",
        )
        .bind(user_id.as_uuid())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes every row the risk worker keeps about the user.
    pub async fn delete_user(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "risk_known_attributes",
            "risk_failed_logins",
            "risk_decisions",
            "risk_challenges",
            "risk_failed_codes",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user_id.as_uuid())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}
