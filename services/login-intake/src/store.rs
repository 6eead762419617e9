//! login-intake's tables: companies, users, login_attempts.

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, ChallengeId, CompanyId, Email, UserId};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user_id: UserId,
    pub company_id: CompanyId,
    pub password_hash: Option<String>,
    pub privileged: bool,
}

/// A stored risk decision, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredDecision {
    Pending,
    Approved {
        after_mfa: bool,
    },
    MfaRequired {
        challenge_id: ChallengeId,
        expires_at: DateTime<Utc>,
        /// No new email was sent: a code for this challenge was emailed moments ago.
        code_recently_sent: bool,
    },
    Rejected {
        reason: String,
    },
}

#[derive(Clone)]
pub struct IntakeStore {
    pool: PgPool,
}

pub struct NewUser<'a> {
    pub email: &'a Email,
    pub password_hash: Option<String>,
    pub company_id: &'a CompanyId,
    pub company_uses_sso: bool,
    pub privileged: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email taken")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl IntakeStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn find_user(&self, email: &Email) -> Result<Option<UserRecord>, sqlx::Error> {
        let row: Option<(Uuid, String, Option<String>, bool)> = sqlx::query_as(
            "SELECT user_id, company_id, password_hash, privileged FROM users
             WHERE email = $1 AND disabled_at IS NULL",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.and_then(|(user_id, company_id, password_hash, privileged)| {
                // Only the admin API writes company ids, through `CompanyId`; a row edited by
                // hand into something else can't log in rather than bring the service down.
                let Ok(company_id) = CompanyId::parse(&company_id) else {
                    tracing::error!(%user_id, "stored company id is invalid");
                    return None;
                };
                Some(UserRecord {
                    user_id: UserId::from_uuid(user_id),
                    company_id,
                    password_hash,
                    privileged,
                })
            }),
        )
    }

    pub async fn create_user(&self, user: NewUser<'_>) -> Result<UserId, CreateUserError> {
        let user_id = UserId::new();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO companies (company_id, uses_sso) VALUES ($1, $2)
             ON CONFLICT (company_id) DO UPDATE SET uses_sso = EXCLUDED.uses_sso",
        )
        .bind(user.company_id.as_str())
        .bind(user.company_uses_sso)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO users (user_id, email, password_hash, company_id, privileged)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user_id.as_uuid())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(user.company_id.as_str())
        .bind(user.privileged)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(CreateUserError::EmailTaken);
        }
        tx.commit().await?;
        Ok(user_id)
    }

    /// Records an accepted attempt; a second call for the same id (a redelivered Kafka
    /// request) changes nothing.
    pub async fn record_attempt(
        &self,
        attempt_id: AttemptId,
        user_id: Option<UserId>,
        company: &CompanyId,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO login_attempts (attempt_id, user_id, company_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(attempt_id.as_uuid())
        .bind(user_id.map(|u| u.as_uuid()))
        .bind(company.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// None when no such attempt was accepted for `company`.
    pub async fn decision(
        &self,
        attempt_id: AttemptId,
        company: &CompanyId,
    ) -> Result<Option<StoredDecision>, sqlx::Error> {
        type Row = (
            Option<String>,
            bool,
            Option<Uuid>,
            Option<DateTime<Utc>>,
            Option<String>,
            bool,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT status, approved_after_mfa, challenge_id, expires_at, reason, code_recently_sent
             FROM login_attempts WHERE attempt_id = $1 AND company_id = $2",
        )
        .bind(attempt_id.as_uuid())
        .bind(company.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(status, after_mfa, challenge_id, expires_at, reason, code_recently_sent)| match (
                status.as_deref(),
                challenge_id,
                expires_at,
            ) {
                (Some("approved"), _, _) => StoredDecision::Approved { after_mfa },
                (Some("mfa_required"), Some(challenge_id), Some(expires_at)) => {
                    StoredDecision::MfaRequired {
                        challenge_id: ChallengeId::from_uuid(challenge_id),
                        expires_at,
                        code_recently_sent,
                    }
                }
                (Some("rejected"), _, _) => StoredDecision::Rejected {
                    reason: reason.unwrap_or_else(|| "invalid_credentials".into()),
                },
                _ => StoredDecision::Pending,
            },
        ))
    }
}

/// An API key as the admin API lists it (never the raw key, which is shown once).
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key_id: Uuid,
    pub company_id: String,
    pub name: String,
    pub key_prefix: String,
    pub platforms: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

type ApiKeyRow = (
    Uuid,
    String,
    String,
    String,
    Vec<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn api_key_record(row: ApiKeyRow) -> ApiKeyRecord {
    let (key_id, company_id, name, key_prefix, platforms, created_at, revoked_at) = row;
    ApiKeyRecord {
        key_id,
        company_id,
        name,
        key_prefix,
        platforms,
        created_at,
        revoked_at,
    }
}

impl IntakeStore {
    /// Stores a new key's digest; creates the company if it is new.
    pub async fn create_api_key(
        &self,
        company: &CompanyId,
        name: &str,
        digest: &[u8],
        key_prefix: &str,
        platforms: &[shared::domain::Platform],
    ) -> Result<ApiKeyRecord, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO companies (company_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(company.as_str())
            .execute(&mut *tx)
            .await?;
        let platforms: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
        let row: ApiKeyRow = sqlx::query_as(
            "INSERT INTO api_keys (key_id, company_id, name, digest, key_prefix, platforms)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING key_id, company_id, name, key_prefix, platforms, created_at, revoked_at",
        )
        .bind(Uuid::now_v7())
        .bind(company.as_str())
        .bind(name)
        .bind(digest)
        .bind(key_prefix)
        .bind(&platforms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(api_key_record(row))
    }

    pub async fn list_api_keys(
        &self,
        company: Option<&CompanyId>,
    ) -> Result<Vec<ApiKeyRecord>, sqlx::Error> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT key_id, company_id, name, key_prefix, platforms, created_at, revoked_at
             FROM api_keys WHERE $1::text IS NULL OR company_id = $1 ORDER BY created_at",
        )
        .bind(company.map(CompanyId::as_str))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(api_key_record).collect())
    }

    /// Revokes a key at once; true when it existed. Revoking twice is harmless.
    pub async fn revoke_api_key(&self, key_id: Uuid) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE key_id = $1",
        )
        .bind(key_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// Admin changes to accounts.
impl IntakeStore {
    /// Disables or enables the account; false when there is no such account.
    pub async fn set_disabled(&self, user_id: UserId, disabled: bool) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, now()) END
             WHERE user_id = $1",
        )
        .bind(user_id.as_uuid())
        .bind(disabled)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn set_password_hash(
        &self,
        user_id: UserId,
        hash: &str,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("UPDATE users SET password_hash = $2 WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn user_exists(&self, user_id: UserId) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)")
            .bind(user_id.as_uuid())
            .fetch_one(&self.pool)
            .await
    }

    /// Deletes the account and its login attempts; false when there is no such account.
    pub async fn delete_user(&self, user_id: UserId) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM login_attempts WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM users WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(deleted)
    }
}
