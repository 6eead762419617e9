//! The native stack of `scripts/stack up`, for tests that run a service as a process or in
//! process: its settings, a database of a test's own on its PostgreSQL server, and the
//! services' connection to both with a topic namespace of the test's own.

// Test set-up: without the stack a test cannot run, and says so.
#![allow(clippy::panic, clippy::expect_used)]

use std::time::Duration;

use mfa_runtime::config::{DataProtection, InfraConfig, KafkaConfig};
use secrecy::SecretString;
use shared::personal::{MasterKeys, PseudonymKey};

/// A stack setting (`MFA_DATABASE_URL`, `MFA_KAFKA_BROKERS`...): from the environment, or
/// from `.stack/stack.env`, which `scripts/stack up` writes.
pub fn setting(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.stack/stack.env");
    std::env::var(name).ok().unwrap_or_else(|| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().trim_start_matches("export ").split_once('='))
            .find(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim().trim_matches(['"', '\'']).to_owned())
            .unwrap_or_else(|| panic!("{name} is not set: run `scripts/stack up` first"))
    })
}

/// What connects the services of one test to the stack: `database_url` and the broker at
/// `brokers`, under a topic namespace of the test's own, so tests sharing the broker never
/// read each other's events. Two partitions, as the services' consumers are tested with
/// more than one; the event log kept; a 5 ms fetch wait, as in production, so each hop of
/// the login path is quick.
pub fn infra(database_url: &str, brokers: String) -> InfraConfig {
    InfraConfig {
        database_url: SecretString::from(database_url.to_owned()),
        kafka: KafkaConfig {
            brokers,
            namespace: format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            partitions: 2,
            replication_factor: 1,
            retention_ms: -1,
            login_requests_retention: KafkaConfig::DEFAULT_LOGIN_REQUESTS_RETENTION,
            fetch_wait_ms: 5,
        },
        housekeeping_interval: Duration::from_secs(300),
        shutdown_timeout: Duration::from_secs(10),
        data_protection: data_protection(),
    }
}

/// Keys of a test's own: a fresh master key and pseudonym key.
pub fn data_protection() -> DataProtection {
    DataProtectionKeys::generate().config()
}

/// One system's personal-data keys, as the services' settings: every service of a system
/// run as processes gets the same `env()`.
#[derive(Debug, Clone)]
pub struct DataProtectionKeys {
    /// `MFA_MASTER_KEYS`.
    pub master_keys: String,
    /// `MFA_PSEUDONYM_KEY`.
    pub pseudonym_key: String,
}

impl DataProtectionKeys {
    pub fn generate() -> Self {
        use base64::Engine as _;
        Self {
            master_keys: MasterKeys::generate_entry("test-1"),
            pseudonym_key: base64::engine::general_purpose::STANDARD
                .encode(rand::random::<[u8; 32]>()),
        }
    }

    pub fn config(&self) -> DataProtection {
        DataProtection {
            master_keys: std::sync::Arc::new(
                MasterKeys::parse(&self.master_keys).expect("a generated key"),
            ),
            pseudonym_key: PseudonymKey::parse(&self.pseudonym_key).expect("a generated key"),
            retention_days: DataProtection::DEFAULT_RETENTION_DAYS,
        }
    }

    /// The settings of a service process.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("MFA_MASTER_KEYS", self.master_keys.clone()),
            ("MFA_PSEUDONYM_KEY", self.pseudonym_key.clone()),
        ]
    }
}

/// A new, empty database on the stack's server; its URL (the service migrates it).
pub async fn create_database() -> String {
    use sqlx::{Connection, Executor};
    let server_url = setting("MFA_DATABASE_URL");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(&server_url)
        .await
        .expect("stack PostgreSQL answers");
    connection
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create test database");
    let (base, _) = server_url.rsplit_once('/').expect("URL has a path");
    format!("{base}/{name}")
}
