//! The scheduled pruning of the short-lived tables.

use crate::support::*;

/// Housekeeping prunes the short-lived tables, and only the rows no reader needs any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_prunes_only_rows_nobody_needs() {
    let system = spawn_system().await;
    let pool = &system.pool;
    let now = chrono::Utc::now();
    let ago = |hours: i64| now - chrono::Duration::hours(hours);
    let id = uuid::Uuid::new_v4;
    // (table, insert taking a row id and a timestamp, how old the stale row is)
    let tables: [(&str, &str, chrono::DateTime<chrono::Utc>); 8] = [
        ("rate_limit_counters", "INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES ($1::text, $2, 1)", ago(3)),
        ("login_attempts", "INSERT INTO login_attempts (attempt_id, created_at) VALUES ($1, $2)", ago(8 * 24)),
        ("risk_failed_attempts", "INSERT INTO risk_failed_attempts (attempt_id, account, ip, occurred_at) VALUES ($1, $1::text, '10.0.0.1', $2)", ago(2)),
        ("risk_failed_codes", "INSERT INTO risk_failed_codes (event_id, user_id, occurred_at) VALUES ($1, $1, $2)", ago(25)),
        ("risk_challenges", "INSERT INTO risk_challenges (challenge_id, user_id, issued_at, expires_at) VALUES ($1, $1, $2, $2)", ago(3)),
        ("risk_decisions", "INSERT INTO risk_decisions (attempt_id, decision_event, created_at) VALUES ($1, '{}', $2)", ago(8 * 24)),
        ("risk_login_history", "INSERT INTO risk_login_history (attempt_id, user_id, occurred_at, features) VALUES ($1, $1, $2, '{}')", ago(181 * 24)),
        ("challenges", "INSERT INTO challenges (challenge_id, attempt_id, user_id, code_hash, expires_at, mfa_required_event_id, created_at) VALUES ($1, $1, $1, '\\x00', $2, $1, $2)", ago(26)),
    ];
    for (_, insert, stale) in &tables {
        for at in [*stale, now] {
            sqlx::query(insert)
                .bind(id())
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
    }

    let mut sweeps = login_intake::housekeeping::sweeps(
        &Options::default().rate_limits,
        mfa_runtime::config::DataProtection::DEFAULT_RETENTION_DAYS,
    );
    sweeps.extend(risk_worker::housekeeping::sweeps(
        &risk_worker::rules::Policy::default(),
    ));
    sweeps.extend(code_worker::housekeeping::sweeps());
    let removed = mfa_store::housekeeping::sweep_once(pool, &sweeps, now)
        .await
        .unwrap();

    for (table, _, _) in &tables {
        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(left, 1, "{table}: only the fresh row stays");
        assert!(removed.contains(&(*table, 1)), "{table}: {removed:?}");
    }
}
