//! The binary on constructed exports: exit status, the violations it names, malformed lines.

// Test set-up: a step that fails is the test failing, and says where.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use shared::audit::SEAL_HEADER;

use crate::support::{audit, path, text, Log};

#[test]
fn a_clean_export_verifies_with_exit_0_and_a_summary() {
    let log = Log::generate(300, "mfa", Utc::now());
    let export = log.write_export("clean.jsonl", &log.records, &[]);
    let keys = log.key_file();
    let out = audit(&[
        "verify",
        "--from",
        path(&export),
        "--keys",
        path(&keys),
        "--quiet",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("CLEAN: 0 violations"), "{stdout}");
    assert!(stdout.contains("events/s"), "{stdout}");
    assert!(stdout.contains("in 4 chains"), "{stdout}");

    let out = audit(&[
        "verify",
        "--from",
        path(&export),
        "--keys",
        path(&keys),
        "--quiet",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["violations"], 0);
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(0));
    assert!(report["summary"]["events"].as_u64().unwrap() >= 300);
}

#[test]
fn a_tampered_export_exits_1_naming_the_violation() {
    let log = Log::generate(300, "mfa", Utc::now());
    let mut records = log.records.clone();
    let index = records
        .iter()
        .position(|record| record.topic.ends_with("risk-decisions") && record.offset == 7)
        .unwrap();
    let seal = String::from_utf8(records[index].header(SEAL_HEADER).unwrap().to_vec()).unwrap();
    records[index].value = String::from_utf8(records[index].value.clone())
        .unwrap()
        .replacen("\"level\":\"", "\"level\": \"", 1)
        .into_bytes();
    let export = log.write_export("altered.jsonl", &records, &[]);
    let out = audit(&[
        "verify",
        "--from",
        path(&export),
        "--keys",
        path(&log.key_file()),
        "--quiet",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("VIOLATION [head-mismatch]"), "{stdout}");
    let chain = seal.split(':').next().unwrap();
    assert!(stdout.contains(chain), "{stdout}");
    assert!(stdout.contains("NOT CLEAN: 1 violations"), "{stdout}");

    let out = audit(&[
        "verify",
        "--from",
        path(&export),
        "--keys",
        path(&log.key_file()),
        "--quiet",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["kind"], "head-mismatch");
    assert_eq!(report["summary"]["by_kind"]["violation head-mismatch"], 1);
}

#[test]
fn a_malformed_line_is_named_and_the_rest_is_still_verified() {
    let log = Log::generate(200, "mfa", Utc::now());
    let export = log.write_export(
        "damaged.jsonl",
        &log.records,
        &[(5, "{\"topic\": \"mfa.accounts\", oops")],
    );
    let out = audit(&[
        "verify",
        "--from",
        path(&export),
        "--keys",
        path(&log.key_file()),
        "--quiet",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["kind"], "malformed-line");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.starts_with("line 5 of "), "{message}");
    // Every record around the bad line was read and checked.
    assert_eq!(report["summary"]["records"], log.records.len());
    assert_eq!(
        report["summary"]["checkpoints_matched"],
        report["summary"]["checkpoints"]
    );
}

#[test]
fn a_missing_or_bad_key_file_is_an_error_not_a_verdict() {
    let log = Log::generate(50, "mfa", Utc::now());
    let export = log.write_export("log.jsonl", &log.records, &[]);
    let out = audit(&[
        "verify",
        "--from",
        path(&export),
        "--keys",
        "/nonexistent/keys.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read the key file"),
        "{}",
        text(&out.stderr)
    );
    let bad = log.dir.path().join("bad-keys.json");
    std::fs::write(&bad, b"{\"keys\": 1}").unwrap();
    let out = audit(&["verify", "--from", path(&export), "--keys", path(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("malformed public key file"),
        "{}",
        text(&out.stderr)
    );
    let out = audit(&[
        "verify",
        "--from",
        "/nonexistent/log.jsonl",
        "--keys",
        path(&log.key_file()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot open the export"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_subcommand_has_help() {
    let out = audit(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let top = text(&out.stdout);
    for command in ["export", "verify", "bench-verify"] {
        assert!(top.contains(command), "{top}");
        let out = audit(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{command}");
        assert!(text(&out.stdout).contains("Usage: mfa-audit"), "{command}");
    }
}

#[test]
fn bench_verify_runs_and_reports_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = audit(&[
        "bench-verify",
        "--events",
        "5000",
        "--dir",
        path(dir.path()),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["events"].as_u64().unwrap() >= 5000);
    assert!(report["events_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["checkpoints"].as_u64().unwrap() >= 4);
    // The temporary export is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
