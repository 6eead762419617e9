//! The risk-eval binary's command line: help, version, and a bad argument named (exit 2).

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_risk-eval");

fn risk_eval(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("risk-eval runs")
}

#[test]
fn help_lists_the_commands_and_points_at_the_settings() {
    let output = risk_eval(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "generate",
        "stats",
        "run",
        "throughput",
        "MFA_GEOIP_CITY_DB",
        "README.md",
    ] {
        assert!(help.contains(expected), "no {expected:?} in:\n{help}");
    }
    let run = risk_eval(&["run", "--help"]);
    assert!(run.status.success(), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stdout).contains("--replay-bin"));
}

#[test]
fn version_names_the_binary_and_its_version() {
    let output = risk_eval(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("risk-eval {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_argument_is_named_and_exits_2() {
    let output = risk_eval(&["run", "--seedz", "1"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--seedz"), "{stderr}");
}
