use std::net::SocketAddr;
use std::time::Duration;

use lettre::message::Mailbox;
use mfa_runtime::config::{ConfigError, Env, InfraConfig};
use secrecy::SecretString;
use shared::audit::AuditSigner;

use crate::sender::RetryPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (a local relay, or the test server).
    None,
    /// STARTTLS upgrade, required.
    StartTls,
    /// Implicit TLS (usually port 465).
    Tls,
}

impl std::str::FromStr for SmtpTls {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            other => Err(format!("{other:?} is not one of none, starttls, tls")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: Mailbox,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: InfraConfig,
    pub smtp: SmtpConfig,
    pub code_hmac_secret: SecretString,
    /// `MFA_AUDIT_SIGNING_KEY`: signs the checkpoints of the service's audit chain.
    pub audit_signer: AuditSigner,
    pub email_retry: RetryPolicy,
    /// Where `GET /metrics` is answered (`MFA_METRICS_ADDR`): the worker has no other port.
    pub metrics_addr: SocketAddr,
    /// The "someone has your password" notifications' links (`crate::notices`).
    pub feedback_links: FeedbackLinkConfig,
    /// The GeoIP data the notifications name the login's place from (the risk worker's).
    pub geoip: mfa_geoip::GeoIpConfig,
}

/// The links of the notification emails.
#[derive(Debug, Clone)]
pub struct FeedbackLinkConfig {
    /// `MFA_FEEDBACK_LINK_SECRET` (at least 32 bytes; the verifier needs the same); unset:
    /// derived from `MFA_CODE_HMAC_SECRET` (`LinkSigner::derived_from`).
    pub secret: Option<SecretString>,
    /// `MFA_FEEDBACK_LINK_BASE_URL`: the verifier as the user's browser reaches it.
    pub base_url: String,
    /// `MFA_FEEDBACK_LINK_TTL_SECS`: how long the links work (7 days).
    pub ttl: Duration,
}

/// The default metrics address, next to the risk worker's (9181).
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9182);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            infra: InfraConfig::from_env()?,
            code_hmac_secret: Env::secret("MFA_CODE_HMAC_SECRET")?,
            audit_signer: mfa_store::audit_chain::signer_from_env(crate::consumer::PRODUCER)?,
            smtp: SmtpConfig {
                host: Env::required("MFA_SMTP_HOST")?,
                port: Env::or("MFA_SMTP_PORT", 25)?,
                tls: Env::or("MFA_SMTP_TLS", SmtpTls::None)?,
                username: Env::optional("MFA_SMTP_USERNAME"),
                password: Env::optional_secret("MFA_SMTP_PASSWORD"),
                from: Env::or("MFA_SMTP_FROM", default_sender())?,
                timeout: Duration::from_secs(Env::or("MFA_SMTP_TIMEOUT_SECS", 10)?),
            },
            email_retry: {
                let defaults = RetryPolicy::default();
                RetryPolicy {
                    retry_window: Duration::from_secs(Env::or(
                        "MFA_EMAIL_RETRY_WINDOW_SECS",
                        defaults.retry_window.as_secs(),
                    )?),
                    ..defaults
                }
            },
            metrics_addr: Env::or("MFA_METRICS_ADDR", DEFAULT_METRICS_ADDR)?,
            feedback_links: FeedbackLinkConfig {
                secret: Env::optional_secret("MFA_FEEDBACK_LINK_SECRET"),
                base_url: Env::or(
                    "MFA_FEEDBACK_LINK_BASE_URL",
                    "http://127.0.0.1:8081".to_owned(),
                )?,
                ttl: Duration::from_secs(Env::or("MFA_FEEDBACK_LINK_TTL_SECS", 7 * 24 * 3600)?),
            },
            // The city files only: the email names a place, never a network.
            geoip: mfa_geoip::GeoIpConfig {
                asn: Vec::new(),
                ..mfa_geoip::GeoIpConfig::from_env()?
            },
        })
    }
}

#[expect(
    clippy::expect_used,
    reason = "a constant address that lettre accepts (every start of the service parses it)"
)]
fn default_sender() -> lettre::message::Mailbox {
    "Adaptive MFA <no-reply@adaptive-mfa.localhost>"
        .parse()
        .expect("valid mailbox")
}
