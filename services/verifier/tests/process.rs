//! The verifier binary as a process: its command line.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_verifier");

fn verifier(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("verifier runs")
}

#[test]
fn help_says_what_it_does_and_which_variables_configure_it() {
    let output = verifier(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "Checks the code the user typed",
        "MFA_CODE_HMAC_SECRET",
        "MFA_VERIFIER_ADDR",
        "MFA_DATABASE_URL",
        "README.md",
        "--version",
    ] {
        assert!(help.contains(expected), "no {expected:?} in:\n{help}");
    }
}

#[test]
fn version_names_the_binary_and_its_version() {
    let output = verifier(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("verifier {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_argument_is_named_and_exits_2() {
    let output = verifier(&["--smtp-host", "localhost"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--smtp-host"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing started: {output:?}");
}
