//! The login-intake binary as a process: its command line, and a task of it that dies taking
//! the whole process down (so an orchestrator restarts it) instead of leaving half a service.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use mfa_testkit::watched::Watched;
use mfa_testkit::{cli, stack};

const BIN: &str = env!("CARGO_BIN_EXE_login-intake");

#[test]
fn help_says_what_it_does_and_which_variables_configure_it() {
    cli::assert_help_names(
        BIN,
        &["--help"],
        &[
            "Takes logins from client backends",
            "MFA_ADMIN_API_KEY",
            "MFA_AUDIT_SIGNING_KEY",
            "MFA_DATABASE_URL",
            "MFA_SHUTDOWN_TIMEOUT_SECS",
            "MFA_METRICS_ADDR",
            "README.md",
            "--version",
        ],
    );
}

#[test]
fn version_names_the_binary_and_its_version() {
    cli::assert_version(BIN, "login-intake", env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_bad_argument_is_named_and_exits_2() {
    cli::assert_refused(BIN, &["--listen-on", "8080"], "--listen-on");
}

fn http_status(address: &str, path: &str) -> Option<String> {
    http_get(address, path).and_then(|answer| answer.lines().next().map(str::to_owned))
}

/// The whole answer, status line, headers and body.
fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[tokio::test]
async fn a_consumer_that_fails_takes_the_process_down_within_the_shutdown_deadline() {
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
        .env("MFA_ADMIN_API_KEY", "process-test-admin-key-0123456789")
        .envs(mfa_testkit::stack::DataProtectionKeys::generate().env())
        .env(
            "MFA_AUDIT_SIGNING_KEY",
            shared::audit::AuditSigner::generate("login-intake", "process-test").0,
        )
        .env("MFA_INTAKE_ADDR", "127.0.0.1:0")
        .env("MFA_ARGON2_THREADS", "1")
        .env(
            "MFA_SHUTDOWN_TIMEOUT_SECS",
            SHUTDOWN_TIMEOUT.as_secs().to_string(),
        )
        .env("MFA_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // The consumer of the risk decisions dies 3 s after the start: logins taken then
        // would stay pending forever, so the whole process must go.
        .env("MFA_TEST_FAIL_TASK", "decisions-consumer")
        .env("MFA_TEST_FAIL_TASK_AFTER_MS", "3000");
    let mut intake = Watched::spawn("login-intake", command);
    let listening = intake.until_message("login-intake listening", |_| {});
    let address = listening
        .field("address")
        .expect("address logged")
        .to_owned();
    // Before the fault the service is whole: its database and broker answer.
    let ready = http_status(&address, "/readyz");
    assert!(
        ready
            .as_deref()
            .is_some_and(|status| status.contains(" 200 ")),
        "readyz: {ready:?}"
    );
    // Without MFA_METRICS_ADDR the figures are on the API's address. (A family shows once it
    // has a series: the logins' appear with the first login, the pool's from the start.)
    let metrics = http_get(&address, "/metrics").unwrap_or_default();
    assert!(metrics.starts_with("HTTP/1.1 200 "), "{metrics}");
    for family in [
        "# TYPE mfa_argon2_queue_depth gauge",
        "# TYPE mfa_argon2_wait_seconds histogram",
        "# TYPE mfa_argon2_overloaded counter",
        "# TYPE mfa_http_requests counter",
        "# TYPE mfa_db_pool_max_connections gauge",
    ] {
        assert!(metrics.contains(family), "{family} in {metrics}");
    }

    let failed = intake.until_message("task ended on its own: stopping the service", |_| {});
    assert_eq!(failed.field("task"), Some("decisions-consumer"));
    let error = failed.field("error").expect("error logged");
    assert!(
        error.contains("decisions-consumer") && error.contains("failure injected"),
        "the error names the task and its cause: {error}"
    );

    let (status, took) = intake.exit_within(failed.at, SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    println!("login-intake exited {took:?} after its decisions consumer failed: {status}");
    assert_eq!(status.code(), Some(1), "a failure exits non-zero");
    assert!(took < SHUTDOWN_TIMEOUT, "took {took:?}");
    let stderr = intake.stderr();
    assert!(
        stderr.contains("a task stopped the service") && stderr.contains("decisions-consumer"),
        "{stderr}"
    );
    assert!(
        http_status(&address, "/healthz").is_none(),
        "the HTTP server stopped with the process"
    );
}
