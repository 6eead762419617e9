//! Issue 10.4: each producer prunes only its own published outbox rows. (login-intake's
//! admin actions announce their `AccountChanged` through the outbox, in the change's
//! transaction: `security::admin` covers the announcements with the broker up.)

use crate::support::*;

/// Each producer's housekeeping prunes its own published outbox rows, once they are an hour
/// old, and nobody else's: not another service's, and never an unpublished row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_producer_prunes_only_its_own_published_outbox_rows() {
    let system = spawn_system().await;
    let pool = &system.pool;
    let now = chrono::Utc::now();
    let two_hours_ago = now - chrono::Duration::hours(2);
    let producers = [
        "login-intake",
        "risk-worker",
        "code-worker",
        "verifier",
        "someone-else",
    ];
    // For each producer: an old published row, a fresh published row, an old unpublished row.
    for producer in producers {
        for (created, published) in [
            (two_hours_ago, Some(two_hours_ago)),
            (now, Some(now)),
            (two_hours_ago, None),
        ] {
            sqlx::query(
                "INSERT INTO outbox (event_id, producer, topic, key, payload, created_at, published_at)
                 VALUES ($1, $2, 'topic', 'key', '\\x00', $3, $4)",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(producer)
            .bind(created)
            .bind(published)
            .execute(pool)
            .await
            .unwrap();
        }
    }
    let left = |producer: &'static str| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE producer = $1")
            .bind(producer)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    let sweeps_of = [
        (
            "login-intake",
            login_intake::housekeeping::sweeps(
                &Options::default().rate_limits,
                mfa_runtime::config::DataProtection::DEFAULT_RETENTION_DAYS,
            ),
        ),
        (
            "risk-worker",
            risk_worker::housekeeping::sweeps(&risk_worker::rules::Policy::default()),
        ),
        ("code-worker", code_worker::housekeeping::sweeps()),
        ("verifier", verifier::housekeeping::sweeps()),
    ];
    let mut pruned = Vec::new();
    for (producer, sweeps) in sweeps_of {
        let outbox: Vec<_> = sweeps.into_iter().filter(|s| s.table == "outbox").collect();
        assert_eq!(outbox.len(), 1, "{producer} sweeps its outbox rows");
        let removed = mfa_store::housekeeping::sweep_once(pool, &outbox, now)
            .await
            .unwrap();
        assert_eq!(removed, vec![("outbox", 1)], "{producer}: its one old row");
        pruned.push(producer);
        for other in producers {
            let expected = if pruned.contains(&other) { 2 } else { 3 };
            assert_eq!(
                left(other).await,
                expected,
                "{other} after {producer}'s sweep"
            );
        }
    }
}
