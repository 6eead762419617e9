//! Domain types, parsed once at the boundary (HTTP bodies, Kafka requests) so that code past
//! the boundary can't hold an invalid value. Each `parse` is the only way in.

mod client;
mod email;
mod ids;
mod locale;
mod login;
mod otp;

pub use client::{DeviceId, UserAgent};
pub use email::Email;
pub use ids::{AttemptId, ChallengeId, CompanyId, UserId};
pub use locale::Locale;
pub use login::{AuthMethod, FirstFactors, Platform, PrimaryFactor};
pub use otp::OtpCode;

/// Why a value was refused at the boundary: a stable machine-readable code and a message
/// that is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    code: &'static str,
    message: String,
}

impl ParseError {
    /// A refusal with the generic code, `invalid_request`.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self::with_code("invalid_request", message)
    }

    pub(crate) fn with_code(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// e.g. `invalid_request`, `email_mixed_script`, `email_confusable_domain`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}
