//! The risk-worker binary as a process: its command line (`serve`, the default, and
//! `replay`), and a task of it that panics taking the whole process down.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

use mfa_testkit::stack;
use mfa_testkit::watched::Watched;

const BIN: &str = env!("CARGO_BIN_EXE_risk-worker");

fn risk_worker(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("risk-worker runs")
}

#[test]
fn help_lists_the_commands_and_the_variables() {
    let output = risk_worker(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "Decides each login",
        "serve",
        "replay",
        "MFA_RISK_MEDIUM_THRESHOLD",
        "MFA_CODE_TTL_SECS",
        "MFA_METRICS_ADDR",
        "MFA_DATABASE_URL",
        "README.md",
    ] {
        assert!(help.contains(expected), "no {expected:?} in:\n{help}");
    }
}

#[test]
fn replay_has_help_of_its_own() {
    let output = risk_worker(&["replay", "--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "stdin",
        "--model <full|freeman-plain>",
        "MFA_RISK_MODEL",
        "README.md",
    ] {
        assert!(help.contains(expected), "no {expected:?} in:\n{help}");
    }
    // Replay reads the database only for the data keys of sealed fields, no broker setting,
    // and serves no metrics.
    assert!(help.contains("MFA_MASTER_KEYS"), "{help}");
    assert!(!help.contains("MFA_KAFKA_BROKERS"), "{help}");
    assert!(!help.contains("MFA_METRICS_ADDR"), "{help}");
    let serve = risk_worker(&["serve", "--help"]);
    assert!(serve.status.success(), "{serve:?}");
    assert!(String::from_utf8_lossy(&serve.stdout).contains("MFA_KAFKA_BROKERS"));
}

#[test]
fn version_names_the_binary_and_its_version() {
    let output = risk_worker(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("risk-worker {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_arguments_are_named_and_exit_2() {
    for (args, named) in [
        (&["--threshold", "1"][..], "--threshold"),
        (&["decide"][..], "decide"),
        (&["replay", "--modle", "full"][..], "--modle"),
        (&["replay", "--model", "fancy"][..], "fancy"),
        (&["replay", "--model"][..], "--model"),
    ] {
        let output = risk_worker(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
    }
}

#[tokio::test]
async fn a_panicking_relay_takes_the_process_down_within_the_shutdown_deadline() {
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
    let database_url = stack::create_database().await;
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("MFA_DATABASE_URL", &database_url)
        .env("MFA_KAFKA_BROKERS", stack::setting("MFA_KAFKA_BROKERS"))
        .env("MFA_TOPIC_NAMESPACE", &namespace)
        .env("MFA_TOPIC_PARTITIONS", "2")
        // Any free port: the default one may be another worker's.
        .env("MFA_METRICS_ADDR", "127.0.0.1:0")
        .envs(mfa_testkit::stack::DataProtectionKeys::generate().env())
        .env(
            "MFA_AUDIT_SIGNING_KEY",
            shared::audit::AuditSigner::generate("risk-worker", "process-test").0,
        )
        .env(
            "MFA_SHUTDOWN_TIMEOUT_SECS",
            SHUTDOWN_TIMEOUT.as_secs().to_string(),
        )
        .env("MFA_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // The outbox relay panics 2 s after the start: decisions would be stored and never
        // published, so the whole process must go.
        .env("MFA_TEST_FAIL_TASK", "outbox-relay:panic")
        .env("MFA_TEST_FAIL_TASK_AFTER_MS", "2000");
    let mut worker = Watched::spawn("risk-worker", command);
    let mut consuming = false;
    let failure = worker.until_message("task ended on its own: stopping the service", |line| {
        consuming |= line.field("message") == Some("risk-worker consuming");
    });
    assert!(consuming, "the worker ran before the fault");
    assert_eq!(failure.field("task"), Some("outbox-relay"));
    let error = failure.field("error").expect("error logged");
    assert!(
        error.contains("task outbox-relay panicked") && error.contains("MFA_TEST_FAIL_TASK"),
        "{error}"
    );
    let (status, took) = worker.exit_within(failure.at, SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    println!("risk-worker exited {took:?} after its relay panicked: {status}");
    assert_eq!(
        status.code(),
        Some(1),
        "a panic exits non-zero, not by abort"
    );
    assert!(took < SHUTDOWN_TIMEOUT, "took {took:?}");
    let stderr = worker.stderr();
    assert!(stderr.contains("a task stopped the service"), "{stderr}");
}
