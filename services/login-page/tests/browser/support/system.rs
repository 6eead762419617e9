//! The four services and the sign-in page in process, on random ports, with a database and
//! a topic namespace of their own, against the real broker, PostgreSQL and SMTP server.

use std::time::Duration;

use login_intake::rate_limit::{RateLimit, RateLimits};
use mfa_runtime::shutdown::{Shutdown, ShutdownTrigger};
use mfa_testkit::stack::{create_database, setting};
use risk_worker::rules::CodeCaps;
use secrecy::SecretString;
use serde_json::json;
use sqlx::PgPool;

use super::mail::Inbox;

const ADMIN_KEY: &str = "test-admin-key-0123456789";
const HMAC_SECRET: &str = "test-hmac-secret-that-is-at-least-32-bytes";
const CSRF_SECRET: &str = "test-csrf-secret-that-is-at-least-32-bytes";
/// Where the page hands a signed-in user over (nothing listens there: the tests read the
/// link).
pub const RETURN_URL: &str = "http://localhost:9/signed-in";

pub struct Options {
    pub code_ttl: Duration,
    /// The page is given an address where login-intake is not (nothing listens there), as
    /// when the service is down.
    pub intake_down: bool,
    /// Logins login-intake takes from one address in an hour (None: no limit that matters).
    pub logins_per_ip: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(600),
            intake_down: false,
            logins_per_ip: None,
        }
    }
}

pub struct System {
    /// The page's address, `http://127.0.0.1:PORT`.
    pub page_url: String,
    pub intake_url: String,
    pub inbox: Inbox,
    pool: PgPool,
    http: reqwest::Client,
    shutdown: ShutdownTrigger,
    runs: Vec<tokio::task::JoinHandle<()>>,
}

fn spawn<E: std::fmt::Debug + Send + 'static>(
    name: &'static str,
    run: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = run.await {
            panic!("{name} stopped: {error:?}");
        }
    })
}

impl System {
    pub async fn start(options: Options) -> System {
        let database_url = create_database().await;
        let infra = mfa_testkit::stack::infra(&database_url, setting("MFA_KAFKA_BROKERS"));
        let audit_keys = mfa_testkit::audit_keys::AuditKeys::generate();
        // The tests sign in many times from one address, and ask for new codes at once.
        let unlimited = RateLimit {
            max: 1_000_000,
            window: Duration::from_secs(60),
        };
        let intake = login_intake::startup::Application::build(login_intake::config::Config {
            infra: infra.clone(),
            addr: "127.0.0.1:0".parse().unwrap(),
            admin_api_key: SecretString::from(ADMIN_KEY),
            audit_signer: audit_keys.signer("login-intake"),
            decision_wait: Duration::from_secs(10),
            dependency_deadline: Duration::from_millis(1500),
            argon2_threads: 2,
            argon2_queue: 64,
            rate_limits: RateLimits {
                per_ip: options.logins_per_ip.map_or(unlimited, |max| RateLimit {
                    max,
                    window: Duration::from_secs(3600),
                }),
                per_account_and_ip: unlimited,
                per_account: unlimited,
                per_api_key: unlimited,
            },
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
            code_limits: verifier::judge::CodeLimits {
                per_challenge: 5,
                per_account_per_day: 100,
            },
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
                    code_caps: CodeCaps {
                        emails_per_hour: 1000,
                        min_gap: Duration::ZERO,
                        failed_codes_per_day: 100,
                    },
                    ..Default::default()
                },
                geoip: Default::default(),
            },
            audit_signer: audit_keys.signer("risk-worker"),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
        })
        .await
        .expect("risk-worker starts");
        let code = code_worker::startup::Worker::build(code_worker::config::Config {
            infra: infra.clone(),
            code_hmac_secret: SecretString::from(HMAC_SECRET),
            smtp: code_worker::config::SmtpConfig {
                host: setting("MFA_SMTP_HOST"),
                port: setting("MFA_SMTP_PORT")
                    .parse()
                    .expect("MFA_SMTP_PORT is a port"),
                tls: code_worker::config::SmtpTls::None,
                username: None,
                password: None,
                from: "Adaptive MFA <no-reply@adaptive-mfa.test>".parse().unwrap(),
                timeout: Duration::from_secs(10),
            },
            email_retry: Default::default(),
            audit_signer: audit_keys.signer("code-worker"),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            feedback_links: code_worker::config::FeedbackLinkConfig {
                secret: None,
                base_url: verifier_url.clone(),
                ttl: Duration::from_secs(7 * 24 * 3600),
            },
            // The page's tests read no notification email.
            geoip: Default::default(),
        })
        .await
        .expect("code-worker starts");

        let (trigger, shutdown) = Shutdown::new();
        let mut runs = vec![
            spawn("login-intake", intake.run(shutdown.clone())),
            spawn("verifier", verifier.run(shutdown.clone())),
            spawn("risk-worker", risk.run(shutdown.clone())),
            spawn("code-worker", code.run(shutdown.clone())),
        ];
        let http = reqwest::Client::new();
        let api_key = create_api_key(&http, &intake_url).await;

        let page = login_page::startup::Application::build(login_page::config::Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            intake_url: if options.intake_down {
                let nobody = mfa_testkit::net::free_port().unwrap();
                format!("http://127.0.0.1:{nobody}").parse().unwrap()
            } else {
                intake_url.parse().unwrap()
            },
            verifier_url: verifier_url.parse().unwrap(),
            api_key: SecretString::from(api_key),
            platform: login_page::domain::platform::Platform::Dashboard,
            company_name: Some("Acme".into()),
            return_url: RETURN_URL.parse().unwrap(),
            csrf_secret: SecretString::from(CSRF_SECRET),
            trusted_proxies: 0,
            api_timeout: Duration::from_secs(15),
            decision_poll: Duration::from_secs(5),
        })
        .await
        .expect("login-page starts");
        let page_url = format!("http://{}", page.address());
        runs.push(spawn("login-page", page.run(shutdown)));

        System {
            page_url,
            intake_url,
            inbox: Inbox::new(&setting("MFA_MAILDEV_URL")),
            pool: PgPool::connect(&database_url).await.expect("test database"),
            http,
            shutdown: trigger,
            runs,
        }
    }

    /// An account of company `acme` with the tests' password; its user id.
    pub async fn create_user(&self, email: &str) -> String {
        let response = self
            .http
            .post(format!("{}/v1/admin/users", self.intake_url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"email": email, "password": super::PASSWORD, "company_id": "acme"}))
            .send()
            .await
            .expect("login-intake answers");
        assert_eq!(response.status(), 201, "create user");
        let body: serde_json::Value = response.json().await.unwrap();
        body["user_id"].as_str().unwrap().to_owned()
    }

    /// Waits until the risk worker learned the user's approved login (it does so when it
    /// reads the verifier's final `LoginApproved`, a Kafka hop after the page showed it).
    pub async fn wait_until_learned(&self, user_id: &str) {
        let user_id = uuid::Uuid::parse_str(user_id).unwrap();
        for _ in 0..200 {
            let known: i64 =
                sqlx::query_scalar("SELECT count(*) FROM risk_login_history WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(&self.pool)
                    .await
                    .unwrap();
            if known > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the risk worker never learned the login");
    }

    pub async fn shut_down(self) {
        self.shutdown.fire();
        for run in self.runs {
            let _ = tokio::time::timeout(Duration::from_secs(15), run).await;
        }
    }
}

/// The page's client API key: company `acme`, as an operator would create it.
async fn create_api_key(http: &reqwest::Client, intake_url: &str) -> String {
    let response = http
        .post(format!("{intake_url}/v1/admin/api-keys"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"company_id": "acme", "name": "login-page", "platforms": ["dashboard"]}))
        .send()
        .await
        .expect("login-intake answers");
    assert_eq!(response.status(), 201, "create API key");
    let body: serde_json::Value = response.json().await.unwrap();
    body["api_key"].as_str().unwrap().to_owned()
}
