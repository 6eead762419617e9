use std::time::Duration;

use shared::config::{ConfigError, Env, InfraConfig};

use crate::rules::{CodeCaps, Policy};

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: InfraConfig,
    pub policy: Policy,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            infra: InfraConfig::from_env()?,
            policy: Policy {
                failed_attempts_threshold: Env::or("MFA_FAILED_ATTEMPTS_THRESHOLD", 5)?,
                failed_attempts_window: Duration::from_secs(Env::or(
                    "MFA_FAILED_ATTEMPTS_WINDOW_SECS",
                    15 * 60,
                )?),
                code_ttl: Duration::from_secs(Env::or("MFA_CODE_TTL_SECS", 10 * 60)?),
                code_caps: CodeCaps {
                    emails_per_hour: Env::or("MFA_CODE_EMAILS_PER_HOUR", 5)?,
                    min_gap: Duration::from_secs(Env::or("MFA_CODE_EMAIL_MIN_GAP_SECS", 30)?),
                    failed_codes_per_day: Env::or("MFA_FAILED_CODES_PER_DAY", 100)?,
                },
            },
        })
    }
}
