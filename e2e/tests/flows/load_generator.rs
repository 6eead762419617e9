//! The load generator of `BENCHMARKS.md` (`mfa-bench load`), in a smoke run: a few users and
//! a few seconds of logins through the real services; and the population `mfa-bench growth`
//! writes straight into the database. Their figures are not checked here (no timed
//! assertions in the tests): that they work, that every login got its decision, and that a
//! generated history is one the risk worker approves a known device from.

use std::sync::Arc;
use std::time::Duration;

use mfa_bench::growth::{self, HistoryShape, Population};
use mfa_bench::load::{self, Drive, LoadConfig, Mix, Pace, Target};
use risk_worker::geo::GeoIp;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_run_of_the_load_generator_decides_every_login() {
    let system = spawn_system().await;
    let maildev = std::env::var("MFA_MAILDEV_URL").expect("the stack's maildev (stack.env)");
    let report = load::run(LoadConfig {
        target: Target {
            intake: system.intake_url.clone(),
            verifier: system.verifier_url.clone(),
            maildev,
            admin_key: ADMIN_KEY.to_owned(),
        },
        users: 6,
        // Enough codes that the MFA path is walked in a few seconds.
        mix: Mix {
            known: 40,
            new_device: 30,
            wrong_password: 15,
            sso: 15,
        },
        pace: Pace::Closed { concurrency: 3 },
        duration: Duration::from_secs(3),
        decision_timeout: Duration::from_secs(20),
        progress: false,
        setup_concurrency: 3,
    })
    .await
    .expect("the load runs");
    assert!(report.started >= 10, "{report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.decided, report.started, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(
        report.decision_ms["all"].count, report.decided,
        "{report:?}"
    );
    for outcome in ["approved", "mfa_passed"] {
        assert!(
            report.outcomes.contains_key(outcome),
            "{outcome}: {report:?}"
        );
    }
    assert!(
        report.outcomes.contains_key("rejected:invalid_credentials")
            || !report.decision_ms.contains_key("wrong_password"),
        "a wrong password is rejected: {report:?}"
    );
    assert_eq!(
        report.mfa_round_trip_ms.count,
        report.outcomes.get("mfa_passed").copied().unwrap_or(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_population_logs_in_from_its_known_devices_approved() {
    let system = spawn_system().await;
    let maildev = std::env::var("MFA_MAILDEV_URL").expect("the stack's maildev (stack.env)");
    let domain = format!("@{}.growth.example.com", uuid::Uuid::new_v4().simple());
    let population = Population {
        users: 50,
        history: HistoryShape {
            days: 14,
            logins_per_week: 3.0,
        },
        // The company of the system's client key, which already exists.
        company: "acme".into(),
        email_domain: domain.clone(),
        now: chrono::Utc::now(),
    };
    // The test system's risk worker has no GeoIP databases.
    let generated = growth::generate(
        &system.pool,
        &population,
        &Arc::new(GeoIp::none()),
        &system.data_protection.pseudonym_key,
    )
    .await
    .expect("the population is generated");
    assert_eq!(generated.users, 50);
    assert_eq!(generated.premade.len(), 50);
    let count = |query: &'static str| {
        let pool = system.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(query)
                .fetch_one(&pool)
                .await
                .expect(query)
        }
    };
    let rows = count("SELECT count(*) FROM risk_login_history").await;
    assert_eq!(u64::try_from(rows).unwrap(), generated.history_rows);
    assert!(rows >= 50, "every user has at least one login: {rows}");
    assert_eq!(
        count("SELECT coalesce(sum(logins), 0)::bigint FROM risk_global_totals").await,
        rows,
        "every history row is counted once in the global totals"
    );
    assert_eq!(
        count("SELECT count(*) FROM risk_global_values WHERE level = 'user'").await,
        50
    );
    assert_eq!(
        count("SELECT count(*) FROM users WHERE company_id = 'acme'").await,
        50,
        "the generated users, in the company of the client key"
    );

    // Their next logins from home, on the known device, through the load generator.
    let target = Target {
        intake: system.intake_url.clone(),
        verifier: system.verifier_url.clone(),
        maildev,
        admin_key: ADMIN_KEY.to_owned(),
    };
    let prepared = load::premade(&target, "acme", &domain, generated.premade.clone())
        .await
        .expect("the premade users are handed to the load generator");
    let report = prepared
        .drive(Drive {
            mix: Mix {
                known: 1,
                new_device: 0,
                wrong_password: 0,
                sso: 0,
            },
            pace: Pace::Closed { concurrency: 2 },
            duration: Duration::from_secs(2),
            decision_timeout: Duration::from_secs(20),
            progress: false,
        })
        .await;
    assert!(report.decided > 0, "{report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(
        report.outcomes.keys().collect::<Vec<_>>(),
        ["approved"],
        "known devices are approved from the generated history: {report:?}"
    );

    // The history is what approves them: the same user on a device and network it never
    // had is asked for a code.
    let user = &generated.premade[0];
    let response = system
        .login(
            &user.email,
            load::PASSWORD,
            Some("never-seen-device"),
            "203.0.113.77",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        )
        .await;
    assert_eq!(response.body["status"], "mfa_required", "{}", response.body);
}
