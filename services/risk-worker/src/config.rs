//! The risk worker's settings. `ModelConfig` is all `replay` needs (no database, no broker),
//! so an offline replay decides with exactly the live worker's model settings.

use std::net::SocketAddr;
use std::time::Duration;

use mfa_runtime::config::{ConfigError, Env, InfraConfig};
use shared::audit::AuditSigner;

use crate::model::assess::{DenylistAction, ModelKind, RiskPolicy};
use crate::model::denylist::Denylist;
use crate::rules::{CodeCaps, Policy};
pub use mfa_geoip::GeoIpConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: InfraConfig,
    pub model: ModelConfig,
    /// `MFA_AUDIT_SIGNING_KEY`: signs the checkpoints of the service's audit chain.
    pub audit_signer: AuditSigner,
    /// Where `GET /metrics` is answered (`MFA_METRICS_ADDR`): the worker has no other port.
    pub metrics_addr: SocketAddr,
}

/// The default metrics address, next to the code worker's (9182).
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9181);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            infra: InfraConfig::from_env()?,
            model: ModelConfig::from_env()?,
            audit_signer: mfa_store::audit_chain::signer_from_env(crate::consumer::PRODUCER)?,
            metrics_addr: Env::or("MFA_METRICS_ADDR", DEFAULT_METRICS_ADDR)?,
        })
    }
}

/// The model's policy and where its GeoIP databases are.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub policy: Policy,
    pub geoip: GeoIpConfig,
}

fn secs(name: &str, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(Env::or(name, default)?))
}

impl ModelConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = RiskPolicy::default();
        let invalid = |name: &str, reason: String| ConfigError::Invalid {
            name: name.into(),
            reason,
        };
        let model = match Env::optional("MFA_RISK_MODEL") {
            None => defaults.model,
            Some(name) => ModelKind::parse(&name).ok_or_else(|| {
                invalid("MFA_RISK_MODEL", "expected full or freeman-plain".into())
            })?,
        };
        let (challenge_medium, challenge_high) = match Env::optional("MFA_RISK_CHALLENGE_LEVELS") {
            None => (defaults.challenge_medium, defaults.challenge_high),
            Some(list) => {
                let levels: Vec<&str> = list.split(',').map(str::trim).collect();
                if let Some(bad) = levels.iter().find(|l| !matches!(**l, "medium" | "high")) {
                    return Err(invalid(
                        "MFA_RISK_CHALLENGE_LEVELS",
                        format!("{bad:?} is not medium or high"),
                    ));
                }
                (levels.contains(&"medium"), levels.contains(&"high"))
            }
        };
        let denylist = match Env::optional("MFA_DENYLIST_FILE") {
            None => Denylist::default(),
            Some(path) => Denylist::load(path.as_ref())
                .map_err(|e| invalid("MFA_DENYLIST_FILE", e.to_string()))?,
        };
        let denylist_action = match Env::optional("MFA_DENYLIST_ACTION").as_deref() {
            None | Some("challenge") => DenylistAction::Challenge,
            Some("reject") => DenylistAction::Reject,
            Some(other) => {
                return Err(invalid(
                    "MFA_DENYLIST_ACTION",
                    format!("{other:?} is not challenge or reject"),
                ))
            }
        };
        let risk = RiskPolicy {
            model,
            medium_threshold: Env::or("MFA_RISK_MEDIUM_THRESHOLD", defaults.medium_threshold)?,
            high_threshold: Env::or("MFA_RISK_HIGH_THRESHOLD", defaults.high_threshold)?,
            privileged_offset: Env::or("MFA_RISK_PRIVILEGED_OFFSET", defaults.privileged_offset)?,
            challenge_medium,
            challenge_high,
            history_window: Duration::from_secs(
                Env::or("MFA_RISK_HISTORY_DAYS", 180u64)? * 24 * 3600,
            ),
            max_travel_speed_kmh: Env::or(
                "MFA_MAX_TRAVEL_SPEED_KMH",
                defaults.max_travel_speed_kmh,
            )?,
            account_failures_threshold: Env::or(
                "MFA_FAILED_ATTEMPTS_THRESHOLD",
                defaults.account_failures_threshold,
            )?,
            account_failures_window: secs("MFA_FAILED_ATTEMPTS_WINDOW_SECS", 15 * 60)?,
            ip_failures_threshold: Env::or(
                "MFA_IP_FAILURES_THRESHOLD",
                defaults.ip_failures_threshold,
            )?,
            ip_failed_accounts_threshold: Env::or(
                "MFA_IP_FAILED_ACCOUNTS_THRESHOLD",
                defaults.ip_failed_accounts_threshold,
            )?,
            ip_window: secs("MFA_IP_FAILURES_WINDOW_SECS", 3600)?,
            denylist,
            denylist_action,
            ..defaults
        };
        Ok(Self {
            policy: Policy {
                risk,
                code_ttl: secs("MFA_CODE_TTL_SECS", 10 * 60)?,
                code_caps: CodeCaps {
                    emails_per_hour: Env::or("MFA_CODE_EMAILS_PER_HOUR", 5)?,
                    min_gap: secs("MFA_CODE_EMAIL_MIN_GAP_SECS", 30)?,
                    failed_codes_per_day: Env::or("MFA_FAILED_CODES_PER_DAY", 100)?,
                },
            },
            geoip: GeoIpConfig::from_env()?,
        })
    }
}
