//! A binary's command line, checked as a person meets it: `--help` says what it does and
//! which settings configure it, `--version` names it, and a bad argument is named with
//! exit code 2 before anything starts.

// These are assertions: a failed one fails the calling test, where it is.
#![allow(clippy::panic, clippy::expect_used)]

use std::process::{Command, Output};

/// Runs `binary` with `args` and an empty environment (no `MFA_*` setting leaks in).
pub fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env_clear()
        .output()
        .unwrap_or_else(|error| panic!("{binary} runs: {error}"))
}

/// `binary args` succeeds and its standard output contains each of `expected`.
pub fn assert_help_names(binary: &str, args: &[&str], expected: &[&str]) {
    let output = run(binary, args);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in expected {
        assert!(help.contains(expected), "no {expected:?} in:\n{help}");
    }
}

/// `binary --version` prints `<name> <version>`.
pub fn assert_version(binary: &str, name: &str, version: &str) {
    let output = run(binary, &["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{name} {version}")
    );
}

/// `binary args` exits 2, names `named` on standard error and prints nothing else.
pub fn assert_refused(binary: &str, args: &[&str], named: &str) {
    let output = run(binary, args);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(named), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing started: {output:?}");
}
