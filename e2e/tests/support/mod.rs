//! `spawn_system`: the four services in process, on random ports, with a database and a topic
//! namespace of their own, against the real stack of `scripts/stack up`.

#![allow(dead_code)]

pub mod kafka;
pub mod mail;
pub mod metrics;
pub mod otlp;
pub mod secrets;

use std::sync::OnceLock;
use std::time::Duration;

pub use login_intake::rate_limit::{RateLimit, RateLimits};
use mfa_runtime::config::KafkaConfig;
use mfa_runtime::shutdown::{Shutdown, ShutdownTrigger};
use mfa_testkit::audit_keys::AuditKeys;
use mfa_testkit::stack::setting;
pub use risk_worker::rules::CodeCaps;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
pub use verifier::judge::CodeLimits;

pub use mail::MailBox;
pub use mfa_testkit::proxy;

/// The home address of the tests' users (a documentation range no GeoIP database knows).
pub const HOME_IP: &str = "198.51.100.23";
/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const HMAC_SECRET: &str = "test-hmac-secret-that-is-at-least-32-bytes";

pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1";

/// Where the stack's servers are (`mfa_testkit::stack::setting`: from the environment, or
/// from `.stack/stack.env`, which `scripts/stack up` writes).
pub struct StackEnv {
    pub kafka_brokers: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub maildev_url: String,
}

pub fn stack_env() -> &'static StackEnv {
    static ENV: OnceLock<StackEnv> = OnceLock::new();
    ENV.get_or_init(|| StackEnv {
        kafka_brokers: setting("MFA_KAFKA_BROKERS"),
        smtp_host: setting("MFA_SMTP_HOST"),
        smtp_port: setting("MFA_SMTP_PORT")
            .parse()
            .expect("MFA_SMTP_PORT is a port"),
        maildev_url: setting("MFA_MAILDEV_URL"),
    })
}

#[derive(Clone)]
pub struct Options {
    pub code_ttl: Duration,
    pub decision_wait: Duration,
    pub rate_limits: RateLimits,
    pub code_caps: CodeCaps,
    pub code_limits: CodeLimits,
    pub email_retry: code_worker::sender::RetryPolicy,
    /// How long the notification emails' links work.
    pub feedback_link_ttl: Duration,
    /// The broker's `host:port`; None: the stack's.
    pub kafka_brokers: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        // Tests log in many times from one address; the rate-limit tests set their own.
        let unlimited = RateLimit {
            max: 1_000_000,
            window: Duration::from_secs(60),
        };
        Self {
            code_ttl: Duration::from_secs(600),
            decision_wait: Duration::from_secs(10),
            rate_limits: RateLimits {
                per_ip: unlimited,
                per_account_and_ip: unlimited,
                per_account: unlimited,
                per_api_key: unlimited,
            },
            // Tests ask for many codes in a row; the cap tests set their own.
            code_caps: CodeCaps {
                emails_per_hour: 1000,
                min_gap: Duration::ZERO,
                failed_codes_per_day: 100,
            },
            code_limits: CodeLimits {
                per_challenge: 5,
                per_account_per_day: 100,
            },
            email_retry: Default::default(),
            feedback_link_ttl: Duration::from_secs(7 * 24 * 3600),
            kafka_brokers: None,
        }
    }
}

pub struct TestSystem {
    /// A client API key of company `acme`, for every platform.
    pub api_key: String,
    pub intake_url: String,
    pub verifier_url: String,
    /// Each service's `GET /metrics` (the HTTP services' on their API port).
    pub metrics_urls: Vec<(&'static str, String)>,
    pub kafka: KafkaConfig,
    /// The four services' signing keys; `audit_keys.key_file()` is the auditor's key file.
    pub audit_keys: AuditKeys,
    /// The master and pseudonym keys every service of the system shares.
    pub data_protection: mfa_runtime::config::DataProtection,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub mail: MailBox,
    shutdown: ShutdownTrigger,
    /// Each service's run, resolving to whether it ended without error.
    services: Vec<(&'static str, tokio::task::JoinHandle<bool>)>,
    /// Between the services and their database.
    pub database_proxy: proxy::TcpProxy,
    /// Between the code worker and the SMTP server.
    pub smtp_proxy: proxy::TcpProxy,
}

/// A spawned service's run, reduced to "ended without error".
trait RunResult {
    fn map_ok(self) -> tokio::task::JoinHandle<bool>;
}

impl<E: std::fmt::Debug + Send + 'static> RunResult for tokio::task::JoinHandle<Result<(), E>> {
    fn map_ok(self) -> tokio::task::JoinHandle<bool> {
        tokio::spawn(async move { matches!(self.await, Ok(Ok(()))) })
    }
}

impl TestSystem {
    pub fn metrics_urls(&self) -> Vec<(&'static str, String)> {
        self.metrics_urls.clone()
    }

    /// Shuts the four services down as SIGTERM would, and says how long each took to stop
    /// (None: still running after 15 s) and whether it ended cleanly.
    pub async fn shut_down(self) -> Vec<(&'static str, Option<(Duration, bool)>)> {
        let asked = std::time::Instant::now();
        self.shutdown.fire();
        let mut stopped = Vec::new();
        for (name, run) in self.services {
            let deadline = Duration::from_secs(15).saturating_sub(asked.elapsed());
            let outcome = tokio::time::timeout(deadline, run)
                .await
                .ok()
                .map(|clean| (asked.elapsed(), clean.unwrap_or(false)));
            stopped.push((name, outcome));
        }
        stopped
    }
}

pub async fn spawn_system() -> TestSystem {
    spawn_system_with(Options::default()).await
}

pub async fn spawn_system_with(options: Options) -> TestSystem {
    let env = stack_env();
    // A database of its own for this test, migrated by the services themselves.
    let database_url = mfa_testkit::stack::create_database().await;
    // The services reach the database through a proxy of this system's own, so a test can
    // make it hang or go away; the test's own pool connects directly.
    let (host_port, rest) = database_url
        .split_once('@')
        .and_then(|(_, after)| after.split_once('/'))
        .expect("database URL is postgres://user:password@host:port/name");
    let database_proxy = proxy::TcpProxy::start(host_port.parse().expect("host:port"))
        .await
        .expect("the database proxy starts");
    let services_database_url = database_url.replace(
        &format!("@{host_port}/{rest}"),
        &format!("@{}/{rest}", database_proxy.addr),
    );
    let brokers = options
        .kafka_brokers
        .clone()
        .unwrap_or_else(|| env.kafka_brokers.clone());
    let infra = mfa_testkit::stack::infra(&services_database_url, brokers);
    let audit_keys = AuditKeys::generate();
    let kafka = infra.kafka.clone();
    let (trigger, shutdown) = Shutdown::new();

    let intake = login_intake::startup::Application::build(login_intake::config::Config {
        infra: infra.clone(),
        addr: "127.0.0.1:0".parse().unwrap(),
        admin_api_key: SecretString::from(ADMIN_KEY),
        audit_signer: audit_keys.signer("login-intake"),
        decision_wait: options.decision_wait,
        dependency_deadline: Duration::from_millis(1500),
        argon2_threads: 2,
        argon2_queue: 64,
        rate_limits: options.rate_limits.clone(),
        metrics_addr: None,
    })
    .await
    .expect("login-intake starts");
    let intake_url = format!("http://{}", intake.address());

    let verifier = verifier::startup::Application::build(verifier::config::Config {
        infra: infra.clone(),
        addr: "127.0.0.1:0".parse().unwrap(),
        code_hmac_secret: SecretString::from(HMAC_SECRET),
        code_hmac_previous_secret: None,
        code_limits: options.code_limits,
        audit_signer: audit_keys.signer("verifier"),
        metrics_addr: None,
        feedback_link_secret: None,
    })
    .await
    .expect("verifier starts");
    let verifier_url = format!("http://{}", verifier.address());

    let risk = risk_worker::startup::Worker::build(risk_worker::config::Config {
        infra: infra.clone(),
        model: risk_worker::config::ModelConfig {
            policy: risk_worker::rules::Policy {
                code_ttl: options.code_ttl,
                code_caps: options.code_caps.clone(),
                ..Default::default()
            },
            // The tests' addresses are documentation ranges no GeoIP database knows.
            geoip: Default::default(),
        },
        audit_signer: audit_keys.signer("risk-worker"),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .expect("risk-worker starts");

    let smtp_upstream = tokio::net::lookup_host((env.smtp_host.as_str(), env.smtp_port))
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .expect("the SMTP server's address resolves");
    let smtp_proxy = proxy::TcpProxy::start(smtp_upstream)
        .await
        .expect("the SMTP proxy starts");
    let code = code_worker::startup::Worker::build(code_worker::config::Config {
        infra: infra.clone(),
        code_hmac_secret: SecretString::from(HMAC_SECRET),
        smtp: code_worker::config::SmtpConfig {
            // Through a proxy of this system's own, so a test can take the server away.
            host: "127.0.0.1".into(),
            port: smtp_proxy.addr.port(),
            tls: code_worker::config::SmtpTls::None,
            username: None,
            password: None,
            from: "Adaptive MFA <no-reply@adaptive-mfa.test>".parse().unwrap(),
            timeout: Duration::from_secs(10),
        },
        email_retry: options.email_retry,
        audit_signer: audit_keys.signer("code-worker"),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        feedback_links: code_worker::config::FeedbackLinkConfig {
            secret: None,
            base_url: verifier_url.clone(),
            ttl: options.feedback_link_ttl,
        },
        // The notifications name a login's place from the city data scripts/test fetched
        // (none set: they say it is not known).
        geoip: risk_worker::geo::GeoIpConfig {
            asn: Vec::new(),
            ..risk_worker::geo::GeoIpConfig::from_env().expect("the GeoIP settings")
        },
    })
    .await
    .expect("code-worker starts");

    let metrics_urls = vec![
        ("login-intake", format!("{intake_url}/metrics")),
        (
            "risk-worker",
            format!("http://{}/metrics", risk.metrics_address()),
        ),
        (
            "code-worker",
            format!("http://{}/metrics", code.metrics_address()),
        ),
        ("verifier", format!("{verifier_url}/metrics")),
    ];
    let services = vec![
        (
            "login-intake",
            tokio::spawn(intake.run(shutdown.clone())).map_ok(),
        ),
        (
            "verifier",
            tokio::spawn(verifier.run(shutdown.clone())).map_ok(),
        ),
        (
            "risk-worker",
            tokio::spawn(risk.run(shutdown.clone())).map_ok(),
        ),
        ("code-worker", tokio::spawn(code.run(shutdown)).map_ok()),
    ];

    let mut system = TestSystem {
        api_key: String::new(),
        intake_url,
        verifier_url,
        metrics_urls,
        kafka,
        audit_keys,
        data_protection: infra.data_protection.clone(),
        pool: PgPool::connect(&database_url).await.expect("test database"),
        http: reqwest::Client::new(),
        mail: MailBox::new(&env.maildev_url),
        shutdown: trigger,
        services,
        database_proxy,
        smtp_proxy,
    };
    system.api_key = system.create_api_key("acme", None).await;
    system
}

/// A code that is not `code`: a guaranteed wrong guess.
pub fn wrong_code(code: &str) -> &'static str {
    if code == "000000" {
        "000001"
    } else {
        "000000"
    }
}

/// The same limit for every rate-limit bucket but the ones a test sets, over an hour.
pub fn hourly_limits(
    per_ip: u32,
    per_account_and_ip: u32,
    per_account: u32,
    per_api_key: u32,
) -> RateLimits {
    let limit = |max| RateLimit {
        max,
        window: Duration::from_secs(3600),
    };
    RateLimits {
        per_ip: limit(per_ip),
        per_account_and_ip: limit(per_account_and_ip),
        per_account: limit(per_account),
        per_api_key: limit(per_api_key),
    }
}

/// A unique address, so tests sharing the SMTP server never read each other's mail.
pub fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl TestSystem {
    async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Response { status, body }
    }

    pub async fn create_user(
        &self,
        email: &str,
        password: Option<&str>,
        company: &str,
        privileged: bool,
    ) -> String {
        let response = self
            .send(
                self.http
                    .post(format!("{}/v1/admin/users", self.intake_url))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({
                        "email": email, "password": password, "company_id": company,
                        "privileged": privileged, "company_uses_sso": password.is_none(),
                    })),
            )
            .await;
        assert_eq!(response.status, 201, "create user: {}", response.body);
        response.body["user_id"].as_str().unwrap().to_owned()
    }

    /// A new client API key of `company`, for `platforms` (all when None).
    pub async fn create_api_key(&self, company: &str, platforms: Option<&[&str]>) -> String {
        let response = self
            .send(
                self.http
                    .post(format!("{}/v1/admin/api-keys", self.intake_url))
                    .bearer_auth(ADMIN_KEY)
                    .json(
                        &json!({ "company_id": company, "name": "tests", "platforms": platforms }),
                    ),
            )
            .await;
        assert_eq!(response.status, 201, "create API key: {}", response.body);
        response.body["api_key"].as_str().unwrap().to_owned()
    }

    pub async fn post_login(&self, body: Value) -> Response {
        self.send(
            self.http
                .post(format!("{}/v1/logins", self.intake_url))
                .bearer_auth(&self.api_key)
                .json(&body),
        )
        .await
    }

    /// A password login from the given device, address and browser.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device: Option<&str>,
        ip: &str,
        user_agent: &str,
    ) -> Response {
        let mut context = json!({ "ip": ip, "user_agent": user_agent });
        if let Some(device) = device {
            context["device_id"] = device.into();
        }
        self.post_login(json!({
            "email": email, "password": password, "platform": "dashboard", "context": context,
        }))
        .await
    }

    pub async fn get_login(&self, attempt_id: &str) -> Response {
        self.send(
            self.http
                .get(format!("{}/v1/logins/{attempt_id}", self.intake_url))
                .bearer_auth(&self.api_key),
        )
        .await
    }

    /// `GET path` on login-intake with `key` (none: no `Authorization`): the status and
    /// the JSON body.
    pub async fn intake_get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.intake_url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn verify(&self, challenge_id: &str, code: &str) -> Response {
        self.send(
            self.http
                .post(format!(
                    "{}/v1/challenges/{challenge_id}/verify",
                    self.verifier_url
                ))
                .bearer_auth(&self.api_key)
                .json(&json!({ "code": code })),
        )
        .await
    }

    /// Polls a count (`query`, with `$1` bound to the id) until `done` accepts it. The workers
    /// act a Kafka hop after the call that set them off has answered.
    pub async fn wait_for_count(&self, query: &str, id: &str, done: impl Fn(i64) -> bool) {
        let id = uuid::Uuid::parse_str(id).unwrap();
        for _ in 0..200 {
            let count: i64 = sqlx::query_scalar(query)
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .unwrap();
            if done(count) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{query} never reached the expected count");
    }

    /// Waits until the risk worker learned the user's approved login (it does so when it
    /// reads the verifier's final `LoginApproved`).
    pub async fn wait_until_learned(&self, user_id: &str) {
        self.wait_for_count(
            "SELECT count(*) FROM risk_login_history WHERE user_id = $1",
            user_id,
            |known| known > 0,
        )
        .await;
    }

    /// Someone holding `email`'s password (but not a known device) logs in: the challenge
    /// and the code it emailed, the `nth` email to that address.
    pub async fn attacker_challenge(&self, email: &str, nth: usize) -> (String, String) {
        let attack = self
            .login(
                email,
                PASSWORD,
                Some("attacker"),
                "203.0.113.66",
                FIREFOX_LINUX,
            )
            .await;
        let challenge = attack.body["challenge_id"].as_str().unwrap().to_owned();
        (challenge, self.mail.wait_for_code(email, nth).await)
    }

    /// Logs a new user in once with MFA, so their device, network and browser are known.
    pub async fn enrolled_user(
        &self,
        device: &str,
        ip: &str,
        user_agent: &str,
    ) -> (String, String) {
        let email = unique_email("enrolled");
        let user_id = self
            .create_user(&email, Some(PASSWORD), "acme", false)
            .await;
        let first = self
            .login(&email, PASSWORD, Some(device), ip, user_agent)
            .await;
        assert_eq!(first.body["status"], "mfa_required", "{}", first.body);
        let code = self.mail.wait_for_code(&email, 1).await;
        let verified = self
            .verify(first.body["challenge_id"].as_str().unwrap(), &code)
            .await;
        assert_eq!(verified.status, 200, "{}", verified.body);
        self.wait_until_learned(&user_id).await;
        (email, user_id)
    }
}

/// Data keys read ahead from the system's database, for replay (which reads them
/// synchronously): every key that sealed one of the events given.
pub struct PrefetchedKeys(
    std::collections::HashMap<shared::personal::DataKeyId, Option<shared::personal::DataKey>>,
);

impl PrefetchedKeys {
    pub async fn of(system: &TestSystem, events: &[shared::events::Envelope]) -> Self {
        use shared::events::Event;
        let keys = mfa_store::data_keys::DataKeys::new(
            system.pool.clone(),
            system.data_protection.master_keys.clone(),
        );
        let mut found = std::collections::HashMap::new();
        for envelope in events {
            let id = match &envelope.event {
                Event::LoginAttempted(attempt) => attempt.client.key_id(),
                Event::LoginFeedback(feedback) => feedback.reported.key_id(),
                _ => None,
            };
            if let Some(id) = id {
                found.insert(id, keys.opening_key(&id).await.expect("data key"));
            }
        }
        Self(found)
    }
}

impl risk_worker::replay::DataKeySource for PrefetchedKeys {
    fn key(
        &mut self,
        id: &shared::personal::DataKeyId,
    ) -> Result<Option<shared::personal::DataKey>, String> {
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| format!("data key {id} was not read ahead"))
    }
}

/// Each of replay's decisions is the live worker's for the same attempt: its type, and each
/// of the payload's `fields` (`risk`, `counted`, `reason`...).
pub fn assert_replayed_as_live(
    live: &std::collections::HashMap<String, serde_json::Value>,
    replayed: &[serde_json::Value],
    fields: &[&str],
) {
    for decision in replayed {
        let attempt = decision["attempt_id"].as_str().unwrap();
        let live = &live[attempt];
        assert_eq!(live["event_type"], decision["event_type"], "{attempt}");
        for field in fields {
            assert_eq!(
                live["payload"][field], decision["payload"][field],
                "{attempt}: {field}"
            );
        }
    }
}
