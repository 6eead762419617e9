use std::fmt;

use super::ParseError;

/// A syntactically valid email address, normalised (trimmed, lower-cased) so that one address
/// always maps to one account.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(ParseError::new("email is empty"));
        }
        if normalised.len() > MAX_LEN {
            return Err(ParseError::new("email is longer than 254 characters"));
        }
        let (local, domain) = normalised
            .rsplit_once('@')
            .ok_or_else(|| ParseError::new("email has no '@'"))?;
        let local_ok = !local.is_empty()
            && local.len() <= MAX_LOCAL_LEN
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if !local_ok {
            return Err(ParseError::new("email has an invalid local part"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(ParseError::new("email has an invalid domain"));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Alice.Smith@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "alice.smith@example.com");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for raw in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a lice@example.com",
            "alice@exa mple.com",
            ".alice@example.com",
            "al..ice@example.com",
            "alice@-example.com",
            "alice@example..com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
        let too_long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&too_long).is_err());
    }

    use proptest::prelude::*;

    /// Address-like strings: mostly near-valid, with the cases the rules hinge on (upper
    /// case, non-ASCII letters, dots, hyphens, padding, long parts).
    fn address_like() -> impl Strategy<Value = String> {
        (
            "[ \t]{0,2}",
            "[A-Za-z0-9._%+!#'=~-]{0,70}|[a-zÄÖüßΣσİ.]{1,10}",
            "[A-Za-z0-9-]{0,70}(\\.[A-Za-z0-9ÄöΣ-]{0,10}){0,4}",
            "[ \t]{0,2}",
        )
            .prop_map(|(pad, local, domain, end)| format!("{pad}{local}@{domain}{end}"))
    }

    /// Every rule `parse` promises about an accepted address.
    fn assert_well_formed(email: &Email) {
        let s = email.as_str();
        assert!(s.len() <= MAX_LEN, "{s:?} is longer than {MAX_LEN} bytes");
        assert_eq!(s, s.to_lowercase(), "not lower-case");
        assert_eq!(s, s.trim(), "not trimmed");
        assert_eq!(s.matches('@').count(), 1, "{s:?} has not exactly one '@'");
        let (local, domain) = s.split_once('@').unwrap();
        assert!(
            !local.is_empty() && local.len() <= MAX_LOCAL_LEN,
            "{local:?}"
        );
        assert!(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."));
        assert!(local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)));
        let labels: Vec<&str> = domain.split('.').collect();
        assert!(labels.len() >= 2, "{domain:?} has a single label");
        for label in labels {
            assert!(!label.is_empty() && label.len() <= 63, "{label:?}");
            assert!(
                !label.starts_with('-') && !label.ends_with('-'),
                "{label:?}"
            );
            assert!(label.chars().all(|c| c.is_alphanumeric() || c == '-'));
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            if let Ok(email) = Email::parse(&raw) {
                assert_well_formed(&email);
            }
        }

        #[test]
        fn accepted_addresses_are_normalised_and_stable(raw in address_like()) {
            if let Ok(email) = Email::parse(&raw) {
                assert_well_formed(&email);
                prop_assert_eq!(email.as_str(), raw.trim().to_lowercase());
                // Normalising is idempotent: the stored form parses to itself.
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                let json = serde_json::to_string(&email).unwrap();
                prop_assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), email);
            }
        }

        #[test]
        fn simple_valid_addresses_are_accepted(
            local in "[a-z0-9]([a-z0-9._+-]{0,30}[a-z0-9])?",
            domain in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z]{2,10}){1,3}",
        ) {
            prop_assume!(!local.contains(".."));
            let raw = format!("{local}@{domain}");
            prop_assert_eq!(Email::parse(&raw).map(String::from), Ok(raw.clone()));
            prop_assert_eq!(Email::parse(&raw.to_uppercase()).map(String::from), Ok(raw));
        }

        #[test]
        fn over_long_addresses_are_refused(local in "[a-z]{1,64}", label in "[a-z]{63}") {
            let raw = format!("{local}@{label}.{label}.{label}.{label}.com");
            prop_assert!(raw.len() > MAX_LEN);
            prop_assert!(Email::parse(&raw).is_err());
        }
    }
}
