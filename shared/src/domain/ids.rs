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
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
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
}
