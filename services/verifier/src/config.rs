use std::net::SocketAddr;

use mfa_runtime::config::{ConfigError, Env, InfraConfig};
use secrecy::SecretString;
use shared::audit::AuditSigner;

use crate::judge::CodeLimits;

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: InfraConfig,
    /// `MFA_VERIFIER_ADDR`; port 0 picks a free one (tests).
    pub addr: SocketAddr,
    pub code_hmac_secret: SecretString,
    /// The secret before the last rotation, accepted until the codes it hashed expired.
    pub code_hmac_previous_secret: Option<SecretString>,
    pub code_limits: CodeLimits,
    /// `MFA_AUDIT_SIGNING_KEY`: signs the checkpoints of the service's audit chain.
    pub audit_signer: AuditSigner,
    /// `MFA_METRICS_ADDR`: a listener of its own for `GET /metrics`; None (unset) answers it
    /// on the API address.
    pub metrics_addr: Option<SocketAddr>,
    /// `MFA_FEEDBACK_LINK_SECRET`: checks the notification emails' links (the code worker's
    /// must be the same); unset: derived from `MFA_CODE_HMAC_SECRET`, as the code worker does.
    pub feedback_link_secret: Option<SecretString>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            infra: InfraConfig::from_env()?,
            addr: Env::or(
                "MFA_VERIFIER_ADDR",
                std::net::SocketAddr::from(([127, 0, 0, 1], 8081)),
            )?,
            code_hmac_secret: Env::secret("MFA_CODE_HMAC_SECRET")?,
            code_hmac_previous_secret: Env::optional_secret("MFA_CODE_HMAC_PREVIOUS_SECRET"),
            audit_signer: mfa_store::audit_chain::signer_from_env(crate::verify::PRODUCER)?,
            code_limits: CodeLimits {
                per_challenge: Env::or("MFA_CODE_MAX_ATTEMPTS", 5)?,
                per_account_per_day: Env::or("MFA_FAILED_CODES_PER_DAY", 100)?,
            },
            metrics_addr: Env::optional("MFA_METRICS_ADDR")
                .map(|_| Env::required("MFA_METRICS_ADDR"))
                .transpose()?,
            feedback_link_secret: Env::optional_secret("MFA_FEEDBACK_LINK_SECRET"),
        })
    }
}
