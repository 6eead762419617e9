//! Settings from the environment (`MFA_LOGIN_PAGE_*`); a bad one stops the page at start-up
//! with the variable's name.

use std::net::SocketAddr;
use std::time::Duration;

use mfa_runtime::config::{ConfigError, Env};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::platform::Platform;

/// The shortest CSRF secret accepted: an HMAC key shorter than its hash's 32 bytes is weaker
/// than the hash.
pub const MIN_CSRF_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct Config {
    /// `MFA_LOGIN_PAGE_ADDR`; port 0 picks a free one (tests).
    pub addr: SocketAddr,
    /// `MFA_LOGIN_PAGE_INTAKE_URL`: login-intake's base URL.
    pub intake_url: Url,
    /// `MFA_LOGIN_PAGE_VERIFIER_URL`: the verifier's base URL.
    pub verifier_url: Url,
    /// `MFA_LOGIN_PAGE_API_KEY`: the client API key the page logs users in with; it never
    /// leaves the server.
    pub api_key: SecretString,
    /// `MFA_LOGIN_PAGE_PLATFORM`: what users sign in to, as the API names it.
    pub platform: Platform,
    /// `MFA_LOGIN_PAGE_COMPANY_NAME`: shown in the page's heading, when set.
    pub company_name: Option<String>,
    /// `MFA_LOGIN_PAGE_RETURN_URL`: where a signed-in user is sent, with `attempt_id` added
    /// to its query, for the client application to confirm with `GET /v1/logins/{id}`.
    pub return_url: Url,
    /// `MFA_LOGIN_PAGE_CSRF_SECRET`: the key of the forms' CSRF tokens.
    pub csrf_secret: SecretString,
    /// `MFA_LOGIN_PAGE_TRUSTED_PROXIES`: how many reverse proxies stand in front of the page,
    /// each appending to `X-Forwarded-For`; the user's address is read past them
    /// (`domain::browser::client_ip`). 0 (the default): the connection's own address.
    pub trusted_proxies: usize,
    /// `MFA_LOGIN_PAGE_API_TIMEOUT_SECS`: the longest a call to either API may take; above
    /// login-intake's decision wait, so a slow decision is answered `pending`, not cut off.
    pub api_timeout: Duration,
    /// `MFA_LOGIN_PAGE_DECISION_POLL_SECS`: how long a `pending` login is polled for before
    /// the user is asked to try again.
    pub decision_poll: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let csrf_secret = Env::secret("MFA_LOGIN_PAGE_CSRF_SECRET")?;
        if csrf_secret.expose_secret().len() < MIN_CSRF_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "MFA_LOGIN_PAGE_CSRF_SECRET".into(),
                reason: format!("must be at least {MIN_CSRF_SECRET_BYTES} bytes"),
            });
        }
        Ok(Self {
            addr: Env::or(
                "MFA_LOGIN_PAGE_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8082)),
            )?,
            intake_url: url_or("MFA_LOGIN_PAGE_INTAKE_URL", "http://127.0.0.1:8080")?,
            verifier_url: url_or("MFA_LOGIN_PAGE_VERIFIER_URL", "http://127.0.0.1:8081")?,
            api_key: Env::secret("MFA_LOGIN_PAGE_API_KEY")?,
            platform: platform_or("MFA_LOGIN_PAGE_PLATFORM", Platform::Dashboard)?,
            company_name: Env::optional("MFA_LOGIN_PAGE_COMPANY_NAME"),
            return_url: Env::required("MFA_LOGIN_PAGE_RETURN_URL")?,
            csrf_secret,
            trusted_proxies: Env::or("MFA_LOGIN_PAGE_TRUSTED_PROXIES", 0)?,
            api_timeout: Duration::from_secs(Env::or("MFA_LOGIN_PAGE_API_TIMEOUT_SECS", 15)?),
            decision_poll: Duration::from_secs(Env::or("MFA_LOGIN_PAGE_DECISION_POLL_SECS", 5)?),
        })
    }
}

/// A platform setting by its API name, or its default when unset (the contract's `Platform`
/// has `parse`, not the `FromStr` that `Env::or` takes).
fn platform_or(name: &str, default: Platform) -> Result<Platform, ConfigError> {
    match Env::optional(name) {
        None => Ok(default),
        Some(raw) => Platform::parse(raw.trim()).ok_or_else(|| ConfigError::Invalid {
            name: name.into(),
            reason: "not a platform (one of dashboard, workspace, ios, android)".into(),
        }),
    }
}

/// A URL setting, or its default when unset.
fn url_or(name: &str, default: &str) -> Result<Url, ConfigError> {
    let raw = Env::optional(name).unwrap_or_else(|| default.to_owned());
    raw.trim().parse().map_err(
        |error: <Url as std::str::FromStr>::Err| ConfigError::Invalid {
            name: name.into(),
            reason: error.to_string(),
        },
    )
}

/// The longest `User-Agent` login-intake accepts.
pub const MAX_USER_AGENT_BYTES: usize = 1024;
