//! Attacks on the running services, and the defence each one meets. See SECURITY.md.
//!
//! This binary installs a trace-level JSON log subscriber for everything it runs, so that the
//! leak test sees every line the services write at any level.

mod support;

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::kafka::read_topic;
use support::secrets::digit_runs;
use support::*;

const HOME_IP: &str = "198.51.100.23";

/// Every log line written by this test binary once `capture_logs` ran.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| Capture)
            .init();
    });
}

/// Codes, passwords, API keys and the HMAC secret appear in no log line (any level) and no
/// event, through a whole flow: MFA with a wrong then a right code, a wrong password, an
/// unknown email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_or_an_event() {
    capture_logs();
    let system = spawn_system().await;
    let email = unique_email("leak");
    let wrong_password = "Tr0ub4dor&3-wrong";
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    let code = system.mail.wait_for_code(&email, 1).await;
    // Not `wrong_code`: a run of zeros could appear in a log line's numbers by chance.
    let wrong = if code == "424242" { "424243" } else { "424242" };
    assert_eq!(system.verify(&challenge, wrong).await.status, 401);
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    let rejected = system
        .login(&email, wrong_password, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(rejected.body["status"], "rejected");
    let unknown = system
        .login(
            &unique_email("nobody"),
            wrong_password,
            None,
            HOME_IP,
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(unknown.body["status"], "rejected");
    let second = system
        .login(&email, PASSWORD, Some("d2"), "203.0.113.5", FIREFOX_LINUX)
        .await;
    let second_code = system.mail.wait_for_code(&email, 2).await;
    assert_eq!(
        system
            .verify(second.body["challenge_id"].as_str().unwrap(), &second_code)
            .await
            .status,
        200
    );
    // Let the consumers finish what the last calls set off.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())))
        .collect();
    assert!(
        lines.len() > 50,
        "trace logging captured only {} lines",
        lines.len()
    );
    let topics = system.kafka.topics();
    let mut records: Vec<Value> = lines;
    for topic in topics.all() {
        records.extend(read_topic(&system.kafka, topic).into_iter().map(|(_, v)| v));
    }

    let texts = [
        PASSWORD,
        wrong_password,
        &system.api_key,
        ADMIN_KEY,
        HMAC_SECRET,
    ];
    let codes = [code.as_str(), wrong, second_code.as_str()];
    for record in &records {
        let text = record.to_string();
        for secret in texts {
            assert!(!text.contains(secret), "{secret:?} leaked in {text}");
        }
        let runs = digit_runs(record);
        for code in codes {
            assert!(
                !runs.iter().any(|run| run == code),
                "code {code} leaked in {text}"
            );
        }
    }
}

/// An unknown email and a wrong password take the same time: both run one argon2id check and
/// the same path through the risk worker. Interleaved samples, compared by their medians (the
/// one timed test we keep, because the property is about time itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_take_the_same_time() {
    capture_logs();
    let system = spawn_system().await;
    let email = unique_email("timing");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let mut wrong_password = Vec::new();
    let mut unknown_email = Vec::new();
    for round in 0..150 {
        // Alternate which goes first, so a slow patch of the machine hits both alike.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for known in order {
            let target = if known {
                email.clone()
            } else {
                unique_email("ghost")
            };
            let started = Instant::now();
            let answer = system
                .login(
                    &target,
                    "not the password",
                    Some("d1"),
                    HOME_IP,
                    CHROME_WINDOWS,
                )
                .await;
            let elapsed = started.elapsed();
            assert_eq!(answer.body["status"], "rejected");
            if known {
                wrong_password.push(elapsed)
            } else {
                unknown_email.push(elapsed)
            }
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64()
    };
    let (known, unknown) = (median(&mut wrong_password), median(&mut unknown_email));
    let gap = (known - unknown).abs() / known.min(unknown);
    println!(
        "median wrong password {:.1} ms, unknown email {:.1} ms, gap {:.1}%",
        known * 1e3,
        unknown * 1e3,
        gap * 100.0
    );
    assert!(gap <= 0.10, "the medians differ by {:.1}%", gap * 100.0);
}

/// A key of one company can't log in, read a decision of, or verify a challenge of another
/// company's user; a key limited to some platforms can't speak for the others; a revoked key
/// stops working at once; listing keys never shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_bound_to_their_company_and_platforms() {
    capture_logs();
    let system = spawn_system().await;
    let email = unique_email("tenant");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let other_company = system.create_api_key("globex", None).await;
    let as_other = |path: String| {
        system
            .http
            .post(format!("{}{path}", system.intake_url))
            .bearer_auth(&other_company)
    };

    // acme's user through globex's key: as unknown as an unknown email.
    let login = serde_json::json!({ "email": email, "password": PASSWORD, "platform": "dashboard",
        "context": { "ip": HOME_IP, "user_agent": CHROME_WINDOWS, "device_id": "d1" } });
    let foreign: Value = as_other("/v1/logins".into())
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(foreign["status"], "rejected", "{foreign}");
    assert_eq!(foreign["reason"], "invalid_credentials");

    // The right key starts a challenge; globex's key can neither read nor verify it.
    let own = system.post_login(login.clone()).await;
    assert_eq!(own.body["status"], "mfa_required", "{}", own.body);
    let attempt = own.body["attempt_id"].as_str().unwrap();
    let challenge = own.body["challenge_id"].as_str().unwrap();
    let code = system.mail.wait_for_code(&email, 1).await;
    let read = system
        .http
        .get(format!("{}/v1/logins/{attempt}", system.intake_url))
        .bearer_auth(&other_company)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 404);
    let stolen = system
        .http
        .post(format!(
            "{}/v1/challenges/{challenge}/verify",
            system.verifier_url
        ))
        .bearer_auth(&other_company)
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["error"], "unknown_challenge");
    // ...and using it did not spend a try: the owner's right code still works.
    assert_eq!(system.verify(challenge, &code).await.status, 200);

    // A key limited to the mobile apps.
    let mobile = system
        .create_api_key("acme", Some(&["ios", "android"]))
        .await;
    let dashboard: Value = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&mobile)
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dashboard["error"], "platform_not_allowed", "{dashboard}");

    // Listing shows prefixes, never keys; revoking works at once.
    let keys: Value = system
        .http
        .get(format!(
            "{}/v1/admin/api-keys?company_id=acme",
            system.intake_url
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = keys.to_string();
    assert!(
        !listed.contains(&system.api_key) && !listed.contains(&mobile),
        "{listed}"
    );
    let mobile_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            mobile.starts_with(k["key_prefix"].as_str().unwrap())
                && k["platforms"].as_array().unwrap().len() == 2
        })
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = system
        .http
        .delete(format!(
            "{}/v1/admin/api-keys/{mobile_id}",
            system.intake_url
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let after: Value = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&mobile)
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["error"], "invalid_api_key", "{after}");
}

/// Login rate limits per end-user IP and per account answer 429 with Retry-After, alike for
/// known and unknown emails, and leave other addresses and accounts alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_limits_answer_429_alike_for_known_and_unknown_emails() {
    capture_logs();
    let system = spawn_system_with(Options {
        rate_limits: hourly_limits(6, 1000, 3, 1000),
        ..Default::default()
    })
    .await;
    let known = unique_email("limited");
    system
        .create_user(&known, Some(PASSWORD), "acme", false)
        .await;
    let unknown = unique_email("ghost");

    // Per account: three tries from three addresses each, then 429, known or not.
    for email in [&known, &unknown] {
        for i in 1..=3 {
            let answer = system
                .login(
                    email,
                    "wrong",
                    None,
                    &format!("203.0.113.{i}"),
                    CHROME_WINDOWS,
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        let limited = system
            .http
            .post(format!("{}/v1/logins", system.intake_url))
            .bearer_auth(&system.api_key)
            .json(
                &serde_json::json!({ "email": email, "password": "wrong", "platform": "ios",
                  "context": { "ip": "203.0.113.9", "user_agent": SAFARI_IPHONE } }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        let retry_after: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
        let body: Value = limited.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited");
    }

    // Per IP: 6 logins from one address across accounts, then 429; another address is fine.
    for i in 0..6 {
        let answer = system
            .login(
                &unique_email("spray"),
                "guess",
                None,
                "198.51.100.77",
                CHROME_WINDOWS,
            )
            .await;
        assert_eq!(answer.status, 200, "login {i}: {}", answer.body);
    }
    let sprayed = system
        .login(
            &unique_email("spray"),
            "guess",
            None,
            "198.51.100.77",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(sprayed.status, 429);
    let elsewhere = system
        .login(
            &unique_email("spray"),
            "guess",
            None,
            "198.51.100.78",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(elsewhere.status, 200);
}

/// Logging in again within the gap sends no email and keeps the pending challenge; past the
/// hourly share of emails the pending challenge is reused, and with none pending the login is
/// refused: the inbox can't be flooded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_emails_are_capped_and_log_in_again_keeps_the_pending_code() {
    capture_logs();
    let system = spawn_system_with(Options {
        code_caps: CodeCaps {
            emails_per_hour: 2,
            min_gap: Duration::from_secs(30),
            failed_codes_per_day: 100,
        },
        ..Default::default()
    })
    .await;
    let email = unique_email("flood");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let first = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(first.body["status"], "mfa_required");
    assert_eq!(first.body["code_recently_sent"], false);
    let challenge = first.body["challenge_id"].as_str().unwrap().to_owned();
    system.mail.wait_for_emails(&email, 1).await;

    // "Log in again" right away, even from another device: the same challenge, no email.
    for device in ["d1", "d2", "d3"] {
        let again = system
            .login(&email, PASSWORD, Some(device), HOME_IP, CHROME_WINDOWS)
            .await;
        assert_eq!(again.body["status"], "mfa_required", "{}", again.body);
        assert_eq!(again.body["challenge_id"], challenge.as_str());
        assert_eq!(again.body["expires_at"], first.body["expires_at"]);
        assert_eq!(again.body["code_recently_sent"], true);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        system.mail.emails_to(&email).await.len(),
        1,
        "one email, however often one logs in"
    );
    let code = system.mail.wait_for_code(&email, 1).await;
    assert_eq!(
        system.verify(&challenge, &code).await.status,
        200,
        "the kept code still works"
    );

    // The code was used: nothing is pending, and within the gap no new email goes out.
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_challenges WHERE user_id = $1 AND closed_at IS NOT NULL",
            &user_id,
            |n| n >= 1,
        )
        .await;
    let refused = system
        .login(&email, PASSWORD, Some("d4"), "203.0.113.5", CHROME_WINDOWS)
        .await;
    assert_eq!(refused.body["status"], "rejected", "{}", refused.body);
    assert_eq!(refused.body["reason"], "too_many_codes");
    assert_eq!(system.mail.emails_to(&email).await.len(), 1);

    let events: Vec<Value> = read_topic(&system.kafka, &system.kafka.topics().risk_decisions)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["event_type"] == "CodeThrottled")
        .collect();
    assert_eq!(events.len(), 3, "each throttled login is on the event log");
    assert!(events
        .iter()
        .all(|e| e["payload"]["reason"] == "recently_sent"));
}

/// Past the account's daily ceiling of wrong codes, no code is accepted and no new challenge
/// is issued; known devices still log in, so an attacker holding the password can't lock the
/// owner out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_ceiling_of_wrong_codes_holds_and_known_devices_still_log_in() {
    capture_logs();
    let system = spawn_system_with(Options {
        code_caps: CodeCaps {
            emails_per_hour: 1000,
            min_gap: Duration::ZERO,
            failed_codes_per_day: 3,
        },
        code_limits: CodeLimits {
            per_challenge: 5,
            per_account_per_day: 3,
        },
        ..Default::default()
    })
    .await;
    let (email, user_id) = system
        .enrolled_user("owner-laptop", HOME_IP, CHROME_WINDOWS)
        .await;

    // The attacker has the password, not the device: each login asks for a code.
    let (challenge, code) = system.attacker_challenge(&email, 2).await;
    let wrong = wrong_code(&code);
    for remaining in [4, 3, 2] {
        let answer = system.verify(&challenge, wrong).await;
        assert_eq!(
            answer.body["attempts_remaining"], remaining,
            "{}",
            answer.body
        );
    }
    // The ceiling is reached: even the right code is refused now.
    let blocked = system.verify(&challenge, &code).await;
    assert_eq!(
        blocked.body["error"], "too_many_attempts",
        "{}",
        blocked.body
    );

    system
        .wait_for_count(
            "SELECT count(*) FROM risk_failed_codes WHERE user_id = $1",
            &user_id,
            |n| n >= 3,
        )
        .await;
    let no_new_code = system
        .login(
            &email,
            PASSWORD,
            Some("attacker-2"),
            "203.0.113.66",
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(
        no_new_code.body["status"], "rejected",
        "{}",
        no_new_code.body
    );
    assert_eq!(no_new_code.body["reason"], "too_many_failed_codes");

    let owner = system
        .login(
            &email,
            PASSWORD,
            Some("owner-laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        owner.body["status"], "approved",
        "the owner's known device: {}",
        owner.body
    );
}

async fn admin(
    system: &TestSystem,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    let mut request = system
        .http
        .request(method, format!("{}{path}", system.intake_url))
        .bearer_auth(ADMIN_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

/// What a support team does after a compromise: a new password (pending codes stop working),
/// forgetting learned devices, disabling and enabling, deleting (rows go, events keep ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_take_effect_in_every_service() {
    use reqwest::Method;
    capture_logs();
    let system = spawn_system().await;
    let (email, user_id) = system
        .enrolled_user("laptop", HOME_IP, CHROME_WINDOWS)
        .await;

    // An attacker's pending challenge dies with the password change.
    let (challenge, code) = system.attacker_challenge(&email, 2).await;
    let new_password = "a brand new passphrase";
    let status = admin(
        &system,
        Method::PUT,
        &format!("/v1/admin/users/{user_id}/password"),
        Some(serde_json::json!({ "password": new_password })),
    )
    .await;
    assert_eq!(status, 204);
    system
        .wait_for_count(
            "SELECT count(*) FROM challenges WHERE challenge_id = $1 AND status = 'superseded'",
            &challenge,
            |n| n == 1,
        )
        .await;
    let dead = system.verify(&challenge, &code).await;
    assert_eq!(dead.body["error"], "superseded", "{}", dead.body);
    let old = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(old.body["reason"], "invalid_credentials");
    let new = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(new.body["status"], "approved", "{}", new.body);

    // Forgetting the learned devices: the owner's laptop is asked for a code again.
    assert_eq!(
        admin(
            &system,
            Method::POST,
            &format!("/v1/admin/users/{user_id}/reset-history"),
            None
        )
        .await,
        204
    );
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_login_history WHERE user_id = $1",
            &user_id,
            |n| n == 0,
        )
        .await;
    let after_reset = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        after_reset.body["status"], "mfa_required",
        "{}",
        after_reset.body
    );

    // Disabled: refused like a wrong password; enabled: back.
    assert_eq!(
        admin(
            &system,
            Method::POST,
            &format!("/v1/admin/users/{user_id}/disable"),
            None
        )
        .await,
        204
    );
    let disabled = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        disabled.body["reason"], "invalid_credentials",
        "{}",
        disabled.body
    );
    assert_eq!(
        admin(
            &system,
            Method::POST,
            &format!("/v1/admin/users/{user_id}/enable"),
            None
        )
        .await,
        204
    );
    let enabled = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(enabled.body["status"], "mfa_required", "{}", enabled.body);

    // Deleted: every service's rows go; the events keep only the id.
    assert_eq!(
        admin(
            &system,
            Method::DELETE,
            &format!("/v1/admin/users/{user_id}"),
            None
        )
        .await,
        204
    );
    system
        .wait_for_count(
            "SELECT count(*) FROM challenges WHERE user_id = $1",
            &user_id,
            |n| n == 0,
        )
        .await;
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_decisions WHERE user_id = $1",
            &user_id,
            |n| n == 0,
        )
        .await;
    for table in [
        "users",
        "login_attempts",
        "risk_login_history",
        "risk_learned_users",
        "risk_challenges",
    ] {
        system
            .wait_for_count(
                &format!("SELECT count(*) FROM {table} WHERE user_id = $1"),
                &user_id,
                |n| n == 0,
            )
            .await;
    }
    let changes: Vec<Value> = read_topic(&system.kafka, &system.kafka.topics().accounts)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["payload"]["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "password_changed",
            "history_reset",
            "disabled",
            "enabled",
            "deleted"
        ]
    );
    assert!(
        changes.iter().all(|c| !c.to_string().contains(&email)),
        "events keep only ids"
    );
    assert_eq!(
        admin(
            &system,
            Method::DELETE,
            &format!("/v1/admin/users/{user_id}"),
            None
        )
        .await,
        404
    );
}

/// The per-API-key and per-account-and-IP limits, each on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_and_per_account_and_ip_limits_hold() {
    capture_logs();
    let system = spawn_system_with(Options {
        rate_limits: hourly_limits(1000, 2, 1000, 4),
        ..Default::default()
    })
    .await;
    let email = unique_email("pair");
    for _ in 0..2 {
        assert_eq!(
            system
                .login(&email, "x", None, "192.0.2.1", CHROME_WINDOWS)
                .await
                .status,
            200
        );
    }
    assert_eq!(
        system
            .login(&email, "x", None, "192.0.2.1", CHROME_WINDOWS)
            .await
            .status,
        429,
        "same account, same IP"
    );
    assert_eq!(
        system
            .login(&email, "x", None, "192.0.2.2", CHROME_WINDOWS)
            .await
            .status,
        200,
        "same account, another IP"
    );
    // The key has been used 4 times (refused tries count too): its limit.
    let over_key = system
        .login(
            &unique_email("other"),
            "x",
            None,
            "192.0.2.3",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(over_key.status, 429, "{}", over_key.body);
    let another_key = system.create_api_key("acme", None).await;
    let fresh = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&another_key)
        .json(&serde_json::json!({ "email": unique_email("other"), "password": "x", "platform": "android",
              "context": { "ip": "192.0.2.4", "user_agent": SAFARI_IPHONE } }))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200, "another key has its own budget");
}

/// A malformed or unknown message on an internal topic neither crashes nor stalls the
/// consumer: the malformed one is dead-lettered with the reason, and logins keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_dead_lettered_and_consumers_move_on() {
    capture_logs();
    let system = spawn_system().await;
    let topics = system.kafka.topics();
    let garbage: [&[u8]; 3] = [
        b"not json at all",
        br#"{"event_type":"LoginAttempted","payload":{"user_id":42}}"#,
        br#"{"event_id":"0190f0c4-1111-7000-8000-000000000001","event_type":"FromTheFuture","schema_version":9}"#,
    ];
    for (i, payload) in garbage.iter().enumerate() {
        support::kafka::produce(
            &system.kafka,
            &topics.login_attempts,
            &format!("k{i}"),
            payload,
        )
        .await;
        support::kafka::produce(
            &system.kafka,
            &topics.risk_decisions,
            &format!("k{i}"),
            payload,
        )
        .await;
    }
    // The flow still works end to end.
    let email = unique_email("after-garbage");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
    system.mail.wait_for_code(&email, 1).await;

    // Two malformed messages per topic, each read by its consumers; the unknown type is skipped.
    for _ in 0..100 {
        let dead = read_topic(&system.kafka, &topics.dead_letters);
        let from_attempts = dead
            .iter()
            .filter(|(_, d)| d["source_topic"] == topics.login_attempts.as_str())
            .count();
        let from_decisions = dead
            .iter()
            .filter(|(_, d)| d["source_topic"] == topics.risk_decisions.as_str())
            .count();
        if from_attempts >= 2 && from_decisions >= 2 {
            assert!(dead
                .iter()
                .all(|(_, d)| d["reason"].as_str().unwrap().contains("malformed event")));
            assert!(!dead
                .iter()
                .any(|(_, d)| d["reason"].as_str().unwrap().contains("FromTheFuture")));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the malformed events were not dead-lettered");
}
