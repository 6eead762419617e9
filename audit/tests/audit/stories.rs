//! `timeline`, `report` and `recheck` through the binary, on a generated export: their
//! figures agree with the events the export holds, a redelivered copy changes nothing, and bad
//! arguments are refused with a clear message.

// The helpers too: a failed step fails the test, loudly (as in the other modules).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};

use chrono::{Duration, Utc};
use serde_json::Value;
use shared::events::{Envelope, Event};

use crate::support::{audit, path, text, Log};

/// The events of the export, each once, as the commands are to read them.
fn events(log: &Log) -> Vec<Envelope> {
    let mut seen = HashSet::new();
    log.records
        .iter()
        .filter(|record| !record.topic.ends_with("audit-checkpoints"))
        .filter_map(|record| Envelope::from_json(&record.value).ok())
        .filter(|event| seen.insert(event.event_id))
        .collect()
}

fn json(args: &[&str]) -> Value {
    let out = audit(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_report_counts_the_exports_logins_once_each() {
    let start = Utc::now();
    let log = Log::generate(3000, "mfa", start);
    let events = events(&log);
    let logins = events
        .iter()
        .filter(|e| matches!(e.event, Event::LoginAttempted(_)))
        .count() as u64;
    let asked = events
        .iter()
        .filter(|e| matches!(e.event, Event::MfaRequired(_) | Event::CodeThrottled(_)))
        .count() as u64;
    assert!(logins > 100 && asked > 0, "{logins} logins, {asked} codes");

    // A redelivered copy of the first login is read once.
    let mut records = log.records.clone();
    let first_login = records
        .iter()
        .position(|r| r.topic.ends_with("login-attempts"))
        .unwrap();
    let mut copy = records[first_login].clone();
    copy.offset += 1_000_000;
    records.push(copy);
    let export = log.write_export("with-copy.jsonl", &records, &[]);
    let chart = log.dir.path().join("chart.svg");
    let (from, to) = (
        (start - Duration::days(1)).date_naive().to_string(),
        (start + Duration::days(1)).date_naive().to_string(),
    );
    let report = json(&[
        "report",
        "--from",
        &from,
        "--to",
        &to,
        "--log-file",
        path(&export),
        "--chart",
        path(&chart),
        "--json",
        "--quiet",
    ]);
    let totals = &report["totals"];
    assert_eq!(totals["logins"], logins, "{report:#}");
    assert_eq!(totals["mfa_required"], asked, "{report:#}");
    let rate = totals["mfa_rate"].as_f64().unwrap();
    assert!((rate - asked as f64 / logins as f64).abs() < 1e-3, "{rate}");
    let by_platform: u64 = report["by_platform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["logins"].as_u64().unwrap())
        .sum();
    let by_day: u64 = report["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["logins"].as_u64().unwrap())
        .sum();
    assert_eq!((by_platform, by_day), (logins, logins));
    assert_eq!(report["by_day"].as_array().unwrap().len(), 3);
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("MFA rate"), "{svg}");

    // The table says the same.
    let out = audit(&[
        "report",
        "--from",
        &from,
        "--to",
        &to,
        "--log-file",
        path(&export),
        "--quiet",
    ]);
    let table = text(&out.stdout);
    let all: Vec<&str> = table
        .lines()
        .find(|line| line.starts_with("all "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(all[1], logins.to_string(), "{table}");
}

#[test]
fn a_users_timeline_is_every_login_of_theirs_in_order() {
    let log = Log::generate(1500, "mfa", Utc::now());
    let events = events(&log);
    let mut per_user: HashMap<String, Vec<String>> = HashMap::new();
    for event in &events {
        if let Event::LoginAttempted(login) = &event.event {
            if let Some(user) = login.user_id {
                per_user
                    .entry(user.to_string())
                    .or_default()
                    .push(event.attempt_id.to_string());
            }
        }
    }
    let (user, attempts) = per_user
        .iter()
        .max_by_key(|(_, attempts)| attempts.len())
        .unwrap();
    let export = log.write_export("log.jsonl", &log.records, &[]);
    let timeline = json(&[
        "timeline",
        "--user",
        user,
        "--from",
        path(&export),
        "--json",
        "--quiet",
    ]);
    let listed: Vec<&str> = timeline["logins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attempt_id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = attempts.iter().map(String::as_str).collect();
    expected.sort_by_key(|attempt| {
        events
            .iter()
            .position(|e| e.attempt_id.to_string() == *attempt)
            .unwrap()
    });
    assert_eq!(listed, expected);
    for login in timeline["logins"].as_array().unwrap() {
        assert_eq!(login["user_id"], user.as_str());
        assert!(login["outcome"]["state"].is_string(), "{login}");
        assert!(!login["steps"].as_array().unwrap().is_empty(), "{login}");
    }

    let one = json(&[
        "timeline",
        "--attempt",
        expected[0],
        "--from",
        path(&export),
        "--json",
        "--quiet",
    ]);
    assert_eq!(one["logins"].as_array().unwrap().len(), 1);
    let table = text(
        &audit(&[
            "timeline",
            "--user",
            user,
            "--from",
            path(&export),
            "--quiet",
        ])
        .stdout,
    );
    assert!(
        table.contains(&format!("{} login(s)", expected.len())),
        "{table}"
    );
    assert!(table.contains("decision: "), "{table}");
}

#[test]
fn recheck_changes_nothing_unasked_and_names_what_a_lower_threshold_changes() {
    let log = Log::generate(1500, "mfa", Utc::now());
    let export = log.write_export("log.jsonl", &log.records, &[]);
    let same = json(&["recheck", "--from", path(&export), "--json", "--quiet"]);
    assert!(same["totals"]["logins"].as_u64().unwrap() > 50, "{same:#}");
    assert_eq!(same["totals"]["changed"], 0, "{same:#}");
    let unchanged = json(&[
        "recheck",
        "--set",
        "MFA_RISK_MEDIUM_THRESHOLD=-0.5",
        "--from",
        path(&export),
        "--json",
        "--quiet",
    ]);
    assert_eq!(
        unchanged["totals"]["changed"], 0,
        "the default, set: {unchanged:#}"
    );
    let lower = json(&[
        "recheck",
        "--set",
        "MFA_RISK_MEDIUM_THRESHOLD=-1000",
        "--from",
        path(&export),
        "--json",
        "--quiet",
    ]);
    let changed = lower["totals"]["changed"].as_u64().unwrap();
    assert!(changed > 0, "{lower:#}");
    let changes = lower["changes"].as_array().unwrap();
    assert_eq!(changes.len() as u64, changed);
    // Approvals now ask for a code; none is approved that was not.
    assert!(changes
        .iter()
        .any(|c| c["old"]["decision"] == "approved" && c["new"]["decision"] == "mfa_required"));
    assert!(
        changes.iter().all(|c| c["new"]["decision"] != "approved"),
        "{lower:#}"
    );
}

#[test]
fn bad_arguments_are_refused_with_what_is_wrong() {
    let out = audit(&[
        "report",
        "--from",
        "2025-13-01",
        "--to",
        "2025-12-31",
        "--log-file",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("\"2025-13-01\" is not a date"),
        "{}",
        text(&out.stderr)
    );
    let out = audit(&["recheck", "--set", "MFA_DATABASE_URL=x", "--from", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a risk setting"),
        "{}",
        text(&out.stderr)
    );
    let out = audit(&["timeline", "--from", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--user"),
        "{}",
        text(&out.stderr)
    );
    let out = audit(&["timeline", "--user", "not-a-user", "--from", "x"]);
    assert_eq!(out.status.code(), Some(2));
}
