//! The data keys that seal personal fields (`shared::personal`), stored wrapped under the
//! master key in `data_keys`: created on first use for a subject and month, read (and kept a
//! minute in memory) by whoever opens an event, erased when the user is deleted or the month
//! passes the retention period.
//!
//! An erased key keeps its row with `wrapped` NULL: a reader tells "erased" (by design, the
//! fields read as erased) from "unknown" (a key this database never had: another deployment's
//! event, or the wrong database), which is an error.
//!
//! An erasure cannot be outrun by a login in flight: each subject has a row in
//! `data_subjects`, its tombstone once erased. Making a subject's key and recording an event
//! sealed under one both hold that row (`FOR SHARE`, [`hold_subject`]) in their transaction and
//! give up on a tombstone ([`DataKeyError::SubjectErased`]); [`erase_subject`] sets the
//! tombstone first, which waits for every holder, then erases the keys. So after an erasure
//! committed no live key of the subject exists, and an event sealed for it was either recorded
//! before (its key is among those erased) or not at all. The key cache cannot undo that: it
//! only saves reading a key, and the recording transaction checks the tombstone itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::domain::{AttemptId, UserId};
use shared::events::{EventType, ReportedClient};
use shared::personal::{
    DataKey, DataKeyId, KeyPeriod, MasterKeys, OpenError, Personal, SealContext, Subject,
    UnwrapError,
};
use sqlx::{PgConnection, PgPool};

use mfa_runtime::shutdown::Shutdown;

use crate::housekeeping::Sweep;

/// How long a process keeps a key it read: an erasure reaches every other process's reading
/// within it. Not its sealing: what is sealed is recorded only in a transaction that finds
/// the subject alive ([`hold_subject`]).
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
    /// Sealing new data under a month's key that was erased (a month past retention).
    #[error("data key {0} was erased: no new data is sealed under it")]
    ErasedForSealing(DataKeyId),
    /// Sealing new data for a subject that was erased (a user deleted while their login was
    /// in flight): nothing is sealed or recorded for it any more. The caller goes on as for
    /// an account that does not exist.
    #[error("{0} was erased: no new data is sealed for it")]
    SubjectErased(Subject),
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
    /// Subjects this process erased or heard were erased ([`DataKeys::forget`]): none of their
    /// keys is kept or served again. Without it, a sealer that read a key just before the
    /// erasure and remembered it just after `forget` would serve it from memory for a whole
    /// `CACHE_TTL`. Losing this set (past capacity) costs a database read, never correctness:
    /// `data_subjects` is the authority.
    erased: HashSet<Subject>,
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
        if cache.erased.contains(&id.subject) {
            return Some(None);
        }
        cache
            .keys
            .get(id)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(key, _)| key.clone())
    }

    fn remember(&self, id: DataKeyId, key: Option<DataKey>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.erased.contains(&id.subject) {
            return;
        }
        if cache.keys.len() >= CACHE_CAPACITY {
            cache.keys.clear();
        }
        cache.keys.insert(id, (key, Instant::now()));
    }

    /// Drops `subject`'s keys from this process's memory and never keeps one again (after
    /// erasing them, or on hearing that its account was deleted): from then on this process
    /// neither seals for the subject nor opens its data, even with a key read a moment before.
    pub fn forget(&self, subject: Subject) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.keys.retain(|id, _| id.subject != subject);
        if cache.erased.len() >= CACHE_CAPACITY {
            cache.erased.clear();
        }
        cache.erased.insert(subject);
    }

    fn erased_here(&self, subject: Subject) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.erased.contains(&subject)
    }

    /// The key that seals `subject`'s data at `at`, created on first use;
    /// [`DataKeyError::SubjectErased`] once the subject was erased.
    ///
    /// A key from the cache is not checked against the tombstone here: whoever records what
    /// it sealed holds the subject in that transaction ([`hold_subject`]), which is the check
    /// that counts (an erasure committing between a check here and the recording would slip
    /// past any check here). A key is only made, or read from the database, while holding the
    /// subject, so that no key is made for a subject after its erasure committed.
    pub async fn sealing_key(
        &self,
        subject: Subject,
        at: DateTime<Utc>,
    ) -> Result<(DataKeyId, DataKey), DataKeyError> {
        let id = DataKeyId::new(subject, at);
        if self.erased_here(subject) {
            return Err(DataKeyError::SubjectErased(subject));
        }
        match self.cached(&id) {
            Some(Some(key)) => return Ok((id, key)),
            Some(None) => return Err(DataKeyError::ErasedForSealing(id)),
            None => {}
        }
        let mut tx = self.pool.begin().await.map_err(DataKeyError::Db)?;
        if hold_subject(&mut tx, subject)
            .await
            .map_err(DataKeyError::Db)?
            == SubjectState::Erased
        {
            return Err(DataKeyError::SubjectErased(subject));
        }
        let fresh = DataKey::generate();
        let (master_id, wrapped) = self.master.wrap(&id, &fresh);
        // Two replicas may create the same key at once: the first insert wins (the second
        // waits for it on the primary key), and both use the stored one.
        sqlx::query(
            "INSERT INTO data_keys (key_id, subject, period_end, master_key_id, wrapped)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(subject.to_string())
        .bind(id.period.end())
        .bind(&master_id)
        .bind(&wrapped)
        .execute(&mut *tx)
        .await
        .map_err(DataKeyError::Db)?;
        let key = read_key(&mut tx, &self.master, &id)
            .await?
            .ok_or(DataKeyError::ErasedForSealing(id))?;
        // Committed before it is used: the key is in the database, where an erasure finds it.
        tx.commit().await.map_err(DataKeyError::Db)?;
        self.remember(id, Some(key.clone()));
        Ok((id, key))
    }

    /// The key named `id`, or `None` when it was erased.
    pub async fn opening_key(&self, id: &DataKeyId) -> Result<Option<DataKey>, DataKeyError> {
        if let Some(key) = self.cached(id) {
            return Ok(key);
        }
        let mut conn = self.pool.acquire().await.map_err(DataKeyError::Db)?;
        let key = read_key(&mut conn, &self.master, id).await?;
        self.remember(*id, key.clone());
        Ok(key)
    }

    /// Seals `fields` under `subject`'s key for `at`. Whoever records the result holds the
    /// subject in the recording transaction ([`hold_subject`]) and drops it on a tombstone.
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
    /// Makes the keys of all 256 unknown-account groups for the month of `at` (those still
    /// missing) and keeps them in this process's memory, in one transaction.
    ///
    /// Why: a login with an unknown email otherwise makes or reads its group's key on the
    /// login's path, the first time in a month or a minute, while a known account under a
    /// password-guessing run has its key in memory: the unknown email answered a few per cent
    /// slower, by median, than a wrong password (the security suite's timing test), an oracle
    /// for which emails have accounts. With every group ready, both come from memory.
    pub async fn prepare_unknown_account_keys(
        &self,
        at: DateTime<Utc>,
    ) -> Result<(), DataKeyError> {
        let ids: Vec<DataKeyId> = (0..=u8::MAX)
            .map(|group| DataKeyId::new(Subject::UnknownAccounts(group), at))
            .collect();
        let subjects: Vec<String> = ids.iter().map(|id| id.subject.to_string()).collect();
        let key_ids: Vec<String> = ids.iter().map(DataKeyId::to_string).collect();
        let mut tx = self.pool.begin().await.map_err(DataKeyError::Db)?;
        // The same order as `hold_subject` (subject rows first, held), so that a key is never
        // made for a subject whose tombstone committed.
        sqlx::query(
            "INSERT INTO data_subjects (subject) SELECT unnest($1::text[])
             ON CONFLICT (subject) DO NOTHING",
        )
        .bind(&subjects)
        .execute(&mut *tx)
        .await
        .map_err(DataKeyError::Db)?;
        let live: HashSet<String> = sqlx::query_scalar(
            "SELECT subject FROM data_subjects WHERE subject = ANY($1) AND erased_at IS NULL
             FOR SHARE",
        )
        .bind(&subjects)
        .fetch_all(&mut *tx)
        .await
        .map_err(DataKeyError::Db)?
        .into_iter()
        .collect();
        let existing: HashSet<String> =
            sqlx::query_scalar("SELECT key_id FROM data_keys WHERE key_id = ANY($1)")
                .bind(&key_ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(DataKeyError::Db)?
                .into_iter()
                .collect();
        let missing: Vec<&DataKeyId> = ids
            .iter()
            .filter(|id| {
                live.contains(&id.subject.to_string()) && !existing.contains(&id.to_string())
            })
            .collect();
        if !missing.is_empty() {
            let (mut new_ids, mut new_subjects, mut ends, mut masters, mut wrapped) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for id in missing {
                let (master_id, key) = self.master.wrap(id, &DataKey::generate());
                new_ids.push(id.to_string());
                new_subjects.push(id.subject.to_string());
                ends.push(id.period.end());
                masters.push(master_id);
                wrapped.push(key);
            }
            // Another replica preparing at once: the first insert wins, as in `sealing_key`.
            sqlx::query(
                "INSERT INTO data_keys (key_id, subject, period_end, master_key_id, wrapped)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bytea[])
                 ON CONFLICT (key_id) DO NOTHING",
            )
            .bind(&new_ids)
            .bind(&new_subjects)
            .bind(&ends)
            .bind(&masters)
            .bind(&wrapped)
            .execute(&mut *tx)
            .await
            .map_err(DataKeyError::Db)?;
        }
        let rows: Vec<(String, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT key_id, master_key_id, wrapped FROM data_keys WHERE key_id = ANY($1)",
        )
        .bind(&key_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(DataKeyError::Db)?;
        tx.commit().await.map_err(DataKeyError::Db)?;
        for (key_id, master_id, wrapped) in rows {
            let id: DataKeyId = key_id
                .parse()
                .map_err(|_| DataKeyError::MalformedRow(key_id.clone()))?;
            self.remember(id, key_from_row(&self.master, &id, (master_id, wrapped))?);
        }
        Ok(())
    }

    /// Keeps the unknown-account groups' keys ready ([`Self::prepare_unknown_account_keys`]):
    /// refreshed in memory well inside [`CACHE_TTL`], and next month's made a day ahead, so
    /// that no login with an unknown email meets a missing or expired group key. A failure
    /// is logged and retried: logins still work, only slower for such emails.
    pub async fn keep_unknown_account_keys_ready(self, mut stop: Shutdown) {
        loop {
            let now = Utc::now();
            let soon = now + chrono::Duration::days(1);
            let mut months = vec![now];
            if KeyPeriod::of(soon) != KeyPeriod::of(now) {
                months.push(soon);
            }
            for at in months {
                if let Err(error) = self.prepare_unknown_account_keys(at).await {
                    tracing::warn!(%error, "preparing the unknown-account data keys failed; will retry");
                }
            }
            tokio::select! {
                _ = stop.wait() => return,
                _ = tokio::time::sleep(CACHE_TTL / 3) => {}
            }
        }
    }

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

/// Whether a subject may still have personal data sealed and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectState {
    Live,
    /// Erased (its account deleted): nothing new is sealed or recorded for it.
    Erased,
}

/// Holds `subject` until the end of the caller's transaction (`FOR SHARE` on its
/// `data_subjects` row) and says whether it was erased. A transaction that records data sealed
/// for the subject (an event, or a row naming the subject) calls it first and records nothing
/// on `Erased`: an erasure in flight waits for the transactions holding the subject and only
/// then erases its keys and deletes its rows, so what they committed goes with the rest; one
/// that committed first is seen here. Holders share the row: logins of one user do not wait
/// for each other.
///
/// `FOR SHARE`, not the lighter `FOR KEY SHARE`: the erasure's upsert changes a non-key
/// column, which takes only `FOR NO KEY UPDATE`, and that conflicts with the former alone.
///
/// Seal first, then hold: sealing may make the subject's first key, and its row, in a
/// transaction of its own, which would wait for a row this transaction inserted here.
pub async fn hold_subject(
    tx: &mut PgConnection,
    subject: Subject,
) -> Result<SubjectState, sqlx::Error> {
    let held = |erased_at: Option<DateTime<Utc>>| match erased_at {
        Some(_) => SubjectState::Erased,
        None => SubjectState::Live,
    };
    let select = "SELECT erased_at FROM data_subjects WHERE subject = $1 FOR SHARE";
    // The row exists for every subject that has a key (made below, or by the migration for
    // older keys): one statement on a login's path.
    let found: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(select)
        .bind(subject.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(erased_at) = found {
        return Ok(held(erased_at));
    }
    // A subject's first key. A concurrent erasure inserting the tombstone conflicts on the
    // primary key: this insert waits for it and then does nothing, and the select below reads
    // the tombstone; if this insert comes first, the erasure's upsert waits for this
    // transaction instead.
    sqlx::query("INSERT INTO data_subjects (subject) VALUES ($1) ON CONFLICT (subject) DO NOTHING")
        .bind(subject.to_string())
        .execute(&mut *tx)
        .await?;
    let erased_at: Option<DateTime<Utc>> = sqlx::query_scalar(select)
        .bind(subject.to_string())
        .fetch_one(&mut *tx)
        .await?;
    Ok(held(erased_at))
}

async fn read_key(
    conn: &mut PgConnection,
    master: &MasterKeys,
    id: &DataKeyId,
) -> Result<Option<DataKey>, DataKeyError> {
    let row: Option<(Option<String>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT master_key_id, wrapped FROM data_keys WHERE key_id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(DataKeyError::Db)?;
    key_from_row(master, id, row.ok_or(DataKeyError::Unknown(*id))?)
}

/// A `data_keys` row's `(master_key_id, wrapped)`: the key, or `None` when it was erased.
fn key_from_row(
    master: &MasterKeys,
    id: &DataKeyId,
    row: (Option<String>, Option<Vec<u8>>),
) -> Result<Option<DataKey>, DataKeyError> {
    match row {
        (Some(master_id), Some(wrapped)) => Ok(Some(master.unwrap_key(&master_id, id, &wrapped)?)),
        (None, None) => Ok(None),
        _ => Err(DataKeyError::MalformedRow(id.to_string())),
    }
}

/// Erases `subject` in the caller's transaction (the one that deletes the account): its
/// tombstone first, which waits for every transaction holding the subject ([`hold_subject`]:
/// a login making its key or recording its event), then every key it has, including one made
/// a moment ago by such a transaction. From then on the personal fields of its events read as
/// erased everywhere, and nothing new is sealed for it. Call it before deleting the subject's
/// rows, so that those deletes also see what the holders committed. Returns how many keys it
/// erased.
pub async fn erase_subject(
    tx: &mut PgConnection,
    subject: Subject,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    // An upsert locks the row exclusively, against `FOR SHARE`: a plain UPDATE would miss a
    // subject whose first key is being made (its row not committed yet), and an INSERT alone
    // would not lock an existing row.
    sqlx::query(
        "INSERT INTO data_subjects (subject, erased_at) VALUES ($1, $2)
         ON CONFLICT (subject)
         DO UPDATE SET erased_at = COALESCE(data_subjects.erased_at, EXCLUDED.erased_at)",
    )
    .bind(subject.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(sqlx::query(
        "UPDATE data_keys SET master_key_id = NULL, wrapped = NULL, erased_at = $2,
             erased_why = 'subject_deleted'
         WHERE subject = $1 AND wrapped IS NOT NULL",
    )
    .bind(subject.to_string())
    .bind(now)
    .execute(&mut *tx)
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::personal::MasterKeys;

    fn keys() -> DataKeys {
        let master = MasterKeys::parse(&MasterKeys::generate_entry("m1")).unwrap();
        // Never connected: these tests are about the memory alone.
        let pool = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        DataKeys::new(pool, Arc::new(master))
    }

    #[tokio::test]
    async fn a_forgotten_subject_is_never_served_from_memory_again() {
        let keys = keys();
        let user = Subject::User(UserId::from_uuid(uuid::Uuid::new_v4()));
        let other = Subject::User(UserId::from_uuid(uuid::Uuid::new_v4()));
        let now = Utc::now();
        let (id, other_id) = (DataKeyId::new(user, now), DataKeyId::new(other, now));
        let key = DataKey::generate();
        keys.remember(id, Some(key.clone()));
        keys.remember(other_id, Some(DataKey::generate()));
        keys.forget(user);
        assert!(matches!(keys.cached(&id), Some(None)));
        // A sealer that read the key just before the erasure and remembers it just after.
        keys.remember(id, Some(key));
        assert!(matches!(keys.cached(&id), Some(None)));
        match keys.sealing_key(user, now).await {
            Err(DataKeyError::SubjectErased(subject)) => assert_eq!(subject, user),
            Err(other) => panic!("{other}"),
            Ok((id, _)) => panic!("sealed for an erased subject under {id}"),
        }
        // The other subjects' keys are still served, without the database.
        assert!(keys.sealing_key(other, now).await.is_ok());
    }
}
