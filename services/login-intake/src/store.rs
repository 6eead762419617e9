//! login-intake's tables: companies, users, login_attempts. An admin change to an account
//! and its `AccountChanged` commit together (the outbox): a broker down at that moment delays
//! the announcement, and never loses it.

use chrono::{DateTime, Utc};
use mfa_http::page::{List, Page, PageRequest};
use mfa_store::data_keys::{self, SubjectState};
use mfa_store::outbox;
use shared::domain::{AttemptId, AuthMethod, ChallengeId, CompanyId, Email, FirstFactors, UserId};
use shared::events::{AccountChange, AccountChanged, Envelope, Event, LoginClient};
use shared::personal::Subject;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::intake::PRODUCER;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user_id: UserId,
    pub company_id: CompanyId,
    pub password_hash: Option<String>,
    pub privileged: bool,
    /// The account's own limit on its company's first factors; None: no limit.
    pub first_factors: Option<FirstFactors>,
}

/// What [`IntakeStore::record_attempt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// Accepted before under the same id: nothing new.
    Before,
    /// The login's subject was erased (its account deleted) meanwhile: nothing recorded.
    SubjectErased,
}

/// Where and as what an admin operation announces its account changes.
pub struct Announcement<'a> {
    /// The accounts topic.
    pub topic: &'a str,
    /// The events' `attempt_id`: one id per admin operation, so its events can be told apart
    /// and correlated.
    pub operation: AttemptId,
    pub now: DateTime<Utc>,
}

impl Announcement<'_> {
    /// Writes the `AccountChanged` into the outbox, in the caller's transaction.
    async fn enqueue(
        &self,
        tx: &mut PgConnection,
        user_id: UserId,
        change: AccountChange,
    ) -> Result<(), sqlx::Error> {
        let event = Envelope::new(
            PRODUCER,
            self.operation,
            None,
            self.now,
            Event::AccountChanged(AccountChanged { user_id, change }),
        );
        outbox::enqueue(tx, PRODUCER, self.topic, &user_id.to_string(), &event).await
    }
}

/// Reads a stored list of first factors. The column's CHECK admits only known names, so a
/// failure means a hand-edited row: it accepts nothing rather than bring the service down.
fn stored_factors(names: &[String], whose: &dyn std::fmt::Display) -> FirstFactors {
    FirstFactors::parse_names(names).unwrap_or_else(|error| {
        tracing::error!(%error, %whose, "stored first factors are invalid; none is accepted");
        FirstFactors::default()
    })
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
        /// When a login can get a code again (a refusal for the code caps).
        retry_at: Option<DateTime<Utc>>,
    },
}

/// What became of an attempt's challenge, as the code worker and the verifier left its row in
/// `challenges` (login-intake's one read of that table: the answer about a login follows its
/// code, and only those two services know when a code stops working without a try).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeNow {
    Pending,
    Used,
    Locked,
    Superseded,
    Revoked,
    /// Its email was given up (`CodeDeliveryFailed`).
    Undelivered,
}

#[derive(Clone)]
pub struct IntakeStore {
    pool: PgPool,
}

pub struct NewUser<'a> {
    pub email: &'a Email,
    pub password_hash: Option<String>,
    pub company_id: &'a CompanyId,
    /// The compatibility flag: the company accepts passwords and SSO (added to what it
    /// accepted). False changes nothing.
    pub company_uses_sso: bool,
    pub privileged: bool,
    pub first_factors: Option<FirstFactors>,
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
        type Row = (Uuid, String, Option<String>, bool, Option<Vec<String>>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT user_id, company_id, password_hash, privileged, first_factors FROM users
             WHERE email = $1 AND disabled_at IS NULL",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(
            |(user_id, company_id, password_hash, privileged, first_factors)| {
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
                    first_factors: first_factors
                        .map(|names| stored_factors(&names, &UserId::from_uuid(user_id))),
                })
            },
        ))
    }

    /// The first factors `company` accepts; passwords only for a company nobody set up (a
    /// Kafka login request can name any company).
    pub async fn company_first_factors(
        &self,
        company: &CompanyId,
    ) -> Result<FirstFactors, sqlx::Error> {
        Ok(self
            .company(company)
            .await?
            .unwrap_or(FirstFactors::PASSWORD_ONLY))
    }

    /// None when there is no such company.
    pub async fn company(&self, company: &CompanyId) -> Result<Option<FirstFactors>, sqlx::Error> {
        let names: Option<Vec<String>> =
            sqlx::query_scalar("SELECT first_factors FROM companies WHERE company_id = $1")
                .bind(company.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(names.map(|names| stored_factors(&names, company)))
    }

    /// Creates the account, and its company if it is new (accepting passwords only, or
    /// passwords and SSO with `company_uses_sso`).
    pub async fn create_user(
        &self,
        user: NewUser<'_>,
        announcement: &Announcement<'_>,
    ) -> Result<UserId, CreateUserError> {
        let user_id = UserId::new();
        let mut tx = self.pool.begin().await?;
        let current = lock_company(&mut tx, user.company_id).await?;
        if user.company_uses_sso {
            let with_sso = current.union(FirstFactors::of([AuthMethod::Password, AuthMethod::Sso]));
            if with_sso != current {
                change_company_factors(&mut tx, user.company_id, current, with_sso, announcement)
                    .await?;
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO users (user_id, email, password_hash, company_id, privileged, first_factors)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user_id.as_uuid())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(user.company_id.as_str())
        .bind(user.privileged)
        .bind(user.first_factors.map(FirstFactors::names))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(CreateUserError::EmailTaken);
        }
        tx.commit().await?;
        Ok(user_id)
    }

    /// Records an accepted attempt and writes its `LoginAttempted` (`(topic, key, event)`)
    /// into the outbox, in one transaction. A second call for the same id (a redelivered
    /// Kafka request) changes nothing and answers `Before`: the event was written the first
    /// time. `SubjectErased`: `subject` (whose key sealed the event) was erased meanwhile, its
    /// account deleted while the login was in flight; nothing is recorded.
    pub async fn record_attempt(
        &self,
        attempt_id: AttemptId,
        (subject, user_id): (Subject, Option<UserId>),
        company: &CompanyId,
        (topic, key, attempted): (&str, &str, &Envelope),
        client: &LoginClient,
    ) -> Result<Recorded, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Held until the commit: a deletion of the account waits for this transaction and
        // then deletes the attempt with the others (and erases the key that sealed its
        // event), or it committed first and nothing of this login is kept.
        if data_keys::hold_subject(&mut tx, subject).await? == SubjectState::Erased {
            return Ok(Recorded::SubjectErased);
        }
        let inserted = sqlx::query(
            "INSERT INTO login_attempts (attempt_id, user_id, company_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(attempt_id.as_uuid())
        .bind(user_id.map(|u| u.as_uuid()))
        .bind(company.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            outbox::enqueue(&mut tx, PRODUCER, topic, key, attempted).await?;
            // Where the login came from, for support staff's list of the user's logins.
            if let Event::LoginAttempted(login) = &attempted.event {
                crate::user_logins::record_context(&mut *tx, attempt_id, login, client).await?;
            }
        }
        tx.commit().await?;
        Ok(if inserted {
            Recorded::New
        } else {
            Recorded::Before
        })
    }

    /// None when no such attempt was accepted for `company`. The decision as stored, with its
    /// challenge's state when it is still `mfa_required` (None: not stored yet, or pruned);
    /// `crate::decisions::settle` makes the answer of the two.
    pub async fn decision(
        &self,
        attempt_id: AttemptId,
        company: &CompanyId,
    ) -> Result<Option<(StoredDecision, Option<ChallengeNow>)>, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct Row {
            status: Option<String>,
            approved_after_mfa: bool,
            challenge_id: Option<Uuid>,
            expires_at: Option<DateTime<Utc>>,
            reason: Option<String>,
            code_recently_sent: bool,
            retry_at: Option<DateTime<Utc>>,
            challenge_status: Option<String>,
            undelivered: Option<bool>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT a.status, a.approved_after_mfa, a.challenge_id, a.expires_at, a.reason,
                    a.code_recently_sent, a.retry_at, c.status AS challenge_status,
                    c.outcome_event->>'event_type' = 'CodeDeliveryFailed' AS undelivered
             FROM login_attempts a
             LEFT JOIN challenges c
               ON c.challenge_id = a.challenge_id AND a.status = 'mfa_required'
             WHERE a.attempt_id = $1 AND a.company_id = $2",
        )
        .bind(attempt_id.as_uuid())
        .bind(company.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| {
            let decision = match (row.status.as_deref(), row.challenge_id, row.expires_at) {
                (Some("approved"), _, _) => StoredDecision::Approved {
                    after_mfa: row.approved_after_mfa,
                },
                (Some("mfa_required"), Some(challenge_id), Some(expires_at)) => {
                    StoredDecision::MfaRequired {
                        challenge_id: ChallengeId::from_uuid(challenge_id),
                        expires_at,
                        code_recently_sent: row.code_recently_sent,
                    }
                }
                (Some("rejected"), _, _) => StoredDecision::Rejected {
                    reason: row.reason.unwrap_or_else(|| "invalid_credentials".into()),
                    retry_at: row.retry_at,
                },
                _ => StoredDecision::Pending,
            };
            let challenge = row.challenge_status.map(|status| match status.as_str() {
                "used" => ChallengeNow::Used,
                "locked" => ChallengeNow::Locked,
                "superseded" => ChallengeNow::Superseded,
                "revoked" => ChallengeNow::Revoked,
                _ if row.undelivered == Some(true) => ChallengeNow::Undelivered,
                _ => ChallengeNow::Pending,
            });
            (decision, challenge)
        }))
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

    /// A page of keys (of `company`, or of every company) in `key_id` order, which is their
    /// creation order (UUIDv7).
    pub async fn list_api_keys(
        &self,
        company: Option<&CompanyId>,
        page: PageRequest,
    ) -> Result<Page<ApiKeyRecord>, sqlx::Error> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT key_id, company_id, name, key_prefix, platforms, created_at, revoked_at
             FROM api_keys
             WHERE ($1::text IS NULL OR company_id = $1) AND ($2::uuid IS NULL OR key_id > $2)
             ORDER BY key_id LIMIT $3",
        )
        .bind(company.map(CompanyId::as_str))
        .bind(page.after)
        .bind(page.fetch())
        .fetch_all(&self.pool)
        .await?;
        let records = rows.into_iter().map(api_key_record).collect();
        Ok(page.page(records, |key: &ApiKeyRecord| key.key_id, List::ApiKeys))
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

/// An account as the admin API shows it: never its password hash.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub user_id: UserId,
    pub email: String,
    pub company_id: String,
    pub privileged: bool,
    pub has_password: bool,
    /// The account's own limit on its company's first factors; None: no limit.
    pub first_factors: Option<FirstFactors>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

type AccountRow = (
    Uuid,
    String,
    String,
    bool,
    bool,
    Option<Vec<String>>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// The columns of an [`AccountRow`]: whether there is a password, not the hash.
const ACCOUNT_COLUMNS: &str = "user_id, email, company_id, privileged, password_hash IS NOT NULL,
    first_factors, disabled_at, created_at";

fn account_record(row: AccountRow) -> AccountRecord {
    let (
        user_id,
        email,
        company_id,
        privileged,
        has_password,
        first_factors,
        disabled_at,
        created_at,
    ) = row;
    let user_id = UserId::from_uuid(user_id);
    AccountRecord {
        user_id,
        email,
        company_id,
        privileged,
        has_password,
        first_factors: first_factors.map(|names| stored_factors(&names, &user_id)),
        disabled_at,
        created_at,
    }
}

/// What the admin API reads of accounts: one by id or by email, or a company's, a page at a
/// time.
impl IntakeStore {
    pub async fn account(&self, user_id: UserId) -> Result<Option<AccountRecord>, sqlx::Error> {
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE user_id = $1"
        ))
        .bind(user_id.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(account_record))
    }

    /// The account of `email`'s canonical form, disabled or not.
    pub async fn account_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<AccountRecord>, sqlx::Error> {
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(account_record))
    }

    /// A page of accounts (of `company`, or of every company) in `user_id` order, which is
    /// their creation order (UUIDv7).
    pub async fn list_accounts(
        &self,
        company: Option<&CompanyId>,
        page: PageRequest,
    ) -> Result<Page<AccountRecord>, sqlx::Error> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users
             WHERE ($1::text IS NULL OR company_id = $1) AND ($2::uuid IS NULL OR user_id > $2)
             ORDER BY user_id LIMIT $3"
        ))
        .bind(company.map(CompanyId::as_str))
        .bind(page.after)
        .bind(page.fetch())
        .fetch_all(&self.pool)
        .await?;
        let records = rows.into_iter().map(account_record).collect();
        Ok(page.page(
            records,
            |account: &AccountRecord| account.user_id.as_uuid(),
            List::Users,
        ))
    }
}

/// Admin changes to accounts, each announced in its own transaction.
impl IntakeStore {
    /// Disables or enables the account; false when there is no such account.
    pub async fn set_disabled(
        &self,
        user_id: UserId,
        disabled: bool,
        announcement: &Announcement<'_>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, now()) END
             WHERE user_id = $1",
        )
        .bind(user_id.as_uuid())
        .bind(disabled)
        .execute(&mut *tx)
        .await?;
        let change = if disabled {
            AccountChange::Disabled
        } else {
            AccountChange::Enabled
        };
        announced(
            tx,
            result.rows_affected() == 1,
            announcement,
            user_id,
            change,
        )
        .await
    }

    pub async fn set_password_hash(
        &self,
        user_id: UserId,
        hash: &str,
        announcement: &Announcement<'_>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query("UPDATE users SET password_hash = $2 WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        let change = AccountChange::PasswordChanged;
        announced(
            tx,
            result.rows_affected() == 1,
            announcement,
            user_id,
            change,
        )
        .await
    }

    /// Announces that the account's learned history is to be forgotten (the risk worker
    /// keeps it); false when there is no such account.
    pub async fn reset_history(
        &self,
        user_id: UserId,
        announcement: &Announcement<'_>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // FOR SHARE: a delete committing meanwhile waits for this announcement, so the
        // workers read the reset before the deletion.
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM users WHERE user_id = $1 FOR SHARE")
                .bind(user_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        let change = AccountChange::HistoryReset;
        announced(tx, exists.is_some(), announcement, user_id, change).await
    }

    /// Deletes the account and its login attempts, and erases its data keys (crypto-shredding:
    /// its events' personal fields read as erased from then on, in every copy of the log);
    /// false when there is no such account.
    pub async fn delete_user(
        &self,
        user_id: UserId,
        announcement: &Announcement<'_>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM users WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if deleted {
            // Before the rows go: the erasure waits for every login or feedback of the user
            // still recording (they hold the subject), so the deletes below, each seeing what
            // committed before it started, take their rows too; a later one finds the
            // tombstone and records nothing.
            data_keys::erase_subject(&mut tx, Subject::User(user_id), Utc::now()).await?;
        }
        sqlx::query("DELETE FROM login_feedback WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM login_attempts WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&mut *tx)
            .await?;
        announced(tx, deleted, announcement, user_id, AccountChange::Deleted).await
    }

    /// Sets the first factors `company` accepts, creating the company if it is new; each of
    /// its accounts whose accepted set changed is announced.
    pub async fn set_company_first_factors(
        &self,
        company: &CompanyId,
        factors: FirstFactors,
        announcement: &Announcement<'_>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let current = lock_company(&mut tx, company).await?;
        change_company_factors(&mut tx, company, current, factors, announcement).await?;
        tx.commit().await
    }

    /// Sets (Some) or lifts (None) the account's own limit; returns the first factors the
    /// account accepts now, or None when there is no such account.
    pub async fn set_user_first_factors(
        &self,
        user_id: UserId,
        limit: Option<FirstFactors>,
        announcement: &Announcement<'_>,
    ) -> Result<Option<FirstFactors>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let company: Option<String> =
            sqlx::query_scalar("SELECT company_id FROM users WHERE user_id = $1")
                .bind(user_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(company) = company.and_then(|raw| CompanyId::parse(&raw).ok()) else {
            return Ok(None);
        };
        // The company first, then the account: the order a company change locks them in,
        // so the two never deadlock, and whichever commits second sees the other's value.
        let company = lock_company(&mut tx, &company).await?;
        let old_limit: Option<Option<Vec<String>>> =
            sqlx::query_scalar("SELECT first_factors FROM users WHERE user_id = $1 FOR UPDATE")
                .bind(user_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(old_limit) = old_limit else {
            return Ok(None);
        };
        let old = accepted_by_account(
            company,
            old_limit.map(|names| stored_factors(&names, &user_id)),
        );
        sqlx::query("UPDATE users SET first_factors = $2 WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .bind(limit.map(FirstFactors::names))
            .execute(&mut *tx)
            .await?;
        let accepted = accepted_by_account(company, limit);
        if accepted != old {
            let change = AccountChange::FirstFactorsChanged { accepted };
            announcement.enqueue(&mut tx, user_id, change).await?;
        }
        tx.commit().await?;
        Ok(Some(accepted))
    }
}

/// What an account accepts: its company's first factors, narrowed by its own limit.
pub fn accepted_by_account(company: FirstFactors, limit: Option<FirstFactors>) -> FirstFactors {
    limit.map_or(company, |limit| company.intersection(limit))
}

/// Commits the change with its announcement, when the account existed (`found`).
async fn announced(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    found: bool,
    announcement: &Announcement<'_>,
    user_id: UserId,
    change: AccountChange,
) -> Result<bool, sqlx::Error> {
    if !found {
        return Ok(false);
    }
    announcement.enqueue(&mut tx, user_id, change).await?;
    tx.commit().await?;
    Ok(true)
}

/// Creates the company if it is new (accepting passwords only), locks its row for the rest
/// of the transaction, and returns what it accepts.
async fn lock_company(
    tx: &mut PgConnection,
    company: &CompanyId,
) -> Result<FirstFactors, sqlx::Error> {
    sqlx::query("INSERT INTO companies (company_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(company.as_str())
        .execute(&mut *tx)
        .await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT first_factors FROM companies WHERE company_id = $1 FOR UPDATE")
            .bind(company.as_str())
            .fetch_one(&mut *tx)
            .await?;
    Ok(stored_factors(&names, company))
}

/// Stores the company's new first factors and announces every account whose accepted set
/// changed (one event per account: consumers follow accounts, each in its partition).
async fn change_company_factors(
    tx: &mut PgConnection,
    company: &CompanyId,
    current: FirstFactors,
    factors: FirstFactors,
    announcement: &Announcement<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE companies SET first_factors = $2 WHERE company_id = $1")
        .bind(company.as_str())
        .bind(factors.names())
        .execute(&mut *tx)
        .await?;
    if current == factors {
        return Ok(());
    }
    // FOR UPDATE: an account's limit changing meanwhile waits, so each announced set is
    // the one that holds.
    let accounts: Vec<(Uuid, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT user_id, first_factors FROM users WHERE company_id = $1 ORDER BY user_id FOR UPDATE",
    )
    .bind(company.as_str())
    .fetch_all(&mut *tx)
    .await?;
    for (user_id, limit) in accounts {
        let user_id = UserId::from_uuid(user_id);
        let limit = limit.map(|names| stored_factors(&names, &user_id));
        let (before, after) = (
            accepted_by_account(current, limit),
            accepted_by_account(factors, limit),
        );
        if before != after {
            let change = AccountChange::FirstFactorsChanged { accepted: after };
            announcement.enqueue(tx, user_id, change).await?;
        }
    }
    Ok(())
}
