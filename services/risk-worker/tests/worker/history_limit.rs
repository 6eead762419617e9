//! A decision reads at most the newest `HISTORY_READ_LIMIT` logins of a user's history,
//! however long it is: alike in PostgreSQL (both the one-statement read and the separate
//! one) and in replay's memory.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mfa_testkit::stack;
use risk_worker::geo::GeoIp;
use risk_worker::model::assess::HISTORY_READ_LIMIT;
use risk_worker::model::features::Features;
use risk_worker::model::state::MemoryState;
use risk_worker::store::RiskStore;
use shared::domain::{DeviceId, UserAgent, UserId};
use shared::events::LoginClient;
use uuid::Uuid;

use crate::log::{decide, Log, CHROME};

const HOME: &str = "81.2.69.142";

#[tokio::test]
async fn a_long_history_is_read_as_its_newest_logins_alike_live_and_in_memory() {
    let user = UserId::from_uuid(Uuid::from_u128(0x10ad));
    let mut log = Log::new();
    let first = log.login(user, HOME, "laptop");
    log.passes_mfa(user, first);
    // Half an hour apart: 30 more than the limit, all inside the 180-day window.
    for _ in 0..HISTORY_READ_LIMIT + 30 {
        log.login(user, HOME, "laptop");
    }
    let url = stack::create_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let pseudonyms = stack::data_protection().pseudonym_key;
    let store = RiskStore::new(pool, pseudonyms.clone());
    let mut memory = MemoryState::default();
    let mut approved = 0;
    for envelope in &log.events {
        let live = decide(
            &mut store.publishing("t.risk-decisions", "key"),
            envelope,
            &pseudonyms,
        )
        .await;
        let replayed = decide(&mut memory, envelope, &pseudonyms).await;
        let kind = |d: &Option<serde_json::Value>| d.as_ref().map(|d| d["event_type"].clone());
        let risk = |d: &Option<serde_json::Value>| d.as_ref().map(|d| d["payload"]["risk"].clone());
        assert_eq!(kind(&live), kind(&replayed), "at {}", envelope.occurred_at);
        assert_eq!(risk(&live), risk(&replayed), "at {}", envelope.occurred_at);
        approved += usize::from(kind(&live) == Some("LoginApproved".into()));
    }
    assert!(approved > HISTORY_READ_LIMIT, "{approved} approved");

    let client = LoginClient {
        ip: HOME.parse().unwrap(),
        user_agent: UserAgent::parse(CHROME).unwrap(),
        device_id: Some(DeviceId::parse("laptop").unwrap()),
    };
    let login = Features::of(&client, &GeoIp::none());
    let window = Duration::from_secs(180 * 24 * 3600);
    let history = store.history(user, log.at, window).await.unwrap();
    assert_eq!(history.entries.len(), HISTORY_READ_LIMIT);
    // The newest ones: the last login learned is among them.
    assert_eq!(
        history.entries.last().map(|e| e.at),
        log.events.iter().rev().find_map(|e| matches!(
            e.event,
            shared::events::Event::LoginAttempted(_)
        )
        .then_some(e.occurred_at))
    );
    let remembered = memory.user_facts(user, &login);
    assert_eq!(remembered.counts.logins, HISTORY_READ_LIMIT as u64);
    assert_eq!(
        risk_worker::model::assess::UserFacts::from_history(&history.entries, &login).counts,
        remembered.counts
    );
}
