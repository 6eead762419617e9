use std::time::Duration;

use shared::config::{ConfigError, Env, InfraConfig};

use crate::rules::Policy;

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
            },
        })
    }
}
