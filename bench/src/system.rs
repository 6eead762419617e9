//! The system under benchmark: the four services' release binaries as processes against the
//! running stack (`scripts/stack up`), each run with a database and a topic namespace of its
//! own, so runs never read each other's events or rows; configured as `scripts/run` and the
//! chaos harness configure them (audit signing keys, the caps that protect a real inbox
//! lifted since a few hundred users log in many times a minute).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mfa_testkit::audit_keys::AuditKeys;
use mfa_testkit::stack::DataProtectionKeys;
use serde::Serialize;
use sqlx::{Connection, Executor};

use crate::process::{ProcessError, ServiceProcess};
use crate::rss::Memory;

pub const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
const HMAC_SECRET: &str = "bench-only-hmac-secret-that-is-at-least-32-bytes";

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("{0} is not set: run scripts/bench (it sources .stack/stack.env and the GeoIP paths)")]
    Unset(&'static str),
    #[error("MFA_KAFKA_FETCH_WAIT_MS: {0:?} is not a number of milliseconds")]
    FetchWait(String),
    #[error("the stack's PostgreSQL")]
    Database(#[from] sqlx::Error),
    #[error("{}: missing (scripts/bench builds the release binaries)", .0.display())]
    NoBinary(PathBuf),
    #[error("creating the run's folder {}", .path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a free port")]
    Port(#[source] mfa_testkit::TestkitError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{url} was not ready within {within:?}; see {}", .log.display())]
    NotReady {
        url: String,
        within: Duration,
        log: PathBuf,
    },
}

/// The stack's settings, as `.stack/stack.env` and `scripts/fetch-geoip` export them.
#[derive(Debug, Clone)]
pub struct Stack {
    /// A URL of the stack's PostgreSQL server; runs create their databases next to its own.
    pub database_url: String,
    pub brokers: String,
    pub smtp_host: String,
    pub smtp_port: String,
    pub maildev_url: String,
    pub geoip_city: Option<String>,
    pub geoip_asn: Option<String>,
    /// The services' `fetch.wait.max.ms` (`MFA_KAFKA_FETCH_WAIT_MS` in the benchmark's own
    /// environment, which it passes on; default 5, the services' own).
    pub fetch_wait_ms: u32,
}

impl Stack {
    pub fn from_env() -> Result<Self, SystemError> {
        let required =
            |name: &'static str| std::env::var(name).map_err(|_| SystemError::Unset(name));
        Ok(Self {
            database_url: required("MFA_DATABASE_URL")?,
            brokers: required("MFA_KAFKA_BROKERS")?,
            smtp_host: required("MFA_SMTP_HOST")?,
            smtp_port: required("MFA_SMTP_PORT")?,
            maildev_url: required("MFA_MAILDEV_URL")?
                .trim_end_matches('/')
                .to_owned(),
            geoip_city: std::env::var("MFA_GEOIP_CITY_DB").ok(),
            geoip_asn: std::env::var("MFA_GEOIP_ASN_DB").ok(),
            fetch_wait_ms: match std::env::var("MFA_KAFKA_FETCH_WAIT_MS") {
                Ok(text) => text.parse().map_err(|_| SystemError::FetchWait(text))?,
                Err(_) => 5,
            },
        })
    }

    /// A new, empty database on the stack's server; its URL (the services migrate it).
    pub async fn create_database(&self, name: &str) -> Result<String, SystemError> {
        let mut connection = sqlx::PgConnection::connect(&self.database_url).await?;
        connection
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await?;
        connection.close().await?;
        let base = self
            .database_url
            .rsplit_once('/')
            .map_or(self.database_url.as_str(), |(base, _)| base);
        Ok(format!("{base}/{name}"))
    }

    /// Drops a run's database (the figures are printed; its rows are not needed again).
    pub async fn drop_database(&self, name: &str) -> Result<(), SystemError> {
        let mut connection = sqlx::PgConnection::connect(&self.database_url).await?;
        connection
            .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
            .await?;
        connection.close().await?;
        Ok(())
    }
}

pub use mfa_testkit::services::ServiceKind;

/// One run's database, topics and keys: what its services share.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub stack: Stack,
    pub database_name: String,
    pub database_url: String,
    pub namespace: String,
    pub partitions: i32,
    pub keys: AuditKeys,
    /// The personal-data keys (`MFA_MASTER_KEYS`, `MFA_PSEUDONYM_KEY`) all its services share.
    pub data_keys: DataProtectionKeys,
    /// Where the binaries are (`target/release`).
    pub binaries: PathBuf,
    /// Where the services' logs go.
    pub folder: PathBuf,
}

impl Deployment {
    /// A fresh database and topic namespace named after `label` and a random suffix.
    pub async fn fresh(
        stack: &Stack,
        label: &str,
        partitions: i32,
        binaries: &Path,
        folder: &Path,
    ) -> Result<Self, SystemError> {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let database_name = format!("bench_{label}_{suffix}");
        let database_url = stack.create_database(&database_name).await?;
        std::fs::create_dir_all(folder).map_err(|source| SystemError::Folder {
            path: folder.to_path_buf(),
            source,
        })?;
        for kind in ServiceKind::ALL {
            let binary = binaries.join(kind.binary());
            if !binary.is_file() {
                return Err(SystemError::NoBinary(binary));
            }
        }
        Ok(Self {
            stack: stack.clone(),
            database_name,
            database_url,
            namespace: format!("bench{label}{suffix}"),
            partitions,
            keys: AuditKeys::generate(),
            data_keys: DataProtectionKeys::generate(),
            binaries: binaries.to_path_buf(),
            folder: folder.to_path_buf(),
        })
    }

    pub fn kafka(&self) -> mfa_runtime::config::KafkaConfig {
        mfa_runtime::config::KafkaConfig {
            brokers: self.stack.brokers.clone(),
            namespace: self.namespace.clone(),
            partitions: self.partitions,
            replication_factor: 1,
            retention_ms: -1,
            login_requests_retention:
                mfa_runtime::config::KafkaConfig::DEFAULT_LOGIN_REQUESTS_RETENTION,
            fetch_wait_ms: self.stack.fetch_wait_ms,
        }
    }

    /// The environment of one service process: `http_port` for the two HTTP services,
    /// `metrics_port` for the workers' `/metrics`.
    pub fn service_env(
        &self,
        kind: ServiceKind,
        http_port: Option<u16>,
        metrics_port: Option<u16>,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("MFA_DATABASE_URL", self.database_url.clone()),
            ("MFA_KAFKA_BROKERS", self.stack.brokers.clone()),
            ("MFA_TOPIC_NAMESPACE", self.namespace.clone()),
            ("MFA_TOPIC_PARTITIONS", self.partitions.to_string()),
            // What scripts/run logs: a deployment's level, not a quieter one.
            ("RUST_LOG", "info".into()),
            ("MFA_AUDIT_SIGNING_KEY", self.keys.configured(kind.binary())),
            (
                "MFA_KAFKA_FETCH_WAIT_MS",
                self.stack.fetch_wait_ms.to_string(),
            ),
        ];
        env.extend(self.data_keys.env());
        if let Some(port) = metrics_port {
            env.push(("MFA_METRICS_ADDR", format!("127.0.0.1:{port}")));
        }
        let address = http_port.map_or_else(String::new, |port| format!("127.0.0.1:{port}"));
        // The load is a few hundred users logging in many times a minute from one address
        // range: the limits that protect a real deployment from that would be the figure.
        let unlimited = "1000000/60".to_owned();
        match kind {
            ServiceKind::LoginIntake => env.extend([
                ("MFA_INTAKE_ADDR", address),
                ("MFA_ADMIN_API_KEY", ADMIN_KEY.into()),
                ("MFA_RATE_LIMIT_PER_IP", unlimited.clone()),
                ("MFA_RATE_LIMIT_PER_ACCOUNT_AND_IP", unlimited.clone()),
                ("MFA_RATE_LIMIT_PER_ACCOUNT", unlimited.clone()),
                ("MFA_RATE_LIMIT_PER_API_KEY", unlimited),
            ]),
            ServiceKind::Verifier => env.extend([
                ("MFA_VERIFIER_ADDR", address),
                ("MFA_CODE_HMAC_SECRET", HMAC_SECRET.into()),
                ("MFA_FAILED_CODES_PER_DAY", "1000000".into()),
            ]),
            ServiceKind::RiskWorker => {
                env.extend([
                    ("MFA_CODE_EMAILS_PER_HOUR", "1000000".into()),
                    ("MFA_CODE_EMAIL_MIN_GAP_SECS", "0".into()),
                    ("MFA_FAILED_CODES_PER_DAY", "1000000".into()),
                ]);
                if let Some(city) = &self.stack.geoip_city {
                    env.push(("MFA_GEOIP_CITY_DB", city.clone()));
                }
                if let Some(asn) = &self.stack.geoip_asn {
                    env.push(("MFA_GEOIP_ASN_DB", asn.clone()));
                }
            }
            ServiceKind::CodeWorker => env.extend([
                ("MFA_CODE_HMAC_SECRET", HMAC_SECRET.into()),
                ("MFA_SMTP_HOST", self.stack.smtp_host.clone()),
                ("MFA_SMTP_PORT", self.stack.smtp_port.clone()),
                ("MFA_SMTP_TLS", "none".into()),
                (
                    "MFA_SMTP_FROM",
                    "Adaptive MFA <no-reply@adaptive-mfa.test>".into(),
                ),
            ]),
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Starts one process of `kind` (its log `<name>.log` in the run's folder).
    pub fn spawn(
        &self,
        kind: ServiceKind,
        name: &str,
        http_port: Option<u16>,
        metrics_port: Option<u16>,
    ) -> Result<ServiceProcess, SystemError> {
        Ok(ServiceProcess::spawn(
            name,
            &self.binaries.join(kind.binary()),
            &self.service_env(kind, http_port, metrics_port),
            &self.folder.join(format!("{name}.log")),
        )?)
    }
}

fn free_port() -> Result<u16, SystemError> {
    mfa_testkit::net::free_port().map_err(SystemError::Port)
}

/// The four services, running.
pub struct System {
    pub deployment: Deployment,
    pub services: Vec<ServiceProcess>,
    pub intake_url: String,
    pub verifier_url: String,
    /// The risk worker's `/metrics` port (its handling times: `mfa-bench growth`).
    pub risk_metrics_port: u16,
}

/// One service's memory at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceMemory {
    pub service: String,
    #[serde(flatten)]
    pub memory: Memory,
}

impl System {
    /// Starts the four services of `deployment` and waits until both HTTP services are
    /// ready (their database and broker answer).
    pub async fn start(deployment: Deployment) -> Result<Self, SystemError> {
        let (intake_port, verifier_port, risk_metrics_port) =
            (free_port()?, free_port()?, free_port()?);
        let mut services = Vec::new();
        for kind in ServiceKind::ALL {
            let (http, metrics) = match kind {
                ServiceKind::LoginIntake => (Some(intake_port), None),
                ServiceKind::Verifier => (Some(verifier_port), None),
                ServiceKind::RiskWorker => (None, Some(risk_metrics_port)),
                ServiceKind::CodeWorker => (None, Some(free_port()?)),
            };
            let process = deployment.spawn(kind, kind.binary(), http, metrics)?;
            services.push(process);
            if kind == ServiceKind::LoginIntake {
                // Its migrations first: the others' would race them on a fresh database.
                let url = format!("http://127.0.0.1:{intake_port}/readyz");
                wait_ready(&url, &mut services, &deployment.folder).await?;
            }
        }
        let verifier_url = format!("http://127.0.0.1:{verifier_port}");
        wait_ready(
            &format!("{verifier_url}/readyz"),
            &mut services,
            &deployment.folder,
        )
        .await?;
        Ok(Self {
            deployment,
            services,
            intake_url: format!("http://127.0.0.1:{intake_port}"),
            verifier_url,
            risk_metrics_port,
        })
    }

    /// Every service's memory now, and an error if one exited.
    pub fn memory(&mut self) -> Result<Vec<ServiceMemory>, SystemError> {
        self.services
            .iter_mut()
            .map(|service| {
                service.check_running()?;
                Ok(ServiceMemory {
                    service: service.name().to_owned(),
                    memory: service.memory()?,
                })
            })
            .collect()
    }

    /// An error if a service exited.
    pub fn check_running(&mut self) -> Result<(), SystemError> {
        for service in &mut self.services {
            service.check_running()?;
        }
        Ok(())
    }

    /// SIGTERM to each (the services drain), and the run's database dropped.
    pub async fn stop(mut self) -> Result<(), SystemError> {
        for service in self.services.iter_mut().rev() {
            service.stop(Duration::from_secs(15));
        }
        self.deployment
            .stack
            .drop_database(&self.deployment.database_name)
            .await
    }
}

/// Polls `url` until it answers 2xx; an error if a service exits meanwhile.
pub async fn wait_ready(
    url: &str,
    services: &mut [ServiceProcess],
    folder: &Path,
) -> Result<(), SystemError> {
    let within = Duration::from_secs(90);
    let started = Instant::now();
    let http = reqwest::Client::new();
    while started.elapsed() < within {
        for service in services.iter_mut() {
            service.check_running()?;
        }
        let ready = http
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(SystemError::NotReady {
        url: url.to_owned(),
        within,
        log: folder.to_path_buf(),
    })
}
