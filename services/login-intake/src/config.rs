use std::net::SocketAddr;
use std::time::Duration;

use mfa_runtime::config::{ConfigError, Env, InfraConfig};
use secrecy::SecretString;
use shared::audit::AuditSigner;

use crate::rate_limit::RateLimits;

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: InfraConfig,
    /// `MFA_INTAKE_ADDR`; port 0 picks a free one (tests).
    pub addr: SocketAddr,
    pub admin_api_key: SecretString,
    /// `MFA_AUDIT_SIGNING_KEY`: signs the checkpoints of the service's audit chain.
    pub audit_signer: AuditSigner,
    /// How long `POST /v1/logins` waits for the decision before answering `pending`.
    pub decision_wait: Duration,
    /// How long a request may take before it is accepted (the login and its event
    /// committed): past it, a hanging database gets `503 dependency_timeout`.
    pub dependency_deadline: Duration,
    /// argon2 threads; defaults to the number of cores.
    pub argon2_threads: usize,
    /// Password checks allowed to queue for a thread; one more is refused with 503.
    pub argon2_queue: usize,
    pub rate_limits: RateLimits,
    /// `MFA_METRICS_ADDR`: a listener of its own for `GET /metrics`; None (unset) answers it
    /// on the API address.
    pub metrics_addr: Option<SocketAddr>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            infra: InfraConfig::from_env()?,
            addr: Env::or(
                "MFA_INTAKE_ADDR",
                std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            )?,
            admin_api_key: Env::secret("MFA_ADMIN_API_KEY")?,
            audit_signer: mfa_store::audit_chain::signer_from_env(crate::intake::PRODUCER)?,
            decision_wait: Duration::from_millis(Env::or("MFA_DECISION_WAIT_MS", 3000)?),
            dependency_deadline: Duration::from_millis(Env::or(
                "MFA_DEPENDENCY_DEADLINE_MS",
                1500,
            )?),
            argon2_threads: Env::or("MFA_ARGON2_THREADS", cores)?,
            argon2_queue: Env::or("MFA_ARGON2_QUEUE", 64)?,
            rate_limits: {
                let defaults = RateLimits::default();
                RateLimits {
                    per_ip: Env::or("MFA_RATE_LIMIT_PER_IP", defaults.per_ip)?,
                    per_account_and_ip: Env::or(
                        "MFA_RATE_LIMIT_PER_ACCOUNT_AND_IP",
                        defaults.per_account_and_ip,
                    )?,
                    per_account: Env::or("MFA_RATE_LIMIT_PER_ACCOUNT", defaults.per_account)?,
                    per_api_key: Env::or("MFA_RATE_LIMIT_PER_API_KEY", defaults.per_api_key)?,
                }
            },
            metrics_addr: Env::optional("MFA_METRICS_ADDR")
                .map(|_| Env::required("MFA_METRICS_ADDR"))
                .transpose()?,
        })
    }
}
