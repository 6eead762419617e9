//! The global counts cover the login's epoch of 90 days and the one before
//! (`risk_worker::model::epochs`): the live worker's state over PostgreSQL and replay's memory
//! decide the same logins alike across epochs, read the same counts, and housekeeping's sweep
//! deletes what no login reads any more without changing any count.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use mfa_testkit::stack;
use risk_worker::geo::GeoIp;
use risk_worker::model::features::{Features, Level};
use risk_worker::model::state::MemoryState;
use risk_worker::rules::Policy;
use risk_worker::store::RiskStore;
use shared::domain::{DeviceId, UserAgent, UserId};
use shared::events::LoginClient;
use shared::personal::PseudonymKey;
use uuid::Uuid;

use crate::log::{decide, Log, CHROME};

const OFFICE: &str = "203.0.113.40";
const CAFE: &str = "198.51.100.7";
const HOME: &str = "81.2.69.142";

fn laptop(n: usize) -> String {
    format!("laptop-{n}")
}

/// Eight colleagues at the office from 2026-06-01 (epoch 228 of 90 days from the Unix
/// epoch, which ends on 2026-06-06), one of them also at a café; all eight at the office two
/// months later (epoch 229), four of them four months after that (epoch 230, on 2026-11-28),
/// then one at home a month later (epoch 231).
fn log() -> Log {
    let users: Vec<UserId> = (0..8)
        .map(|n| UserId::from_uuid(Uuid::from_u128(0xc0 + n)))
        .collect();
    let mut log = Log::new();
    for (n, user) in users.iter().enumerate() {
        let first = log.login(*user, OFFICE, &laptop(n));
        log.passes_mfa(*user, first);
        log.login(*user, OFFICE, &laptop(n));
    }
    let cafe = log.login(users[0], CAFE, &laptop(0));
    log.passes_mfa(users[0], cafe);
    log.wait(Duration::days(60));
    for (n, user) in users.iter().enumerate() {
        log.login(*user, OFFICE, &laptop(n));
    }
    log.wait(Duration::days(120));
    for (n, user) in users.iter().enumerate().take(4) {
        log.login(*user, OFFICE, &laptop(n));
    }
    log.wait(Duration::days(30));
    log.login(users[1], HOME, &laptop(1));
    log
}

/// A login's features as the global counts key them.
fn probe(ip: &str, device: &str, pseudonyms: &PseudonymKey) -> Features {
    let client = LoginClient {
        ip: ip.parse().unwrap(),
        user_agent: UserAgent::parse(CHROME).unwrap(),
        device_id: Some(DeviceId::parse(device).unwrap()),
    };
    Features::of(&client, &GeoIp::none()).pseudonymous(pseudonyms)
}

fn epoch_starting(date: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{date}T00:00:00Z"))
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn the_global_counts_age_by_epoch_alike_live_and_in_memory_and_the_sweep_changes_no_count() {
    let log = log();
    let url = stack::create_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let pseudonyms = stack::data_protection().pseudonym_key;
    let store = RiskStore::new(pool.clone(), pseudonyms.clone());
    let mut memory = MemoryState::default();
    let mut last_decision = None;
    for envelope in &log.events {
        let live = decide(
            &mut store.publishing("t.risk-decisions", "key"),
            envelope,
            &pseudonyms,
        )
        .await;
        let replayed = decide(&mut memory, envelope, &pseudonyms).await;
        last_decision = live.as_ref().map(|d| d["event_type"].clone());
        // What was decided and why, not the ids each side draws.
        let gist = |decision: &Option<serde_json::Value>| {
            decision.as_ref().map(|d| {
                (
                    d["event_type"].clone(),
                    d["payload"]["risk"].clone(),
                    d["payload"]["counted"].clone(),
                )
            })
        };
        assert_eq!(
            gist(&live),
            gist(&replayed),
            "decided differently at {}",
            envelope.occurred_at
        );
    }

    assert_eq!(
        last_decision,
        Some("LoginApproved".into()),
        "the home login"
    );
    let now = log.at;
    let office = probe(OFFICE, &laptop(0), &pseudonyms);
    let cafe = probe(CAFE, &laptop(0), &pseudonyms);
    let read = |features: Features| {
        let store = store.clone();
        async move { store.global(&features, now).await.unwrap() }
    };
    let (office_live, cafe_live) = (read(office.clone()).await, read(cafe.clone()).await);
    assert_eq!(office_live, memory.global(&office, now));
    assert_eq!(cafe_live, memory.global(&cafe, now));
    // The window is epochs 230 and 231: the four office logins of 2026-11-28 and the home
    // login after them (approved: a known laptop), by four users (the one at home counts
    // once, in her newest epoch); the café, last seen in epoch 228, counts for nothing.
    assert_eq!(office_live.users, 4);
    assert_eq!(office_live.counts.logins, 5);
    for (level, count) in [(Level::Ip, 4), (Level::Prefix, 4), (Level::Device, 1)] {
        assert_eq!(office_live.counts.of(level), count, "{level:?}");
    }
    assert_eq!(cafe_live.counts.of(Level::Ip), 0);
    assert_eq!(cafe_live.counts.of(Level::Prefix), 0);
    // Distinct values in the window: the office and home addresses and networks, four laptops.
    for (level, distinct) in [(Level::Ip, 2), (Level::Prefix, 2), (Level::Device, 4)] {
        assert_eq!(office_live.distinct.get(level), distinct, "{level:?}");
    }

    // Housekeeping at `now` deletes the rows of epochs before 230, and no count changes.
    let old_rows = |table: &'static str| {
        let pool = pool.clone();
        async move {
            let (n,): (i64,) =
                sqlx::query_as(&format!("SELECT count(*) FROM {table} WHERE epoch < $1"))
                    .bind(epoch_starting("2026-09-04"))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            n
        }
    };
    assert!(old_rows("risk_global_values").await > 0);
    let sweeps = risk_worker::housekeeping::sweeps(&Policy::default());
    mfa_store::housekeeping::sweep_once(&pool, &sweeps, now)
        .await
        .unwrap();
    for table in [
        "risk_global_values",
        "risk_global_levels",
        "risk_global_totals",
    ] {
        assert_eq!(old_rows(table).await, 0, "{table}");
    }
    assert_eq!(read(office.clone()).await, office_live);
    assert_eq!(read(cafe.clone()).await, cafe_live);
    // Replay's memory forgets the same epochs.
    memory.forget_expired(
        now,
        &risk_worker::housekeeping::Retention::of(&Policy::default()),
    );
    assert_eq!(memory.global(&office, now), office_live);
}
