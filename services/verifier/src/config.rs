use std::net::SocketAddr;

use secrecy::SecretString;
use shared::config::{ConfigError, Env, InfraConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: InfraConfig,
    /// `MFA_VERIFIER_ADDR`; port 0 picks a free one (tests).
    pub addr: SocketAddr,
    pub code_hmac_secret: SecretString,
    /// The secret before the last rotation, accepted until the codes it hashed expired.
    pub code_hmac_previous_secret: Option<SecretString>,
    /// Wrong codes a challenge takes; the last one locks it.
    pub max_attempts: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            infra: InfraConfig::from_env()?,
            addr: Env::or(
                "MFA_VERIFIER_ADDR",
                "127.0.0.1:8081".parse().expect("valid"),
            )?,
            code_hmac_secret: Env::secret("MFA_CODE_HMAC_SECRET")?,
            code_hmac_previous_secret: Env::optional_secret("MFA_CODE_HMAC_PREVIOUS_SECRET"),
            max_attempts: Env::or("MFA_CODE_MAX_ATTEMPTS", 5)?,
        })
    }
}
