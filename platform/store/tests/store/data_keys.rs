//! Erasure against sealing (`mfa_store::data_keys`) on the stack's PostgreSQL, each test with
//! a database of its own: once a subject's erasure committed, no live key of it exists, and
//! whatever was sealed for it either failed or is under a key that is erased. Each
//! `DataKeys` stands for a process of its own (its own key cache), as login-intake's replicas
//! and the verifier are.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mfa_store::data_keys::{
    erase_subject, hold_subject, DataKeyError, DataKeys, Opened, SubjectState,
};
use mfa_testkit::stack;
use shared::domain::{AttemptId, UserId};
use shared::events::EventType;
use shared::personal::{DataKeyId, MasterKeys, Personal, Subject};
use sqlx::PgPool;
use tokio::sync::Barrier;

async fn database() -> PgPool {
    let database_url = secrecy::SecretString::from(stack::create_database().await);
    // Room for every racing sealer of a round, and the erasure.
    let pool = mfa_store::db::connect(&database_url, 24).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    pool
}

/// One deployment's master keys: every process of a test shares them.
fn master() -> Arc<MasterKeys> {
    stack::data_protection().master_keys
}

fn new_user() -> Subject {
    Subject::User(UserId::from_uuid(uuid::Uuid::new_v4()))
}

/// A month no key was made for yet: the first login of a new month.
fn month(n: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, n, 15, 12, 0, 0).unwrap()
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
struct Fields {
    ip: String,
}

fn fields() -> Fields {
    Fields {
        ip: "198.51.100.23".into(),
    }
}

async fn seal(
    keys: &DataKeys,
    subject: Subject,
    at: DateTime<Utc>,
) -> Result<Personal<Fields>, DataKeyError> {
    let context = EventType::LoginAttempted.seal_context(AttemptId::new());
    keys.seal(subject, at, &fields(), context).await
}

/// The deletion's transaction, as login-intake's: the erasure, then the commit.
async fn erase(pool: &PgPool, subject: Subject) {
    let mut tx = pool.begin().await.unwrap();
    erase_subject(&mut tx, subject, Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
}

async fn live_keys(pool: &PgPool, subject: Subject) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM data_keys WHERE subject = $1 AND wrapped IS NOT NULL")
        .bind(subject.to_string())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Whether key `id` is in the database, and erased.
async fn erased(pool: &PgPool, id: &DataKeyId) -> Option<bool> {
    sqlx::query_scalar("SELECT wrapped IS NULL FROM data_keys WHERE key_id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn state_of(pool: &PgPool, subject: Subject) -> SubjectState {
    let mut tx = pool.begin().await.unwrap();
    let state = hold_subject(&mut tx, subject).await.unwrap();
    tx.rollback().await.unwrap();
    state
}

/// Waits until `sessions` sessions of this test's database wait for a lock: the step under
/// test has reached its row lock and is blocked there. Not a timing assumption: it only
/// waits for a state PostgreSQL reports, and gives up (failing) if it never comes.
async fn until_blocked(pool: &PgPool, sessions: i64) {
    for _ in 0..1500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= sessions {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no session of the test's database ever waited for a lock");
}

fn expect_erased(result: Result<impl std::fmt::Debug, DataKeyError>, subject: Subject) {
    match result {
        Err(DataKeyError::SubjectErased(erased)) => assert_eq!(erased, subject),
        other => panic!("sealing for erased {subject}: {other:?}"),
    }
}

#[tokio::test]
async fn nothing_is_sealed_for_an_erased_subject_in_any_process() {
    let (pool, master) = (database().await, master());
    let (sealer, elsewhere) = (
        DataKeys::new(pool.clone(), master.clone()),
        DataKeys::new(pool.clone(), master.clone()),
    );
    let user = new_user();
    let sealed = seal(&sealer, user, month(3)).await.unwrap();
    let key = sealed.key_id().unwrap();
    erase(&pool, user).await;

    // Another process, its cache empty: neither the month's key nor a new month's.
    expect_erased(seal(&elsewhere, user, month(3)).await, user);
    expect_erased(seal(&elsewhere, user, month(4)).await, user);
    assert_eq!(erased(&pool, &DataKeyId::new(user, month(4))).await, None);
    assert_eq!(erased(&pool, &key).await, Some(true));
    assert_eq!(live_keys(&pool, user).await, 0);
    let opened = elsewhere.open(
        &sealed,
        EventType::LoginAttempted.seal_context(AttemptId::new()),
    );
    assert!(matches!(opened.await.unwrap(), Opened::Erased(id) if id == key));

    // The process that sealed before still has the key in memory, for reading at most: a
    // transaction recording what it seals finds the tombstone, and once it heard of the
    // erasure it seals nothing either.
    assert_eq!(state_of(&pool, user).await, SubjectState::Erased);
    sealer.forget(user);
    expect_erased(seal(&sealer, user, month(3)).await, user);

    // Another subject is untouched.
    let other = new_user();
    seal(&elsewhere, other, month(3)).await.unwrap();
    assert_eq!(state_of(&pool, other).await, SubjectState::Live);
    assert_eq!(live_keys(&pool, other).await, 1);
}

#[tokio::test]
async fn a_sealer_that_comes_while_the_erasure_is_in_flight_waits_and_gets_nothing() {
    let (pool, master) = (database().await, master());
    // One subject that sealed before (its row exists), one never seen (the erasure inserts
    // the row that the sealer's first key would insert).
    let known = new_user();
    seal(
        &DataKeys::new(pool.clone(), master.clone()),
        known,
        month(1),
    )
    .await
    .unwrap();
    for subject in [known, new_user()] {
        let mut deletion = pool.begin().await.unwrap();
        erase_subject(&mut deletion, subject, Utc::now())
            .await
            .unwrap();
        let keys = DataKeys::new(pool.clone(), master.clone());
        let sealer = tokio::spawn(async move { seal(&keys, subject, month(5)).await });
        until_blocked(&pool, 1).await;
        assert!(!sealer.is_finished());
        deletion.commit().await.unwrap();
        expect_erased(sealer.await.unwrap(), subject);
        assert_eq!(
            erased(&pool, &DataKeyId::new(subject, month(5))).await,
            None
        );
        assert_eq!(live_keys(&pool, subject).await, 0);
    }
}

#[tokio::test]
async fn the_erasure_waits_for_a_login_holding_the_subject_then_takes_what_it_made() {
    let (pool, master) = (database().await, master());
    let keys = DataKeys::new(pool.clone(), master);
    let user = new_user();
    // The login seals first (its month's key made and committed), then holds the subject in
    // the transaction that records its event, as login-intake's `record_attempt` does.
    let sealed = seal(&keys, user, month(6)).await.unwrap();
    let mut login = pool.begin().await.unwrap();
    assert_eq!(
        hold_subject(&mut login, user).await.unwrap(),
        SubjectState::Live
    );
    let deleting = tokio::spawn({
        let pool = pool.clone();
        async move { erase(&pool, user).await }
    });
    until_blocked(&pool, 1).await;
    assert!(!deleting.is_finished());
    // A second login of the same user meanwhile shares the hold: logins do not queue
    // behind one another, only the erasure waits.
    let mut second = pool.begin().await.unwrap();
    assert_eq!(
        hold_subject(&mut second, user).await.unwrap(),
        SubjectState::Live
    );
    second.commit().await.unwrap();
    login.commit().await.unwrap();
    deleting.await.unwrap();
    assert_eq!(erased(&pool, &sealed.key_id().unwrap()).await, Some(true));
    assert_eq!(live_keys(&pool, user).await, 0);
    assert_eq!(state_of(&pool, user).await, SubjectState::Erased);
}

/// Many processes make the first key of a new month for one user at the same moment as the
/// user is deleted, round after round: however they interleave, once the erasure committed
/// the user has no live key, and every seal either failed with `SubjectErased` or is under a
/// key the erasure destroyed.
#[tokio::test]
async fn racing_sealers_of_a_new_month_never_outlive_the_erasure() {
    const SEALERS: usize = 16;
    const ROUNDS: u32 = 12;
    let (pool, master) = (database().await, master());
    let (mut refused, mut sealed_before) = (0, 0);
    for round in 0..ROUNDS {
        let user = new_user();
        // Half the rounds the user had a key before (its subject row exists), half not.
        if round % 2 == 0 {
            seal(&DataKeys::new(pool.clone(), master.clone()), user, month(1))
                .await
                .unwrap();
        }
        let at = month(2 + round % 10);
        let start = Arc::new(Barrier::new(SEALERS + 1));
        let sealers: Vec<_> = (0..SEALERS)
            .map(|_| {
                let (keys, start) = (DataKeys::new(pool.clone(), master.clone()), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    seal(&keys, user, at).await
                })
            })
            .collect();
        let deletion = tokio::spawn({
            let (pool, start) = (pool.clone(), start.clone());
            async move {
                start.wait().await;
                erase(&pool, user).await;
            }
        });
        deletion.await.unwrap();
        // Whatever the sealers still do after the erasure committed changes nothing.
        let mut results = Vec::new();
        for sealer in sealers {
            results.push(sealer.await.unwrap());
        }
        assert_eq!(live_keys(&pool, user).await, 0, "round {round}");
        for result in results {
            match result {
                Ok(sealed) => {
                    let key = sealed.key_id().unwrap();
                    assert_eq!(
                        erased(&pool, &key).await,
                        Some(true),
                        "round {round}: {key}"
                    );
                    sealed_before += 1;
                }
                Err(DataKeyError::SubjectErased(subject)) => {
                    assert_eq!(subject, user);
                    refused += 1;
                }
                Err(other) => panic!("round {round}: {other}"),
            }
        }
        // A seal after it all, from a fresh process, is refused too.
        expect_erased(
            seal(&DataKeys::new(pool.clone(), master.clone()), user, at).await,
            user,
        );
    }
    // How the races went, for whoever reads the output (either count may be 0 on a run).
    println!("{sealed_before} seals before their erasure (key erased), {refused} refused");
}

/// The unknown-account groups' keys, made ahead of any login: every group of the month gets
/// one key, a second process preparing (or sealing) at once agrees on it, and a month whose
/// key retention erased stays erased (preparing never makes it again).
#[tokio::test]
async fn unknown_account_keys_are_made_ahead_once_and_never_revived() {
    let (pool, master) = (database().await, master());
    let (first, second) = (
        DataKeys::new(pool.clone(), master.clone()),
        DataKeys::new(pool.clone(), master.clone()),
    );
    let at = month(3);
    let (a, b) = tokio::join!(
        first.prepare_unknown_account_keys(at),
        second.prepare_unknown_account_keys(at)
    );
    a.unwrap();
    b.unwrap();
    for group in [0u8, 0x7f, 0xff] {
        assert_eq!(live_keys(&pool, Subject::UnknownAccounts(group)).await, 1);
    }
    let made: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM data_keys WHERE subject LIKE 'unknown:%' AND wrapped IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(made, 256);

    // Sealed by one process from what it prepared, opened by another that prepared nothing.
    let group = Subject::UnknownAccounts(0x2a);
    let context = EventType::LoginAttempted.seal_context(AttemptId::new());
    let sealed = first.seal(group, at, &fields(), context).await.unwrap();
    let reader = DataKeys::new(pool.clone(), master);
    match reader.open(&sealed, context).await.unwrap() {
        Opened::Fields(opened) => assert_eq!(opened, fields()),
        other => panic!("opening a prepared key's seal: {other:?}"),
    }
    let (first_key, second_key) = (
        first.sealing_key(group, at).await.unwrap(),
        second.sealing_key(group, at).await.unwrap(),
    );
    assert_eq!(first_key.1.as_bytes(), second_key.1.as_bytes());
    assert_eq!(sealed.key_id(), Some(first_key.0));

    // Retention erases the month; preparing again does not bring a key back.
    sqlx::query(
        "UPDATE data_keys SET master_key_id = NULL, wrapped = NULL, erased_at = now(),
                 erased_why = 'retention' WHERE key_id = $1",
    )
    .bind(first_key.0.to_string())
    .execute(&pool)
    .await
    .unwrap();
    reader.prepare_unknown_account_keys(at).await.unwrap();
    assert_eq!(erased(&pool, &first_key.0).await, Some(true));
    match reader.sealing_key(group, at).await {
        Err(DataKeyError::ErasedForSealing(id)) => assert_eq!(id, first_key.0),
        other => panic!("sealing under a key retention erased: {other:?}"),
    }
}
