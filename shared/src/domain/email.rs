use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

use super::ParseError;

/// A syntactically valid email address in one canonical form, so that one mailbox always
/// maps to one account and an address cannot pass itself off as another:
/// - trimmed; the local part in Unicode NFC and lower case (`u` + U+0308 and `ü` are one
///   spelling);
/// - the domain in its IDNA (UTS #46) ASCII form, lower case (`bücher.de` and
///   `xn--bcher-kva.de` are one domain), which is also what SMTP needs;
/// - refused: a local part that mixes scripts (`аlice` with a Cyrillic `а`), and a domain
///   label that mixes scripts or whose Unicode TS #39 skeleton is plain ASCII, i.e. a label
///   made to look like an ASCII one (`exаmple.com`, `аррӏе.com`). Each refusal has its own
///   code ([`ParseError::code`]).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

const MAX_LEN: usize = Email::MAX_LEN;
const MAX_LOCAL_LEN: usize = 64;

/// The codes of [`Email::parse`]'s refusals: a malformed address is an `invalid_request`
/// like any malformed field; the two that catch impersonation have codes of their own.
pub const EMAIL_MIXED_SCRIPT: &str = "email_mixed_script";
pub const EMAIL_CONFUSABLE_DOMAIN: &str = "email_confusable_domain";

fn invalid(message: &str) -> ParseError {
    ParseError::new(message)
}

impl Email {
    /// The longest canonical form accepted, in bytes (RFC 5321's path limit, less the angle
    /// brackets). API documents state it as their `maxLength`.
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("email is empty"));
        }
        // Checked before normalising too, so a huge input costs nothing more.
        if trimmed.len() > MAX_LEN * 4 {
            return Err(invalid("email is longer than 254 characters"));
        }
        let (local, domain) = trimmed
            .rsplit_once('@')
            .ok_or_else(|| invalid("email has no '@'"))?;
        let local = canonical_local_part(local)?;
        let domain = canonical_domain(domain)?;
        let normalised = format!("{local}@{domain}");
        if normalised.len() > MAX_LEN {
            return Err(invalid("email is longer than 254 characters"));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn canonical_local_part(local: &str) -> Result<String, ParseError> {
    // Lower-casing can undo composition (`İ` becomes `i` + U+0307): compose again after it.
    let local: String = local
        .nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect();
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    if !local_ok {
        return Err(invalid("email has an invalid local part"));
    }
    if !local.is_single_script() {
        return Err(ParseError::with_code(
            EMAIL_MIXED_SCRIPT,
            "the email's local part mixes letters of different scripts",
        ));
    }
    Ok(local)
}

fn canonical_domain(domain: &str) -> Result<String, ParseError> {
    // UTS #46 with STD3 characters; maps case, width and compatibility forms, so every
    // spelling of a domain gives one ASCII form. (Not its hyphen rule: `ab--cd.com` is a
    // real domain. Lengths are checked below.)
    let ascii = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::STD3)
        .map_err(|_| invalid("email has an invalid domain"))?
        .into_owned();
    let labels: Vec<&str> = ascii.split('.').collect();
    let labels_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if !labels_ok {
        return Err(invalid("email has an invalid domain"));
    }
    let (unicode, result) = idna::domain_to_unicode(&ascii);
    if result.is_err() {
        return Err(invalid("email has an invalid domain"));
    }
    for label in unicode.split('.').filter(|label| !label.is_ascii()) {
        let imitates_ascii = unicode_security::skeleton(label).all(|c| c.is_ascii());
        if !label.is_single_script() || imitates_ascii {
            return Err(ParseError::with_code(
                EMAIL_CONFUSABLE_DOMAIN,
                "the email's domain looks like another domain (letters of another script)",
            ));
        }
    }
    Ok(ascii)
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
    fn one_mailbox_has_one_spelling() {
        // The domain's Unicode and ASCII (IDNA) forms, in any case.
        for raw in [
            "r1@bücher.de",
            "r1@xn--bcher-kva.de",
            "R1@BÜCHER.DE",
            "r1@XN--BCHER-KVA.DE",
        ] {
            assert_eq!(
                Email::parse(raw).unwrap().as_str(),
                "r1@xn--bcher-kva.de",
                "{raw}"
            );
        }
        // NFD and NFC spellings of the local part.
        let nfd = "ju\u{0308}rgen@example.com";
        let nfc = "j\u{00fc}rgen@example.com";
        assert_eq!(Email::parse(nfd).unwrap(), Email::parse(nfc).unwrap());
        assert_eq!(Email::parse(nfd).unwrap().as_str(), nfc);
        // Full-width letters are the same letters (UTS #46 mapping).
        assert_eq!(
            Email::parse("bob@ｅｘａｍｐｌｅ.com").unwrap().as_str(),
            "bob@example.com"
        );
    }

    #[test]
    fn refuses_addresses_that_pretend_to_be_others() {
        // A Cyrillic `а` (U+0430) among Latin letters, in the local part...
        let mixed_local = Email::parse("\u{0430}lice@example.com").unwrap_err();
        assert_eq!(mixed_local.code(), EMAIL_MIXED_SCRIPT);
        // ...or in the domain.
        let mixed_domain = Email::parse("alice@ex\u{0430}mple.com").unwrap_err();
        assert_eq!(mixed_domain.code(), EMAIL_CONFUSABLE_DOMAIN);
        // A domain of Cyrillic letters only, made to read as `apple`.
        let whole_script = Email::parse("alice@\u{0430}\u{0440}\u{0440}\u{04cf}\u{0435}.com");
        assert_eq!(whole_script.unwrap_err().code(), EMAIL_CONFUSABLE_DOMAIN);
        // Real internationalised addresses stay welcome.
        for raw in [
            "jürgen@bücher.de",
            "иван@пример.рф",
            "δοκιμή@παράδειγμα.δοκιμή",
            "用户@例子.广告",
        ] {
            assert!(Email::parse(raw).is_ok(), "{raw} should be accepted");
        }
    }

    #[test]
    fn malformed_addresses_have_the_generic_code() {
        for raw in [
            "",
            "alice",
            "alice@",
            "alice@exa mple.com",
            "alice@-example.com",
        ] {
            assert_eq!(
                Email::parse(raw).unwrap_err().code(),
                "invalid_request",
                "{raw:?}"
            );
        }
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
                // ASCII needs no Unicode normalisation: trimmed and lower-cased only. (A
                // non-ASCII domain becomes its IDNA form: `one_mailbox_has_one_spelling`.)
                if raw.is_ascii() {
                    prop_assert_eq!(email.as_str(), raw.trim().to_lowercase());
                }
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
