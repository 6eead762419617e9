//! The verifier's reads and updates of the code worker's `challenges` table: it locks one row,
//! judges the try, and records the result (attempts, status). It never creates or deletes
//! challenges.

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, ChallengeId, UserId};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::judge::{ChallengeState, ChallengeStatus, Verdict};

pub struct ChallengeRow {
    pub attempt_id: AttemptId,
    pub user_id: UserId,
    /// The account's company (set by the code worker).
    pub company_id: Option<String>,
    pub code_hash: Vec<u8>,
    /// The `MfaRequired` that created the challenge: the cause of the first event of a try.
    pub mfa_required_event_id: Uuid,
    /// The code worker's span that created the challenge (W3C `traceparent`): a try
    /// continues the login's trace from it. None for a challenge written outside a traced
    /// span.
    pub traceparent: Option<String>,
    pub state: ChallengeState,
}

#[derive(sqlx::FromRow)]
struct Row {
    attempt_id: Uuid,
    user_id: Uuid,
    company_id: Option<String>,
    code_hash: Vec<u8>,
    mfa_required_event_id: Uuid,
    status: String,
    expires_at: DateTime<Utc>,
    failed_attempts: i32,
    traceparent: Option<String>,
}

/// Locks the challenge's row for the rest of the transaction, so two concurrent tries are
/// judged one after the other (a code can't be accepted twice).
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    challenge_id: ChallengeId,
) -> Result<Option<ChallengeRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT attempt_id, user_id, company_id, code_hash, mfa_required_event_id, status,
                expires_at, failed_attempts, traceparent
         FROM challenges WHERE challenge_id = $1 FOR UPDATE",
    )
    .bind(challenge_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // One try per account at a time, so concurrent tries on several of its challenges can't
    // slip past the daily ceiling together.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(row.user_id)
        .execute(&mut **tx)
        .await?;
    let account_failed_today: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(failed_attempts), 0) FROM challenges
         WHERE user_id = $1 AND created_at > now() - interval '24 hours'",
    )
    .bind(row.user_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(ChallengeRow {
        attempt_id: AttemptId::from_uuid(row.attempt_id),
        user_id: UserId::from_uuid(row.user_id),
        company_id: row.company_id,
        code_hash: row.code_hash,
        mfa_required_event_id: row.mfa_required_event_id,
        traceparent: row.traceparent,
        state: ChallengeState {
            status: match row.status.as_str() {
                "used" => ChallengeStatus::Used,
                "locked" => ChallengeStatus::Locked,
                "superseded" => ChallengeStatus::Superseded,
                "revoked" => ChallengeStatus::Revoked,
                _ => ChallengeStatus::Pending,
            },
            expires_at: row.expires_at,
            failed_attempts: row.failed_attempts.try_into().unwrap_or(0),
            account_failed_today: account_failed_today.try_into().unwrap_or(u32::MAX),
        },
    }))
}

/// Records what the verdict changes: a use, a wrong try, a lock.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    challenge_id: ChallengeId,
    verdict: Verdict,
) -> Result<(), sqlx::Error> {
    let statement = match verdict {
        Verdict::Approved => "UPDATE challenges SET status = 'used', finished_at = now() WHERE challenge_id = $1",
        Verdict::WrongCode { .. } => {
            "UPDATE challenges SET failed_attempts = failed_attempts + 1 WHERE challenge_id = $1"
        }
        Verdict::LockedNow => {
            "UPDATE challenges SET failed_attempts = failed_attempts + 1, status = 'locked', finished_at = now()
             WHERE challenge_id = $1"
        }
        Verdict::Locked
        | Verdict::Expired
        | Verdict::AlreadyUsed
        | Verdict::Superseded
        | Verdict::Revoked => return Ok(()),
    };
    sqlx::query(statement)
        .bind(challenge_id.as_uuid())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
