use std::fmt;

use super::ParseError;

/// The opaque id a client keeps per browser or app install: 1-128 characters of
/// `A-Z a-z 0-9 . _ : -`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(#[schemars(regex(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))] String);

impl DeviceId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError::new(
                "device_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeviceId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DeviceId> for String {
    fn from(value: DeviceId) -> Self {
        value.0
    }
}

/// The end user's User-Agent header as the client backend saw it: printable, at most 1024
/// characters (real ones are far shorter; longer ones are abuse).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct UserAgent(String);

impl UserAgent {
    pub const MAX_LEN: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ParseError::new("user_agent is empty"));
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(ParseError::new("user_agent is longer than 1024 bytes"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ParseError::new("user_agent contains control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserAgent {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserAgent> for String {
    fn from(value: UserAgent) -> Self {
        value.0
    }
}

impl fmt::Display for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_capped() {
        assert!(DeviceId::parse("web:3f2a-91.x_y").is_ok());
        for raw in ["", "has space", "semi;colon", &"a".repeat(129)] {
            assert!(DeviceId::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    #[test]
    fn user_agents_are_capped() {
        assert!(UserAgent::parse("Mozilla/5.0 (X11; Linux x86_64)").is_ok());
        for raw in ["", "   ", "bad\nline", &"a".repeat(1025)] {
            assert!(UserAgent::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }
}
