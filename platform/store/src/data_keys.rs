//! The data keys that seal personal fields (`shared::personal`), stored wrapped under the
//! master key in `data_keys`: created on first use for a subject and month, read (and kept a
//! minute in memory) by whoever opens an event, erased when the user is deleted or the month
//! passes the retention period.
//!
//! An erased key keeps its row with `wrapped` NULL: a reader tells "erased" (by design, the
//! fields read as erased) from "unknown" (a key this database never had: another deployment's
//! event, or the wrong database), which is an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::domain::{AttemptId, UserId};
use shared::events::{EventType, ReportedClient};
use shared::personal::{
    DataKey, DataKeyId, MasterKeys, OpenError, Personal, SealContext, Subject, UnwrapError,
};
use sqlx::{PgExecutor, PgPool};

use mfa_runtime::shutdown::Shutdown;

use crate::housekeeping::Sweep;

/// How long a process keeps a key it read: an erasure reaches every other process within it.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Keys kept in memory at most; past it the cache starts again empty.
const CACHE_CAPACITY: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    #[error("reading or writing data keys")]
    Db(#[source] sqlx::Error),
    #[error(
        "data key {0} is not in this database (another deployment's event, or the wrong database)"
    )]
    Unknown(DataKeyId),
    /// Sealing new data for a subject whose keys were erased (a user deleted a moment ago).
    #[error("data key {0} was erased: no new data is sealed under it")]
    ErasedForSealing(DataKeyId),
    #[error(transparent)]
    Unwrap(#[from] UnwrapError),
    #[error("stored data key row {0:?} is malformed")]
    MalformedRow(String),
    #[error(transparent)]
    Open(OpenError),
}

/// Personal fields, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened<T> {
    Fields(T),
    /// Their key was destroyed: the user was deleted, or the month is past retention.
    Erased(DataKeyId),
}

impl<T> Opened<T> {
    pub fn fields(self) -> Option<T> {
        match self {
            Opened::Fields(fields) => Some(fields),
            Opened::Erased(_) => None,
        }
    }
}

#[derive(Default)]
struct Cache {
    /// `None`: erased.
    keys: HashMap<DataKeyId, (Option<DataKey>, Instant)>,
}

/// The data keys of one deployment, cached.
#[derive(Clone)]
pub struct DataKeys {
    pool: PgPool,
    master: Arc<MasterKeys>,
    cache: Arc<Mutex<Cache>>,
}

impl DataKeys {
    pub fn new(pool: PgPool, master: Arc<MasterKeys>) -> Self {
        Self {
            pool,
            master,
            cache: Arc::default(),
        }
    }

    fn cached(&self, id: &DataKeyId) -> Option<Option<DataKey>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .keys
            .get(id)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(key, _)| key.clone())
    }

    fn remember(&self, id: DataKeyId, key: Option<DataKey>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.keys.len() >= CACHE_CAPACITY {
            cache.keys.clear();
        }
        cache.keys.insert(id, (key, Instant::now()));
    }

    /// Drops `subject`'s keys from this process's memory (after erasing them, or on hearing
    /// that its account was deleted).
    pub fn forget(&self, subject: Subject) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.keys.retain(|id, _| id.subject != subject);
    }

    fn unwrap_row(
        &self,
        id: &DataKeyId,
        row: (Option<String>, Option<Vec<u8>>),
    ) -> Result<Option<DataKey>, DataKeyError> {
        match row {
            (Some(master_id), Some(wrapped)) => {
                Ok(Some(self.master.unwrap_key(&master_id, id, &wrapped)?))
            }
            (None, None) => Ok(None),
            _ => Err(DataKeyError::MalformedRow(id.to_string())),
        }
    }

    /// The key that seals `subject`'s data at `at`, created on first use.
    pub async fn sealing_key(
        &self,
        subject: Subject,
        at: DateTime<Utc>,
    ) -> Result<(DataKeyId, DataKey), DataKeyError> {
        let id = DataKeyId::new(subject, at);
        match self.cached(&id) {
            Some(Some(key)) => return Ok((id, key)),
            Some(None) => return Err(DataKeyError::ErasedForSealing(id)),
            None => {}
        }
        let fresh = DataKey::generate();
        let (master_id, wrapped) = self.master.wrap(&id, &fresh);
        // Two replicas may create the same key at once: the first insert wins, and both use
        // the stored one.
        sqlx::query(
            "INSERT INTO data_keys (key_id, subject, period_end, master_key_id, wrapped)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(subject.to_string())
        .bind(id.period.end())
        .bind(&master_id)
        .bind(&wrapped)
        .execute(&self.pool)
        .await
        .map_err(DataKeyError::Db)?;
        let key = self
            .read(&id)
            .await?
            .ok_or(DataKeyError::ErasedForSealing(id))?;
        self.remember(id, Some(key.clone()));
        Ok((id, key))
    }

    async fn read(&self, id: &DataKeyId) -> Result<Option<DataKey>, DataKeyError> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT master_key_id, wrapped FROM data_keys WHERE key_id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(DataKeyError::Db)?;
        let row = row.ok_or(DataKeyError::Unknown(*id))?;
        self.unwrap_row(id, row)
    }

    /// The key named `id`, or `None` when it was erased.
    pub async fn opening_key(&self, id: &DataKeyId) -> Result<Option<DataKey>, DataKeyError> {
        if let Some(key) = self.cached(id) {
            return Ok(key);
        }
        let key = self.read(id).await?;
        self.remember(*id, key.clone());
        Ok(key)
    }

    /// Seals `fields` under `subject`'s key for `at`.
    pub async fn seal<T: Serialize + DeserializeOwned>(
        &self,
        subject: Subject,
        at: DateTime<Utc>,
        fields: &T,
        context: SealContext<'_>,
    ) -> Result<Personal<T>, DataKeyError> {
        let (id, key) = self.sealing_key(subject, at).await?;
        Ok(Personal::seal(fields, id, &key, context))
    }

    /// A `LoginFeedback`'s reported address and device id, sealed under the user's key.
    pub async fn seal_reported(
        &self,
        user: UserId,
        attempt_id: AttemptId,
        at: DateTime<Utc>,
        reported: &ReportedClient,
    ) -> Result<Personal<ReportedClient>, DataKeyError> {
        let context = EventType::LoginFeedback.seal_context(attempt_id);
        self.seal(Subject::User(user), at, reported, context).await
    }

    /// Reads personal fields, sealed or in the clear.
    pub async fn open<T: Serialize + DeserializeOwned + Clone>(
        &self,
        personal: &Personal<T>,
        context: SealContext<'_>,
    ) -> Result<Opened<T>, DataKeyError> {
        let key = match personal.key_id() {
            Some(id) => match self.opening_key(&id).await? {
                Some(key) => Some(key),
                None => return Ok(Opened::Erased(id)),
            },
            None => None,
        };
        personal
            .open(key.as_ref(), context)
            .map(Opened::Fields)
            .map_err(DataKeyError::Open)
    }

    /// Re-wraps up to `batch` keys still wrapped under an older master key with the current
    /// one (rotation: once none is left, the old master key can be removed from
    /// `MFA_MASTER_KEYS`). Returns how many it re-wrapped.
    pub async fn rewrap(&self, batch: i64) -> Result<u64, DataKeyError> {
        let current = self.master.current_id().to_owned();
        let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT key_id, master_key_id, wrapped FROM data_keys
             WHERE wrapped IS NOT NULL AND master_key_id <> $1 LIMIT $2",
        )
        .bind(&current)
        .bind(batch)
        .fetch_all(&self.pool)
        .await
        .map_err(DataKeyError::Db)?;
        let mut done = 0;
        for (key_id, old_master, wrapped) in rows {
            let id: DataKeyId = key_id
                .parse()
                .map_err(|_| DataKeyError::MalformedRow(key_id.clone()))?;
            let key = self.master.unwrap_key(&old_master, &id, &wrapped)?;
            let (master_id, rewrapped) = self.master.wrap(&id, &key);
            done += sqlx::query(
                "UPDATE data_keys SET master_key_id = $1, wrapped = $2
                 WHERE key_id = $3 AND master_key_id = $4",
            )
            .bind(&master_id)
            .bind(&rewrapped)
            .bind(&key_id)
            .bind(&old_master)
            .execute(&self.pool)
            .await
            .map_err(DataKeyError::Db)?
            .rows_affected();
        }
        Ok(done)
    }
}

impl DataKeys {
    /// After a master key rotation: re-wraps every key under the current master key, a batch
    /// at a time, then looks again every `interval` (a failure is logged and retried then).
    pub async fn rewrap_until_stopped(self, interval: Duration, mut stop: Shutdown) {
        loop {
            match self.rewrap(1000).await {
                Ok(0) => {}
                Ok(rows) => {
                    tracing::info!(
                        rows,
                        master_key = self.master.current_id(),
                        "data keys re-wrapped"
                    );
                    continue;
                }
                Err(error) => tracing::warn!(%error, "re-wrapping data keys failed; will retry"),
            }
            tokio::select! {
                _ = stop.wait() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// Erases every key of `subject` (in the transaction that deletes the account): from then on
/// the personal fields of its events read as erased everywhere.
pub async fn erase_subject<'e>(
    executor: impl PgExecutor<'e>,
    subject: Subject,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE data_keys SET master_key_id = NULL, wrapped = NULL, erased_at = $2,
             erased_why = 'subject_deleted'
         WHERE subject = $1 AND wrapped IS NOT NULL",
    )
    .bind(subject.to_string())
    .bind(now)
    .execute(executor)
    .await?
    .rows_affected())
}

/// The retention sweep: erases the keys of every month that ended more than `retention_days`
/// ago (its events' personal fields then read as erased). One service runs it.
pub fn retention_sweep(retention_days: u32) -> Sweep {
    Sweep {
        table: "data_keys",
        delete: "UPDATE data_keys SET master_key_id = NULL, wrapped = NULL, erased_at = now(),
                     erased_why = 'retention'
                 WHERE wrapped IS NOT NULL AND period_end < $1",
        keep: Duration::from_secs(u64::from(retention_days) * 24 * 3600),
    }
}

/// The data keys for a synchronous reader (`risk-worker replay`, `mfa-audit`): the database
/// read on a runtime of its own. Not for use inside an async runtime.
pub struct BlockingDataKeys {
    runtime: tokio::runtime::Runtime,
    keys: DataKeys,
}

impl BlockingDataKeys {
    /// Connects to `database_url` (the deployment's database, where login-intake keeps the
    /// keys) with `master` (its `MFA_MASTER_KEYS`).
    pub fn connect(
        database_url: &secrecy::SecretString,
        master: Arc<MasterKeys>,
    ) -> Result<Self, DataKeyError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DataKeyError::Db(sqlx::Error::Io(e)))?;
        let pool = runtime
            .block_on(crate::db::connect(database_url, 2))
            .map_err(DataKeyError::Db)?;
        Ok(Self {
            runtime,
            keys: DataKeys::new(pool, master),
        })
    }

    /// The key named `id`, or `None` when it was erased.
    pub fn key(&self, id: &DataKeyId) -> Result<Option<DataKey>, DataKeyError> {
        self.runtime.block_on(self.keys.opening_key(id))
    }
}
