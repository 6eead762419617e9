//! The code as the user typed or pasted it.

use std::fmt;

/// Six ASCII digits. What a person types or pastes around them (spaces, a hyphen, `123 456`
/// copied from the email) is dropped first; anything else is not a code.
#[derive(Clone, PartialEq, Eq)]
pub struct TypedCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a code is 6 digits")]
pub struct NotACode;

impl TypedCode {
    pub const DIGITS: usize = 6;

    pub fn parse(raw: &str) -> Result<Self, NotACode> {
        let digits: String = raw
            .chars()
            .filter(|c| !(c.is_whitespace() || matches!(c, '-' | '–' | '.')))
            .collect();
        if digits.len() == Self::DIGITS && digits.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(NotACode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Never printed: a code in a log line is a code someone else can use.
impl fmt::Debug for TypedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypedCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digits_as_typed_or_pasted() {
        for raw in [
            "042917",
            " 042917\n",
            "042 917",
            "042-917",
            "0 4 2 9 1 7",
            "042\u{a0}917",
        ] {
            assert_eq!(TypedCode::parse(raw).unwrap().as_str(), "042917", "{raw:?}");
        }
    }

    #[test]
    fn anything_else_is_not_a_code() {
        for raw in ["", "04291", "0429170", "04a917", "０４２９１７", "042917x"] {
            assert_eq!(TypedCode::parse(raw), Err(NotACode), "{raw:?}");
        }
    }

    #[test]
    fn debug_hides_the_digits() {
        assert!(!format!("{:?}", TypedCode::parse("042917").unwrap()).contains("042917"));
    }
}
