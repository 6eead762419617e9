//! Issue 14, the right to erasure on a log kept for years: a deleted user's addresses, user
//! agents and device ids can be found nowhere in the clear (every topic, read with a Kafka
//! client; every table, read with SQL), while the other users' data is intact and
//! `risk-worker replay` over the whole log decides them exactly as the live worker did.

use std::collections::HashMap;
use std::time::Duration;

use mfa_store::data_keys::{DataKeys, Opened};
use risk_worker::geo::GeoIp;
use risk_worker::replay::Replay;
use serde_json::Value;
use shared::events::{Envelope, Event, EventType};

use crate::support::*;

/// The deleted user's client: values nobody else has, so finding any of them anywhere is a
/// leak.
const ERASED_IP: &str = "198.51.100.177";
const ERASED_TOKEN: &str = "ErasureProbe/7f3a";
const ERASED_DEVICE: &str = "erasure-probe-device";
const KEPT_IP: &str = "203.0.113.45";
/// In the erased user's /24: the kept user's login there shares its network with the
/// erased user's in the global counts.
const KEPT_NEIGHBOUR_IP: &str = "198.51.100.178";
const KEPT_DEVICE: &str = "kept-user-laptop";

fn erased_user_agent() -> String {
    format!("{CHROME_WINDOWS} {ERASED_TOKEN}")
}

/// A first login on a new device: its code is emailed and passed.
async fn login_with_code(system: &TestSystem, email: &str, device: &str, ip: &str, ua: &str) {
    let first = system.login(email, PASSWORD, Some(device), ip, ua).await;
    assert_eq!(first.body["status"], "mfa_required", "{}", first.body);
    // Each user's only code email.
    let code = system.mail.wait_for_code(email, 1).await;
    let challenge = first.body["challenge_id"].as_str().unwrap();
    assert_eq!(system.verify(challenge, &code).await.status, 200);
}

async fn known_login(system: &TestSystem, email: &str, device: &str, ip: &str, ua: &str) {
    let login = system.login(email, PASSWORD, Some(device), ip, ua).await;
    assert_eq!(login.body["status"], "approved", "{}", login.body);
}

/// One record as the broker keeps it: (topic, key, value, headers).
type Record = (String, String, Vec<u8>, Vec<(String, Vec<u8>)>);

/// Every record of every topic of the system, raw.
fn whole_log(system: &TestSystem) -> Vec<Record> {
    let topics = system.kafka.topics();
    let names = [
        &topics.login_requests,
        &topics.login_attempts,
        &topics.risk_decisions,
        &topics.challenges,
        &topics.verifications,
        &topics.accounts,
        &topics.dead_letters,
        &topics.audit_checkpoints,
    ];
    let mut records = Vec::new();
    for topic in names {
        let messages = mfa_testkit::event_log::read_topic(
            &system.kafka.brokers,
            topic,
            system.kafka.partitions,
        )
        .unwrap_or_else(|e| panic!("reading {topic}: {e}"));
        for m in messages {
            records.push((topic.clone(), m.key, m.payload, m.headers));
        }
    }
    records
}

/// The tables (and rows) where `needle` appears anywhere, every column read as text.
async fn tables_holding(system: &TestSystem, needle: &str) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    let mut holding = Vec::new();
    for table in tables {
        let count: i64 = sqlx::query_scalar(&format!(
            r#"SELECT count(*) FROM "{table}" t WHERE strpos(t::text, $1) > 0"#
        ))
        .bind(needle)
        .fetch_one(&system.pool)
        .await
        .unwrap();
        if count > 0 {
            holding.push((table, count));
        }
    }
    holding
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_personal_data_is_gone_from_the_log_and_the_database_and_replay_still_decides_the_others_alike(
) {
    let system = spawn_system().await;
    let erased_email = unique_email("erased");
    let kept_email = unique_email("kept");
    let erased_user = system
        .create_user(&erased_email, Some(PASSWORD), "acme", false)
        .await;
    let kept_user = system
        .create_user(&kept_email, Some(PASSWORD), "acme", false)
        .await;
    let erased_ua = erased_user_agent();

    // The two users' logins interleave, so the kept user's decisions are made with the
    // erased user's logins in the shared counts (global values, failures by address).
    login_with_code(&system, &kept_email, KEPT_DEVICE, KEPT_IP, CHROME_WINDOWS).await;
    system.wait_until_learned(&kept_user).await;
    login_with_code(&system, &erased_email, ERASED_DEVICE, ERASED_IP, &erased_ua).await;
    system.wait_until_learned(&erased_user).await;
    known_login(&system, &erased_email, ERASED_DEVICE, ERASED_IP, &erased_ua).await;
    let wrong = system
        .login(
            &erased_email,
            "not the password",
            Some(ERASED_DEVICE),
            ERASED_IP,
            &erased_ua,
        )
        .await;
    assert_eq!(wrong.body["status"], "rejected", "{}", wrong.body);
    known_login(&system, &kept_email, KEPT_DEVICE, KEPT_IP, CHROME_WINDOWS).await;
    // From the erased user's network.
    let from_there = system
        .login(
            &kept_email,
            PASSWORD,
            Some(KEPT_DEVICE),
            KEPT_NEIGHBOUR_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert!(from_there.body["status"].is_string(), "{}", from_there.body);

    // Before the deletion, the log keeps the personal fields sealed, never in the clear.
    let before = whole_log(&system);
    assert!(!before.is_empty());
    for (topic, key, value, _) in &before {
        let text = String::from_utf8_lossy(value);
        for clear in [ERASED_IP, ERASED_TOKEN, ERASED_DEVICE, KEPT_IP, KEPT_DEVICE] {
            assert!(
                !text.contains(clear),
                "{clear} in the clear on {topic} ({key}): {text}"
            );
        }
    }

    let deleted = system
        .http
        .delete(format!(
            "{}/v1/admin/users/{erased_user}",
            system.intake_url
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    // The workers delete their rows once they read the announcement.
    let mut holding = Vec::new();
    for _ in 0..100 {
        holding.clear();
        for needle in [ERASED_IP, ERASED_TOKEN, ERASED_DEVICE] {
            for (table, rows) in tables_holding(&system, needle).await {
                holding.push((needle, table, rows));
            }
        }
        if holding.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        holding.is_empty(),
        "the deleted user's data left in PostgreSQL: {holding:?}"
    );
    // The other user's rows are intact.
    assert!(!tables_holding(&system, KEPT_IP).await.is_empty());
    assert!(!tables_holding(&system, KEPT_DEVICE).await.is_empty());

    // The whole log, read again with a Kafka client: nothing of the deleted user in the
    // clear (keys, values, headers); their events still parse, and their personal fields
    // read as erased. The other user's open as they were.
    let records = whole_log(&system);
    for (topic, key, value, headers) in &records {
        let mut texts = vec![key.clone(), String::from_utf8_lossy(value).into_owned()];
        texts.extend(
            headers
                .iter()
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
        );
        for text in texts {
            for clear in [
                ERASED_IP,
                ERASED_TOKEN,
                ERASED_DEVICE,
                erased_email.as_str(),
            ] {
                assert!(!text.contains(clear), "{clear} on {topic} ({key}): {text}");
            }
        }
    }
    let data_keys = DataKeys::new(
        system.pool.clone(),
        system.data_protection.master_keys.clone(),
    );
    let events: Vec<Envelope> = records
        .iter()
        .filter(|(topic, ..)| {
            system
                .kafka
                .topics()
                .event_topics()
                .contains(&topic.as_str())
        })
        .map(|(_, _, value, _)| Envelope::from_json(value).unwrap())
        .collect();
    let (mut erased_attempts, mut kept_attempts) = (0, 0);
    for envelope in &events {
        let Event::LoginAttempted(attempt) = &envelope.event else {
            continue;
        };
        assert!(
            attempt.client.key_id().is_some(),
            "a LoginAttempted in the clear"
        );
        let opened = data_keys
            .open(
                &attempt.client,
                EventType::LoginAttempted.seal_context(envelope.attempt_id),
            )
            .await
            .unwrap();
        match attempt.user_id.map(|u| u.to_string()) {
            Some(user) if user == erased_user => {
                assert!(matches!(opened, Opened::Erased(_)), "{opened:?}");
                erased_attempts += 1;
            }
            Some(user) if user == kept_user => {
                let Opened::Fields(client) = opened else {
                    panic!("the kept user's login does not open: {opened:?}")
                };
                assert_eq!(client.user_agent.as_str(), CHROME_WINDOWS);
                assert_eq!(client.device_id.unwrap().as_str(), KEPT_DEVICE);
                kept_attempts += 1;
            }
            other => panic!("a login of {other:?}"),
        }
    }
    assert_eq!((erased_attempts, kept_attempts), (3, 3));

    // Replay over the whole log, with the deployment's keys: the kept user's logins are
    // decided exactly as the live worker decided them (type, score, level, reasons); the
    // deleted user's are erased, and still count for the others as they did.
    let mut input = events.clone();
    input.sort_by_key(|e| (e.occurred_at, e.event_id));
    let live: HashMap<String, Value> = events
        .iter()
        .filter(|e| e.producer == "risk-worker")
        .map(|e| {
            (
                e.attempt_id.to_string(),
                serde_json::from_slice(&e.to_json()).unwrap(),
            )
        })
        .collect();
    let lines: Vec<u8> = input
        .iter()
        .flat_map(|e| [e.to_json(), b"\n".to_vec()].concat())
        .collect();
    let policy = risk_worker::rules::Policy {
        code_ttl: Options::default().code_ttl,
        code_caps: Options::default().code_caps,
        ..Default::default()
    };
    let mut output = Vec::new();
    let stats = Replay::new(policy, std::sync::Arc::new(GeoIp::none()))
        .with_pseudonym_key(system.data_protection.pseudonym_key.clone())
        .with_data_keys(PrefetchedKeys::of(&system, &input).await)
        .run(&lines[..], &mut output)
        .unwrap();
    assert_eq!((stats.decisions, stats.erased), (3, 3), "{stats:?}");
    let replayed: Vec<Value> = output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_replayed_as_live(&live, &replayed, &["risk", "counted"]);
}
