//! Domain types, parsed once at the boundary (HTTP bodies, Kafka requests) so that code past
//! the boundary can't hold an invalid value. Each `parse` is the only way in.

mod client;
mod email;
mod ids;
mod login;
mod otp;

pub use client::{DeviceId, UserAgent};
pub use email::Email;
pub use ids::{AttemptId, ChallengeId, CompanyId, UserId};
pub use login::{AuthMethod, FirstFactors, Platform, PrimaryFactor};
pub use otp::OtpCode;

/// Why a value was refused at the boundary; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
