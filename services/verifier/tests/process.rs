//! The verifier binary as a process: its command line.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mfa_testkit::cli;

const BIN: &str = env!("CARGO_BIN_EXE_verifier");

#[test]
fn help_says_what_it_does_and_which_variables_configure_it() {
    cli::assert_help_names(
        BIN,
        &["--help"],
        &[
            "Checks the code the user typed",
            "MFA_CODE_HMAC_SECRET",
            "MFA_AUDIT_SIGNING_KEY",
            "MFA_VERIFIER_ADDR",
            "MFA_METRICS_ADDR",
            "MFA_DATABASE_URL",
            "README.md",
            "--version",
        ],
    );
}

#[test]
fn version_names_the_binary_and_its_version() {
    cli::assert_version(BIN, "verifier", env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_bad_argument_is_named_and_exits_2() {
    cli::assert_refused(BIN, &["--smtp-host", "localhost"], "--smtp-host");
}
