//! `risk-worker replay`: determinism, the line-by-line protocol of the real binary, learning
//! after MFA, and the real GeoIP data (fetched by scripts/fetch-geoip).

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use risk_worker::config::GeoIpConfig;
use risk_worker::geo::GeoIp;
use risk_worker::replay::{Replay, ReplayStats};
use risk_worker::rules::{CodeCaps, Policy};
use serde_json::Value;
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, DeviceId, Platform, PrimaryFactor, UserAgent,
    UserId,
};
use shared::events::{
    Envelope, Event, LoginApproved, LoginAttempted, MfaFailed, MfaFailureReason, MfaSucceeded,
    SCHEMA_VERSION,
};
use uuid::Uuid;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An input event with ids derived from `n`, as an event log would hold.
fn envelope(n: u128, attempt: u128, at: DateTime<Utc>, producer: &str, event: Event) -> Envelope {
    Envelope {
        event_id: Uuid::from_u128(n),
        schema_version: SCHEMA_VERSION,
        occurred_at: at,
        attempt_id: AttemptId::from_uuid(Uuid::from_u128(attempt)),
        causation_id: None,
        producer: producer.into(),
        event,
    }
}

fn login(user: UserId, ip: &str, device: Option<&str>, ok: bool) -> Event {
    Event::LoginAttempted(LoginAttempted {
        user_id: Some(user),
        company_id: Some(CompanyId::parse("acme").unwrap()),
        auth_method: AuthMethod::Password,
        primary_factor: if ok {
            PrimaryFactor::Succeeded
        } else {
            PrimaryFactor::Failed
        },
        privileged: false,
        platform: Platform::Dashboard,
        client: shared::personal::Personal::Clear(shared::events::LoginClient {
            ip: ip.parse().unwrap(),
            user_agent: UserAgent::parse(CHROME).unwrap(),
            device_id: device.map(|d| DeviceId::parse(d).unwrap()),
        }),
        locale: shared::domain::Locale::En,
    })
}

/// A small log: a first login passed with MFA, usual logins, a stranger, wrong passwords.
fn event_log() -> Vec<Envelope> {
    let alice = UserId::from_uuid(Uuid::from_u128(0xa11ce));
    let mut events = Vec::new();
    let mut n = 1u128;
    let mut at = start();
    fn push(events: &mut Vec<Envelope>, n: &mut u128, at: DateTime<Utc>, event: Event) {
        events.push(envelope(*n, *n, at, "login-intake", event));
        *n += 1;
    }
    // First login: MfaRequired; the user passes it (same attempt id).
    push(
        &mut events,
        &mut n,
        at,
        login(alice, "81.2.69.142", Some("laptop"), true),
    );
    let first_attempt = events[0].attempt_id;
    for event in [
        Event::MfaSucceeded(MfaSucceeded {
            user_id: alice,
            challenge_id: ChallengeId::from_uuid(Uuid::from_u128(77)),
        }),
        Event::LoginApproved(LoginApproved {
            counted: None,
            user_id: alice,
            approved_after_mfa: true,
            challenge_id: Some(ChallengeId::from_uuid(Uuid::from_u128(77))),
            risk: None,
        }),
    ] {
        let mut e = envelope(n, 0, at + Duration::seconds(20), "verifier", event);
        e.attempt_id = first_attempt;
        events.push(e);
        n += 1;
    }
    for _ in 0..5 {
        at += Duration::hours(20);
        push(
            &mut events,
            &mut n,
            at,
            login(alice, "81.2.69.142", Some("laptop"), true),
        );
    }
    at += Duration::hours(1);
    push(
        &mut events,
        &mut n,
        at,
        login(alice, "175.16.199.9", None, true),
    );
    for _ in 0..3 {
        at += Duration::minutes(1);
        push(
            &mut events,
            &mut n,
            at,
            login(alice, "175.16.199.9", None, false),
        );
    }
    events
}

fn replay_lines(events: &[Envelope], geo: Arc<GeoIp>) -> Vec<u8> {
    replay_lines_with(Policy::default(), events, geo).0
}

/// The output of replaying `events` with `policy`, and the run's figures.
fn replay_lines_with(
    policy: Policy,
    events: &[Envelope],
    geo: Arc<GeoIp>,
) -> (Vec<u8>, ReplayStats) {
    let input: Vec<u8> = events
        .iter()
        .flat_map(|e| [e.to_json(), b"\n".to_vec()].concat())
        .collect();
    let mut output = Vec::new();
    let stats = Replay::new(policy, geo)
        .run(&input[..], &mut output)
        .unwrap();
    (output, stats)
}

fn decisions(output: &[u8]) -> Vec<Value> {
    output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn the_same_input_gives_byte_identical_output() {
    let events = event_log();
    let geo = Arc::new(GeoIp::none());
    let first = replay_lines(&events, geo.clone());
    let second = replay_lines(&events, geo);
    assert_eq!(first, second);
    let decisions = decisions(&first);
    assert_eq!(decisions.len(), 10, "one decision per LoginAttempted");
    // The ids are derived from the input's: a decision names its cause.
    for (decision, cause) in decisions.iter().zip(
        events
            .iter()
            .filter(|e| matches!(e.event, Event::LoginAttempted(_))),
    ) {
        assert_eq!(decision["causation_id"], cause.event_id.to_string());
        assert_eq!(
            decision["occurred_at"],
            serde_json::to_value(cause.occurred_at).unwrap()
        );
    }
}

#[test]
fn it_learns_after_mfa_and_explains_each_decision() {
    let decisions = decisions(&replay_lines(&event_log(), Arc::new(GeoIp::none())));
    let kinds: Vec<&str> = decisions
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "MfaRequired",
            "LoginApproved",
            "LoginApproved",
            "LoginApproved",
            "LoginApproved",
            "LoginApproved",
            "MfaRequired",
            "LoginRejected",
            "LoginRejected",
            "LoginRejected",
        ],
        "{:#?}",
        decisions
            .iter()
            .map(|d| &d["payload"]["risk"])
            .collect::<Vec<_>>()
    );
    let risk = |i: usize| &decisions[i]["payload"]["risk"];
    assert_eq!(risk(0)["reasons"], serde_json::json!(["first_login"]));
    assert_eq!(risk(1)["level"], "low");
    assert_eq!(
        risk(6)["reasons"],
        serde_json::json!(["missing_device_id", "new_network"])
    );
    assert_eq!(risk(6)["model_version"], "adaptive-1");
    assert!(risk(6)["score"].as_f64().unwrap() > risk(1)["score"].as_f64().unwrap());
}

#[test]
fn the_binary_answers_each_login_before_reading_the_next() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_risk-worker"))
        .arg("replay")
        .env_remove("MFA_GEOIP_CITY_DB")
        .env_remove("MFA_GEOIP_ASN_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for event in event_log().iter().take(4) {
        stdin.write_all(&event.to_json()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        if matches!(event.event, Event::LoginAttempted(_)) {
            // Stdin is still open: this line can only come from a per-line flush.
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let decision: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(decision["attempt_id"], event.attempt_id.to_string());
        }
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_malformed_line_is_a_clear_error_with_its_number() {
    let output = Command::new(env!("CARGO_BIN_EXE_risk-worker"))
        .arg("replay")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&event_log()[0].to_json()).unwrap();
            stdin
                .write_all(b"\n{\"event_type\": \"LoginAttempted\"}\n")
                .unwrap();
            drop(stdin);
            child.wait_with_output()
        })
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("input line 2"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
}

/// The databases scripts/fetch-geoip downloads; `scripts/test` exports their paths.
fn fetched_geoip() -> GeoIp {
    let paths = |name: &str| -> Vec<std::path::PathBuf> {
        std::env::var(name)
            .unwrap_or_else(|_| {
                panic!("{name} is not set: run `eval \"$(scripts/fetch-geoip)\"` or scripts/test")
            })
            .split(',')
            .map(Into::into)
            .collect()
    };
    GeoIpConfig {
        city: paths("MFA_GEOIP_CITY_DB"),
        asn: paths("MFA_GEOIP_ASN_DB"),
        default_accuracy_km: 100.0,
    }
    .open()
    .unwrap()
}

#[test]
fn the_fetched_geoip_data_gives_asn_country_and_coordinates() {
    let geo = fetched_geoip();
    // Google's public resolver: AS15169, in the US.
    let google = geo.lookup("8.8.8.8".parse().unwrap());
    assert_eq!(google.asn, Some(15169));
    assert_eq!(google.country.as_deref(), Some("US"));
    assert!(google.location.is_some());
    // Deutsche Telekom, Germany.
    let telekom = geo.lookup("80.146.0.1".parse().unwrap());
    assert_eq!(telekom.asn, Some(3320));
    assert_eq!(telekom.country.as_deref(), Some("DE"));
    // IPv6 from the second file of each pair.
    let v6 = geo.lookup("2001:4860:4860::8888".parse().unwrap());
    assert_eq!(v6.asn, Some(15169));
    assert!(v6.country.is_some());
}

#[test]
fn with_geoip_a_login_from_another_continent_minutes_later_is_impossible_travel() {
    let geo = Arc::new(fetched_geoip());
    let alice = UserId::from_uuid(Uuid::from_u128(0xa11ce));
    let at = start();
    let mut events = vec![envelope(
        1,
        1,
        at,
        "login-intake",
        login(alice, "80.146.0.1", Some("laptop"), true),
    )];
    let mut passed = envelope(
        2,
        1,
        at + Duration::seconds(10),
        "verifier",
        Event::MfaSucceeded(MfaSucceeded {
            user_id: alice,
            challenge_id: ChallengeId::from_uuid(Uuid::from_u128(9)),
        }),
    );
    passed.attempt_id = events[0].attempt_id;
    events.push(passed);
    events.push(envelope(
        3,
        3,
        at + Duration::minutes(30),
        "login-intake",
        login(alice, "8.8.8.8", Some("other"), true),
    ));
    let decisions = decisions(&replay_lines(&events, geo));
    let risk = &decisions[1]["payload"]["risk"];
    let reasons: Vec<&str> = risk["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for reason in ["new_device", "new_asn", "new_country", "impossible_travel"] {
        assert!(reasons.contains(&reason), "{risk}");
    }
    assert_ne!(risk["level"], "low", "{risk}");
}

/// Replays `events` with `policy`, without GeoIP: the decisions, and the run's figures.
fn replay_with(policy: Policy, events: &[Envelope]) -> (Vec<Value>, ReplayStats) {
    let (output, stats) = replay_lines_with(policy, events, Arc::new(GeoIp::none()));
    (decisions(&output), stats)
}

fn kinds(decisions: &[Value]) -> Vec<&str> {
    decisions
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect()
}

/// An `MfaFailed` of `challenge` for `login`'s attempt, `after` it.
fn mfa_failed(
    n: u128,
    login: &Envelope,
    after: Duration,
    challenge: &Value,
    reason: MfaFailureReason,
) -> Envelope {
    let Event::LoginAttempted(attempt) = &login.event else {
        panic!("not a login: {login:?}")
    };
    let mut failed = envelope(
        n,
        0,
        login.occurred_at + after,
        "verifier",
        Event::MfaFailed(MfaFailed {
            user_id: attempt.user_id.unwrap(),
            challenge_id: ChallengeId::parse(challenge.as_str().unwrap()).unwrap(),
            reason,
            attempts_remaining: 0,
        }),
    );
    failed.attempt_id = login.attempt_id;
    failed
}

/// The code caps, as the live worker applies them (`CodeCaps::default()`: a 30 s gap, 5
/// emails an hour): a login within the gap of a code still valid reuses its challenge; once
/// that challenge is locked, "log in again" gets a new code at once, gap or not (issue 11.2),
/// and a login within the gap of that one reuses it.
#[test]
fn logins_within_the_gap_reuse_the_challenge_and_a_locked_one_is_replaced() {
    let carol = UserId::from_uuid(Uuid::from_u128(0xca201));
    let at = start();
    let attempt = |n: u128, seconds: i64| {
        envelope(
            n,
            n,
            at + Duration::seconds(seconds),
            "login-intake",
            login(carol, "81.2.69.142", Some("laptop"), true),
        )
    };
    let first = attempt(1, 0);
    let (decided, _) = replay_with(Policy::default(), std::slice::from_ref(&first));
    let challenge = decided[0]["payload"]["challenge_id"].clone();
    let events = vec![
        first.clone(),
        // 10 s later, again: no second email; the pending challenge stands.
        attempt(2, 10),
        // The verifier locks the challenge after too many wrong codes...
        mfa_failed(
            3,
            &first,
            Duration::seconds(15),
            &challenge,
            MfaFailureReason::TooManyAttempts,
        ),
        // ...so 20 s after the email nothing can be reused: a new code.
        attempt(4, 20),
        // Within the gap of that one: it is reused.
        attempt(5, 45),
    ];
    let (decided, stats) = replay_with(Policy::default(), &events);
    assert_eq!(stats.decisions, 4);
    assert_eq!(
        kinds(&decided),
        [
            "MfaRequired",
            "CodeThrottled",
            "MfaRequired",
            "CodeThrottled"
        ]
    );
    let throttled = &decided[1]["payload"];
    assert_eq!(throttled["challenge_id"], challenge);
    assert_eq!(throttled["expires_at"], decided[0]["payload"]["expires_at"]);
    assert_eq!(throttled["reason"], "recently_sent");
    let replacement = &decided[2]["payload"]["challenge_id"];
    assert_ne!(*replacement, challenge);
    assert_eq!(decided[3]["payload"]["challenge_id"], *replacement);
    // Each decision still carries the model's assessment.
    assert!(decided
        .iter()
        .all(|d| d["payload"]["risk"]["score"].is_number()));
}

/// Locking every challenge on purpose buys no more emails than the hourly cap: the sixth
/// login of the hour with nothing to reuse is refused, with the wait until the first email
/// leaves the hour.
#[test]
fn locked_challenges_buy_no_more_than_the_hourly_cap_and_the_refusal_says_how_long() {
    let erin = UserId::from_uuid(Uuid::from_u128(0xe7a1));
    let at = start();
    let mut events = Vec::new();
    let mut decided = Vec::new();
    for i in 0..6u128 {
        let attempt = envelope(
            20 + i,
            20 + i,
            at + Duration::seconds(i as i64 * 60),
            "login-intake",
            login(erin, "81.2.69.142", Some("laptop"), true),
        );
        events.push(attempt.clone());
        (decided, _) = replay_with(Policy::default(), &events);
        if let Some(challenge) = decided.last().unwrap()["payload"].get("challenge_id") {
            events.push(mfa_failed(
                200 + i,
                &attempt,
                Duration::seconds(5),
                challenge,
                MfaFailureReason::TooManyAttempts,
            ));
        }
    }
    assert_eq!(
        kinds(&decided),
        [["MfaRequired"; 5].as_slice(), &["LoginRejected"]].concat()
    );
    let refused = &decided[5]["payload"];
    assert_eq!(refused["reason"], "too_many_codes");
    // The first email was 300 s before the sixth login: it leaves the hour 3300 s later.
    assert_eq!(refused["retry_after_secs"], 3300);
}

/// The hourly cap: the sixth login needing a code within the hour reuses the pending
/// challenge; the daily ceiling of wrong codes refuses any new one.
#[test]
fn the_hourly_cap_and_the_daily_ceiling_of_wrong_codes_hold_in_replay() {
    let dave = UserId::from_uuid(Uuid::from_u128(0xda7e));
    let at = start();
    let logins: Vec<Envelope> = (0..6u128)
        .map(|i| {
            envelope(
                10 + i,
                10 + i,
                at + Duration::minutes(i as i64 * 5),
                "login-intake",
                login(dave, "81.2.69.142", Some("laptop"), true),
            )
        })
        .collect();
    let (decided, _) = replay_with(Policy::default(), &logins);
    assert_eq!(
        kinds(&decided),
        [["MfaRequired"; 5].as_slice(), &["CodeThrottled"]].concat()
    );
    assert_eq!(decided[5]["payload"]["reason"], "hourly_cap");
    assert_eq!(
        decided[5]["payload"]["challenge_id"],
        decided[4]["payload"]["challenge_id"]
    );

    // Two wrong codes a day at most: the third login gets no challenge.
    let strict = Policy {
        code_caps: CodeCaps {
            failed_codes_per_day: 2,
            ..CodeCaps::default()
        },
        ..Policy::default()
    };
    let (first, _) = replay_with(strict.clone(), &logins[..1]);
    let challenge = first[0]["payload"]["challenge_id"].clone();
    let wrong = |n: u128, seconds: i64| {
        mfa_failed(
            n,
            &logins[0],
            Duration::seconds(seconds),
            &challenge,
            MfaFailureReason::InvalidCode,
        )
    };
    let events = vec![
        logins[0].clone(),
        wrong(100, 10),
        wrong(101, 20),
        // A redelivered event counts once, as the live worker's table keys it by event id.
        wrong(101, 20),
        logins[1].clone(),
    ];
    let (decided, _) = replay_with(strict.clone(), &events);
    assert_eq!(decided[1]["event_type"], "LoginRejected");
    assert_eq!(decided[1]["payload"]["reason"], "too_many_failed_codes");
    // The first wrong code (10 s after the first login) leaves the day 24 h on; the second
    // login came 5 minutes after the first.
    assert_eq!(
        decided[1]["payload"]["retry_after_secs"],
        24 * 3600 + 10 - 300
    );
    let events = [&events[..2], &events[4..]].concat();
    let (decided, _) = replay_with(strict, &events);
    assert_eq!(
        decided[1]["event_type"], "MfaRequired",
        "one wrong code is under the ceiling"
    );
}

/// A login the live worker dead-letters (a user without a company) gets no decision line:
/// it is counted, and the logins after it are decided.
#[test]
fn a_login_without_its_company_is_dead_lettered_and_replay_reads_on() {
    let erin = UserId::from_uuid(Uuid::from_u128(0xe714));
    let mut malformed = envelope(
        1,
        1,
        start(),
        "login-intake",
        login(erin, "81.2.69.142", Some("laptop"), true),
    );
    if let Event::LoginAttempted(attempt) = &mut malformed.event {
        attempt.company_id = None;
    }
    let fine = envelope(
        2,
        2,
        start() + Duration::minutes(1),
        "login-intake",
        login(erin, "81.2.69.142", Some("laptop"), true),
    );
    let (decided, stats) = replay_with(Policy::default(), &[malformed, fine.clone()]);
    assert_eq!(
        stats,
        ReplayStats {
            events: 2,
            decisions: 1,
            skipped: 0,
            dead_lettered: 1,
            erased: 0,
        }
    );
    assert_eq!(decided[0]["attempt_id"], fine.attempt_id.to_string());
    assert_eq!(decided[0]["event_type"], "MfaRequired");
}

/// `LoginFeedback` in the input acts as live: `wasnt_me` makes the login's network and device
/// high risk for the user (a known device from that network, or that device at home, asks
/// for a code with the reason), `was_me` learns the login's device.
#[test]
fn feedback_in_the_log_reports_or_learns_as_live() {
    use shared::events::{FeedbackSource, FeedbackVerdict, LoginFeedback};
    let alice = UserId::from_uuid(Uuid::from_u128(0xa11ce));
    let mut events = event_log();
    let mut n = 1_000u128;
    let mut at = start() + Duration::days(10);
    let mut step = |events: &mut Vec<Envelope>, producer: &str, event: Event, attempt: u128| {
        at += Duration::minutes(30);
        events.push(envelope(n, attempt, at, producer, event));
        n += 1;
    };
    let feedback = |verdict, ip: &str, device: &str| {
        Event::LoginFeedback(LoginFeedback {
            user_id: alice,
            company_id: CompanyId::parse("acme").unwrap(),
            verdict,
            source: FeedbackSource::EmailLink,
            reported: shared::personal::Personal::Clear(shared::events::ReportedClient {
                ip: Some(ip.parse().unwrap()),
                device_id: Some(DeviceId::parse(device).unwrap()),
            }),
        })
    };
    // A stranger with the password, reported; then a new tablet of Alice's, confirmed.
    step(
        &mut events,
        "login-intake",
        login(alice, "203.0.113.66", Some("attacker"), true),
        500,
    );
    step(
        &mut events,
        "verifier",
        feedback(FeedbackVerdict::WasntMe, "203.0.113.66", "attacker"),
        500,
    );
    step(
        &mut events,
        "login-intake",
        login(alice, "198.51.100.9", Some("tablet"), true),
        501,
    );
    step(
        &mut events,
        "login-intake",
        feedback(FeedbackVerdict::WasMe, "198.51.100.9", "tablet"),
        501,
    );
    // Her laptop from the reported network; the reported device at home; the tablet again,
    // from where it was confirmed.
    step(
        &mut events,
        "login-intake",
        login(alice, "203.0.113.77", Some("laptop"), true),
        502,
    );
    step(
        &mut events,
        "login-intake",
        login(alice, "81.2.69.142", Some("attacker"), true),
        503,
    );
    step(
        &mut events,
        "login-intake",
        login(alice, "198.51.100.9", Some("tablet"), true),
        504,
    );

    let (decided, _) = replay_with(Policy::default(), &events);
    let tail = &decided[decided.len() - 5..];
    assert_eq!(
        kinds(tail),
        [
            "MfaRequired",
            "MfaRequired",
            "MfaRequired",
            "MfaRequired",
            "LoginApproved"
        ],
        "{tail:#?}"
    );
    let reasons = |i: usize| tail[i]["payload"]["risk"]["reasons"].clone();
    assert!(!reasons(0)
        .as_array()
        .unwrap()
        .contains(&"reported_network".into()));
    assert!(
        reasons(2)
            .as_array()
            .unwrap()
            .contains(&"reported_network".into()),
        "{}",
        reasons(2)
    );
    assert!(
        reasons(3)
            .as_array()
            .unwrap()
            .contains(&"reported_device".into()),
        "{}",
        reasons(3)
    );
    assert_eq!(tail[2]["payload"]["risk"]["level"], "high");
    // Learned from "was me": its device and network are known.
    assert_eq!(reasons(4), serde_json::json!([]));
    // The same input, the same output: feedback follows the same path every time.
    let (again, _) = replay_with(Policy::default(), &events);
    assert_eq!(again, decided);
}
