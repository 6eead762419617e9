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
    /// What `parse` accepts, as a regular expression: API documents state it as the field's
    /// `pattern` (a test checks that the two agree).
    pub const PATTERN: &'static str = r"^[A-Za-z0-9._:-]{1,128}$";

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

    /// The documents' pattern is the parser's: the event schema states the same one.
    #[test]
    fn device_id_pattern_is_the_documented_one() {
        let schema = serde_json::to_value(schemars::schema_for!(DeviceId)).unwrap();
        assert_eq!(schema["pattern"], DeviceId::PATTERN);
    }

    /// A pattern without its `^...$`, as proptest's generator takes it.
    fn unanchored(pattern: &str) -> &str {
        pattern.trim_start_matches('^').trim_end_matches('$')
    }

    use proptest::prelude::*;

    fn is_device_id_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
    }

    /// Any character `DeviceId` refuses: ASCII punctuation, space, control or non-ASCII.
    fn forbidden_device_id_char() -> impl Strategy<Value = char> {
        any::<char>().prop_filter("must be outside the charset", |c| !is_device_id_char(*c))
    }

    /// Control characters (`char::is_control`: C0, DEL and C1).
    fn control_char() -> impl Strategy<Value = char> {
        prop_oneof![
            proptest::char::range('\u{0}', '\u{1f}'),
            proptest::char::range('\u{7f}', '\u{9f}'),
        ]
    }

    proptest! {
        #[test]
        fn device_id_parse_never_panics(raw in any::<String>()) {
            if let Ok(id) = DeviceId::parse(&raw) {
                prop_assert_eq!(id.as_str(), raw.as_str());
                prop_assert!((1..=DeviceId::MAX_LEN).contains(&raw.len()));
                prop_assert!(raw.chars().all(is_device_id_char));
            }
        }

        #[test]
        fn device_id_accepts_its_documented_charset(raw in "[A-Za-z0-9._:-]{1,128}") {
            let id = DeviceId::parse(&raw).unwrap();
            prop_assert_eq!(id.as_str(), raw.as_str());
            prop_assert_eq!(DeviceId::parse(id.as_str()), Ok(id.clone()));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<DeviceId>(&json).unwrap(), id);
        }

        #[test]
        fn device_id_refuses_any_other_char(
            before in "[A-Za-z0-9._:-]{0,60}",
            bad in forbidden_device_id_char(),
            after in "[A-Za-z0-9._:-]{0,60}",
        ) {
            let raw = format!("{before}{bad}{after}");
            prop_assert!(DeviceId::parse(&raw).is_err(), "{:?} should be refused", raw);
        }

        #[test]
        fn device_id_accepts_what_its_pattern_matches(
            raw in proptest::string::string_regex(unanchored(DeviceId::PATTERN)).unwrap(),
        ) {
            prop_assert!(DeviceId::parse(&raw).is_ok(), "{:?} matches the pattern", raw);
        }

        #[test]
        fn device_id_refuses_more_than_128_chars(raw in "[A-Za-z0-9._:-]{129,300}") {
            prop_assert!(DeviceId::parse(&raw).is_err());
        }

        #[test]
        fn user_agent_parse_never_panics(raw in any::<String>()) {
            if let Ok(agent) = UserAgent::parse(&raw) {
                let s = agent.as_str();
                prop_assert_eq!(s, raw.trim());
                prop_assert!(!s.is_empty() && s.len() <= UserAgent::MAX_LEN);
                prop_assert!(!s.chars().any(char::is_control));
                prop_assert_eq!(UserAgent::parse(s), Ok(agent.clone()));
            }
        }

        #[test]
        fn user_agent_accepts_printable_text(raw in "[!-~][ -~]{0,1022}[!-~]|[^\\p{Cc}\\s]{1,100}") {
            prop_assume!(raw.len() <= UserAgent::MAX_LEN);
            let agent = UserAgent::parse(&raw).unwrap();
            prop_assert_eq!(agent.as_str(), raw.as_str());
            prop_assert_eq!(UserAgent::parse(&format!(" {raw}\t")), Ok(agent));
        }

        #[test]
        fn user_agent_refuses_control_chars(
            before in "[ -~]{0,50}",
            control in control_char(),
            after in "[ -~]{0,50}",
        ) {
            // Printable on both sides, so trimming can't drop the control char.
            let raw = format!("x{before}{control}{after}x");
            prop_assert!(UserAgent::parse(&raw).is_err(), "{:?} should be refused", raw);
        }

        #[test]
        fn user_agent_refuses_more_than_1024_bytes(raw in "[!-~]{1025,1500}|[!-~]{1,10}[é€😀]{520,600}") {
            prop_assert!(raw.len() > UserAgent::MAX_LEN);
            prop_assert!(UserAgent::parse(&raw).is_err());
        }
    }
}
