//! The load generator of `BENCHMARKS.md` (`mfa-bench load`), in a smoke run: a few users and
//! a few seconds of logins through the real services. Its figures are not checked here (no
//! timed assertions in the tests): that it works, and that every login got its decision.

use std::time::Duration;

use mfa_bench::load::{self, LoadConfig, Mix, Pace, Target};

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
