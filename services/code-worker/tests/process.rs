//! The code-worker binary as a process: its command line.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_code-worker");

fn code_worker(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("code-worker runs")
}

#[test]
fn help_says_what_it_does_and_which_variables_configure_it() {
    let output = code_worker(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "emails the 6-digit code",
        "MFA_CODE_HMAC_SECRET",
        "MFA_SMTP_HOST",
        "MFA_DATABASE_URL",
        "README.md",
        "--version",
    ] {
        assert!(help.contains(expected), "no {expected:?} in:\n{help}");
    }
}

#[test]
fn version_names_the_binary_and_its_version() {
    let output = code_worker(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("code-worker {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_argument_is_named_and_exits_2() {
    let output = code_worker(&["--smtp-host", "localhost"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--smtp-host"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing started: {output:?}");
}
