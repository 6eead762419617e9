//! Measures the time from `POST /v1/logins` to its answer, against a running system
//! (`scripts/run`), and prints the figures. Three kinds of login:
//! - SSO logins of non-privileged users: no password check, so this is the event path alone
//!   (login-intake -> Kafka -> risk worker -> Kafka -> login-intake -> PostgreSQL NOTIFY);
//! - password logins from a known context (approved): the same plus argon2id;
//! - password logins from a new device (mfa_required).
//!
//! Run: `scripts/run` in one terminal, then `cargo run -p e2e --example login_latency [N]`
//! (N per kind, default 50, at most 90). It stays inside the default rate limits and code
//! caps: each login comes from its own address in one /24, each `mfa_required` login is a
//! fresh account's first (so a real challenge and email, not a throttled answer), and no
//! account logs in more than 90 times.
//! Settings: MFA_INTAKE_URL (default http://127.0.0.1:8080), MFA_VERIFIER_URL
//! (http://127.0.0.1:8081), MFA_ADMIN_API_KEY (the dev key of scripts/run; a client key is
//! created with it),
//! MFA_MAILDEV_URL (from .stack/stack.env) to read the enrolment code.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const PASSWORD: &str = "correct horse battery";

struct Client {
    http: reqwest::Client,
    intake: String,
    verifier: String,
    api_key: String,
    admin_key: String,
    maildev: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn stack_setting(name: &str) -> String {
    if let Ok(value) = std::env::var(name) {
        return value;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.stack/stack.env");
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("export ").split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| {
            panic!(
                "{name} unset and not in {}: is the stack up?",
                path.display()
            )
        })
}

impl Client {
    async fn post(&self, url: String, key: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("service answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, body: Value) -> (Duration, Value) {
        let started = Instant::now();
        let (status, answer) = self
            .post(format!("{}/v1/logins", self.intake), &self.api_key, body)
            .await;
        let elapsed = started.elapsed();
        assert_eq!(status, 200, "{answer}");
        (elapsed, answer)
    }

    async fn latest_code(&self, to: &str) -> String {
        for _ in 0..200 {
            let emails: Value = self
                .http
                .get(format!("{}/email", self.maildev))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let text = emails
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|e| e["to"][0]["address"] == to)
                .and_then(|e| e["text"].as_str().map(str::to_owned));
            if let Some(text) = text {
                let code: String = text
                    .split("Your sign-in code is")
                    .nth(1)
                    .unwrap()
                    .trim_start()
                    .chars()
                    .take(6)
                    .collect();
                return code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no email for {to}");
    }
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<34} n={:<4} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        samples.len(),
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(0.99)),
        ms(*samples.last().unwrap())
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50)
        .min(90);
    let mut client = Client {
        http: reqwest::Client::new(),
        intake: env_or("MFA_INTAKE_URL", "http://127.0.0.1:8080"),
        verifier: env_or("MFA_VERIFIER_URL", "http://127.0.0.1:8081"),
        api_key: String::new(),
        admin_key: env_or("MFA_ADMIN_API_KEY", "dev-admin-key"),
        maildev: stack_setting("MFA_MAILDEV_URL"),
    };
    let (status, key) = client
        .post(
            format!("{}/v1/admin/api-keys", client.intake),
            &client.admin_key,
            json!({ "company_id": "bench", "name": "login_latency" }),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    client.api_key = key["api_key"].as_str().unwrap().to_owned();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let member = format!("bench-sso-{run}@example.com");
    let user = format!("bench-pw-{run}@example.com");
    for (email, password) in [(&member, None), (&user, Some(PASSWORD))] {
        let (status, body) = client
            .post(
                format!("{}/v1/admin/users", client.intake),
                &client.admin_key,
                // The company takes SSO logins too (the SSO member logs in without a password).
                json!({ "email": email, "password": password, "company_id": "bench",
                        "company_uses_sso": true }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut round = 0u32;
    let mut login = |email: &str, device: String, password: Option<&str>| {
        // One address per login, all in one /24 (one network to the risk rules), so the
        // per-IP limit never throttles the benchmark.
        round += 1;
        let ip = format!("198.51.100.{}", 1 + round % 250);
        let mut body = json!({ "email": email, "platform": "dashboard",
                               "context": { "ip": ip, "user_agent": UA, "device_id": device } });
        match password {
            Some(p) => body["password"] = p.into(),
            None => body["auth_method"] = "sso".into(),
        }
        body
    };

    // Enrol the password user once, so its context is known.
    let (_, first) = client
        .login(login(&user, "bench-device".into(), Some(PASSWORD)))
        .await;
    let code = client.latest_code(&user).await;
    let challenge = first["challenge_id"].as_str().unwrap();
    let (status, _) = client
        .post(
            format!("{}/v1/challenges/{challenge}/verify", client.verifier),
            &client.api_key,
            json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await; // the risk worker learns the context

    let mut sso = Vec::new();
    for _ in 0..n {
        let (elapsed, answer) = client
            .login(login(&member, "sso-device".into(), None))
            .await;
        assert_eq!(answer["status"], "approved", "{answer}");
        sso.push(elapsed);
    }
    let mut approved = Vec::new();
    for _ in 0..n {
        let (elapsed, answer) = client
            .login(login(&user, "bench-device".into(), Some(PASSWORD)))
            .await;
        assert_eq!(answer["status"], "approved", "{answer}");
        approved.push(elapsed);
    }
    let mut challenged = Vec::new();
    for i in 0..n {
        let fresh = format!("bench-new-{run}-{i}@example.com");
        let (status, body) = client
            .post(
                format!("{}/v1/admin/users", client.intake),
                &client.admin_key,
                json!({ "email": fresh, "password": PASSWORD, "company_id": "bench" }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (elapsed, answer) = client
            .login(login(&fresh, format!("new-device-{i}"), Some(PASSWORD)))
            .await;
        assert_eq!(answer["status"], "mfa_required", "{answer}");
        challenged.push(elapsed);
    }
    println!(
        "POST /v1/logins to its decision, one login at a time, against {}:",
        client.intake
    );
    report("SSO, approved (event path only)", sso);
    report("password, known context, approved", approved);
    report("password, new device, mfa_required", challenged);
}
