//! The generate-schemas binary's command line (only `--help`, `--version` and a bad argument:
//! without arguments it rewrites schemas/, which the schema tests compare against).

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_generate-schemas");

fn generate_schemas(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("generate-schemas runs")
}

#[test]
fn help_says_what_it_writes() {
    let output = generate_schemas(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in ["schemas/*.schema.json", "README.md", "--version"] {
        assert!(help.contains(expected), "no {expected:?} in:\n{help}");
    }
}

#[test]
fn version_names_the_binary_and_its_version() {
    let output = generate_schemas(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("generate-schemas {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_argument_is_named_exits_2_and_writes_nothing() {
    let output = generate_schemas(&["--out", "/tmp/schemas"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--out"), "{stderr}");
    assert!(output.stdout.is_empty(), "no schema written: {output:?}");
}
