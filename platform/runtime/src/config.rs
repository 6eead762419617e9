//! Configuration from environment variables. Every setting and its default is listed in the
//! README; a bad value stops the service at start-up with the variable's name, and secrets are
//! held in `SecretString` so they never reach a log line.

use std::str::FromStr;

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(String),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

/// Reads typed settings from the environment.
pub struct Env;

impl Env {
    fn raw(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    pub fn required<T: FromStr>(name: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = Self::raw(name).ok_or_else(|| ConfigError::Missing(name.into()))?;
        parse(name, &raw)
    }

    pub fn or<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match Self::raw(name) {
            Some(raw) => parse(name, &raw),
            None => Ok(default),
        }
    }

    pub fn optional(name: &str) -> Option<String> {
        Self::raw(name)
    }

    pub fn secret(name: &str) -> Result<SecretString, ConfigError> {
        Self::raw(name)
            .map(SecretString::from)
            .ok_or_else(|| ConfigError::Missing(name.into()))
    }

    pub fn optional_secret(name: &str) -> Option<SecretString> {
        Self::raw(name).map(SecretString::from)
    }
}

fn parse<T: FromStr>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    raw.trim()
        .parse()
        .map_err(|e: T::Err| ConfigError::Invalid {
            name: name.into(),
            reason: e.to_string(),
        })
}

/// What connects a service to the rest of the system: the database and the broker.
#[derive(Debug, Clone)]
pub struct InfraConfig {
    pub database_url: SecretString,
    pub kafka: KafkaConfig,
    /// How often short-lived rows are pruned (`MFA_HOUSEKEEPING_INTERVAL_SECS`, default 300;
    /// the sweeps are `mfa_store::housekeeping`).
    pub housekeeping_interval: std::time::Duration,
    /// After SIGTERM, the longest the service may take to finish its work in flight before
    /// it exits anyway (`crate::shutdown`).
    pub shutdown_timeout: std::time::Duration,
    /// The keys that protect personal data in events and rows (`shared::personal`).
    pub data_protection: DataProtection,
}

/// `MFA_MASTER_KEYS` (required: `<id>:<base64 of 32 bytes>`, comma-separated, the first
/// wrapping new data keys) and `MFA_PSEUDONYM_KEY` (required: base64 of 32 bytes, never
/// rotated), with `MFA_PERSONAL_DATA_RETENTION_DAYS` (default 400): after it, a month's data
/// keys are destroyed and its events' personal fields read as erased.
#[derive(Debug, Clone)]
pub struct DataProtection {
    pub master_keys: std::sync::Arc<shared::personal::MasterKeys>,
    pub pseudonym_key: shared::personal::PseudonymKey,
    pub retention_days: u32,
}

impl DataProtection {
    pub const DEFAULT_RETENTION_DAYS: u32 = 400;

    pub fn from_env() -> Result<Self, ConfigError> {
        let invalid = |name: &str, e: shared::personal::PersonalDataError| ConfigError::Invalid {
            name: name.into(),
            reason: e.to_string(),
        };
        let master = Env::optional("MFA_MASTER_KEYS")
            .ok_or_else(|| ConfigError::Missing("MFA_MASTER_KEYS".into()))?;
        let pseudonym = Env::optional("MFA_PSEUDONYM_KEY")
            .ok_or_else(|| ConfigError::Missing("MFA_PSEUDONYM_KEY".into()))?;
        Ok(Self {
            master_keys: std::sync::Arc::new(
                shared::personal::MasterKeys::parse(&master)
                    .map_err(|e| invalid("MFA_MASTER_KEYS", e))?,
            ),
            pseudonym_key: shared::personal::PseudonymKey::parse(&pseudonym)
                .map_err(|e| invalid("MFA_PSEUDONYM_KEY", e))?,
            retention_days: Env::or(
                "MFA_PERSONAL_DATA_RETENTION_DAYS",
                Self::DEFAULT_RETENTION_DAYS,
            )?,
        })
    }
}

impl InfraConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: Env::secret("MFA_DATABASE_URL")?,
            kafka: KafkaConfig::from_env()?,
            housekeeping_interval: std::time::Duration::from_secs(Env::or(
                "MFA_HOUSEKEEPING_INTERVAL_SECS",
                300,
            )?),
            shutdown_timeout: std::time::Duration::from_secs(Env::or(
                "MFA_SHUTDOWN_TIMEOUT_SECS",
                10,
            )?),
            data_protection: DataProtection::from_env()?,
        })
    }
}

/// `MFA_LOGIN_REQUESTS_RETENTION_MS`: a positive number of milliseconds. Not -1 as the event
/// topics may have: raw requests kept forever are what this setting exists to prevent.
fn login_requests_retention(raw: Option<String>) -> Result<std::time::Duration, ConfigError> {
    const NAME: &str = "MFA_LOGIN_REQUESTS_RETENTION_MS";
    let default = KafkaConfig::DEFAULT_LOGIN_REQUESTS_RETENTION;
    match raw {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(std::time::Duration::from_millis(ms)),
            _ => Err(ConfigError::Invalid {
                name: NAME.into(),
                reason: format!(
                    "{raw:?} is not a positive number of milliseconds (raw login requests are \
                     never kept forever)"
                ),
            }),
        },
    }
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    /// Prefix of every topic and consumer group name.
    pub namespace: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// `retention.ms` of the event topics; -1 keeps the event log forever.
    pub retention_ms: i64,
    /// How long the broker keeps the raw login requests that client backends publish
    /// (`MFA_LOGIN_REQUESTS_RETENTION_MS`, default 7 days; never forever).
    pub login_requests_retention: std::time::Duration,
    /// How long the broker may hold a fetch when no data waits. Every hop of the login path
    /// costs about this much, so it is a few milliseconds, not librdkafka's 500.
    pub fetch_wait_ms: u32,
}

impl KafkaConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            brokers: Env::required("MFA_KAFKA_BROKERS")?,
            namespace: Env::or("MFA_TOPIC_NAMESPACE", "mfa".to_owned())?,
            partitions: Env::or("MFA_TOPIC_PARTITIONS", 3)?,
            replication_factor: Env::or("MFA_TOPIC_REPLICATION_FACTOR", 1)?,
            retention_ms: Env::or("MFA_TOPIC_RETENTION_MS", -1)?,
            login_requests_retention: login_requests_retention(Env::raw(
                "MFA_LOGIN_REQUESTS_RETENTION_MS",
            ))?,
            fetch_wait_ms: Env::or("MFA_KAFKA_FETCH_WAIT_MS", 5)?,
        })
    }

    /// Why a week: a login request carries the user's address and user agent in the clear
    /// (no password: passwords never travel over Kafka), and unlike the events it is not
    /// sealed under the user's data key, so erasing the user does not reach it: only its
    /// retention does. login-intake reads a request within moments and the `LoginAttempted`
    /// it makes is the lasting record, so the topic need only outlive an outage of
    /// login-intake with time to notice and mend it (a long weekend unattended), not the
    /// event log's years.
    pub const DEFAULT_LOGIN_REQUESTS_RETENTION: std::time::Duration =
        std::time::Duration::from_secs(7 * 24 * 3600);

    pub fn topics(&self) -> shared::topics::Topics {
        shared::topics::Topics::new(&self.namespace)
    }

    /// The consumer group of `service` in this namespace.
    pub fn group_id(&self, service: &str) -> String {
        format!("{}.{service}", self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_requests_are_kept_a_week_unless_told_a_positive_time() {
        assert_eq!(
            login_requests_retention(None).unwrap(),
            std::time::Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(
            login_requests_retention(Some(" 3600000 ".into())).unwrap(),
            std::time::Duration::from_secs(3600)
        );
        for never_forever in ["-1", "0", "forever", "1.5"] {
            let error = login_requests_retention(Some(never_forever.into())).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("MFA_LOGIN_REQUESTS_RETENTION_MS"),
                "{error}"
            );
        }
    }
}
