use std::fmt;

use uuid::Uuid;

use super::ParseError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| ParseError::new(concat!(stringify!($name), " is not a UUID")))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// One login attempt: the correlation id of every event of its flow.
    AttemptId
);
uuid_id!(
    /// One MFA challenge (one emailed code). Unguessable: only the client that started the
    /// login learns it.
    ChallengeId
);
uuid_id!(
    /// An account.
    UserId
);

impl AttemptId {
    /// Time-ordered, so attempts sort by creation in indexes and logs.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for AttemptId {
    fn default() -> Self {
        Self::new()
    }
}

impl ChallengeId {
    /// Random (v4, from the OS generator): a challenge id must not be predictable from another.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

/// A company (tenant) slug: lower-case letters, digits, `-` and `_`, 1 to 64 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct CompanyId(#[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"))] String);

impl CompanyId {
    pub const MAX_LEN: usize = 64;
    /// What `parse` accepts, as a regular expression: API documents state it as the field's
    /// `pattern` (a test checks that the two agree).
    pub const PATTERN: &'static str = r"^[a-z0-9][a-z0-9_-]{0,63}$";

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && !raw.starts_with(['-', '_']);
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError::new(
                "company_id must be 1-64 lower-case letters, digits, '-' or '_'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CompanyId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CompanyId> for String {
    fn from(value: CompanyId) -> Self {
        value.0
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_ids_are_slugs() {
        assert!(CompanyId::parse("acme-corp_2").is_ok());
        for raw in ["", "Acme", "acme corp", "-acme", &"a".repeat(65)] {
            assert!(CompanyId::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    /// The documents' pattern is the parser's: the event schema states the same one.
    #[test]
    fn company_id_pattern_is_the_documented_one() {
        let schema = serde_json::to_value(schemars::schema_for!(CompanyId)).unwrap();
        assert_eq!(schema["pattern"], CompanyId::PATTERN);
    }

    use proptest::prelude::*;

    fn is_slug_char(c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
    }

    proptest! {
        #[test]
        fn uuid_ids_parse_never_panics(raw in prop_oneof![
            any::<String>(),
            "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
            "[{]?(urn:uuid:)?[0-9a-fA-Fg-]{30,40}[}]?",
        ]) {
            // Exactly the strings the uuid crate reads, as the same UUID.
            let expected = Uuid::parse_str(&raw).ok();
            prop_assert_eq!(AttemptId::parse(&raw).ok().map(|id| id.as_uuid()), expected);
            prop_assert_eq!(ChallengeId::parse(&raw).ok().map(|id| id.as_uuid()), expected);
            prop_assert_eq!(UserId::parse(&raw).ok().map(|id| id.as_uuid()), expected);
        }

        #[test]
        fn uuid_ids_round_trip_through_text(bytes in any::<[u8; 16]>()) {
            let uuid = Uuid::from_bytes(bytes);
            let attempt = AttemptId::from_uuid(uuid);
            prop_assert_eq!(AttemptId::parse(&attempt.to_string()), Ok(attempt));
            let challenge = ChallengeId::from_uuid(uuid);
            prop_assert_eq!(ChallengeId::parse(&challenge.to_string()), Ok(challenge));
            let user = UserId::from_uuid(uuid);
            prop_assert_eq!(UserId::parse(&user.to_string()), Ok(user));
            // Upper-case and un-hyphenated spellings name the same id.
            prop_assert_eq!(UserId::parse(&uuid.simple().to_string().to_uppercase()), Ok(user));
            let json = serde_json::to_string(&user).unwrap();
            prop_assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), user);
        }

        #[test]
        fn company_id_parse_never_panics(raw in any::<String>()) {
            if let Ok(company) = CompanyId::parse(&raw) {
                prop_assert_eq!(company.as_str(), raw.as_str());
                prop_assert!((1..=64).contains(&raw.len()));
                prop_assert!(raw.chars().all(is_slug_char));
                prop_assert!(!raw.starts_with(['-', '_']));
            }
        }

        #[test]
        fn company_id_accepts_slugs(
            raw in proptest::string::string_regex(
                CompanyId::PATTERN.trim_start_matches('^').trim_end_matches('$'),
            ).unwrap(),
        ) {
            let company = CompanyId::parse(&raw).unwrap();
            prop_assert_eq!(company.as_str(), raw.as_str());
            prop_assert_eq!(CompanyId::parse(company.as_str()), Ok(company.clone()));
            let json = serde_json::to_string(&company).unwrap();
            prop_assert_eq!(serde_json::from_str::<CompanyId>(&json).unwrap(), company);
        }

        #[test]
        fn company_id_refuses_non_slugs(
            start in "[a-z0-9]",
            before in "[a-z0-9_-]{0,30}",
            bad in any::<char>().prop_filter("outside the charset", |c| !is_slug_char(*c)),
            after in "[a-z0-9_-]{0,30}",
            long in "[a-z0-9][a-z0-9_-]{64,100}",
            lead in "[-_][a-z0-9_-]{0,63}",
        ) {
            let raw = format!("{start}{before}{bad}{after}");
            prop_assert!(CompanyId::parse(&raw).is_err(), "{:?} should be refused", raw);
            prop_assert!(CompanyId::parse(&long).is_err(), "{:?} is too long", long);
            prop_assert!(CompanyId::parse(&lead).is_err(), "{:?} starts with {:?}", lead, &lead[..1]);
        }
    }
}
