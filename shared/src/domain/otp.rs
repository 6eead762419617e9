use std::fmt;

use rand::{rngs::OsRng, Rng};

use super::ParseError;

/// A 6-digit one-time code. It never implements `Display` or `Serialize`, and its `Debug` is
/// redacted, so it can't slip into a log line or an event by accident; `expose` is the one
/// door, used to hash it and to write the email.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    pub const LENGTH: usize = 6;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        if trimmed.len() == Self::LENGTH && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ParseError::new("code must be exactly 6 digits"))
        }
    }

    /// A uniformly distributed code from the operating system's secure generator.
    pub fn generate() -> Self {
        // `gen_range` samples without modulo bias, so every code is equally likely.
        Self(format!("{:06}", OsRng.gen_range(0..1_000_000u32)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_six_digits_only() {
        assert_eq!(OtpCode::parse(" 012345 ").unwrap().expose(), "012345");
        for raw in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "12 456"] {
            assert!(OtpCode::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = OtpCode::parse("123456").unwrap();
        assert!(!format!("{code:?}").contains("123456"));
    }

    #[test]
    fn generated_codes_are_six_digits_and_spread_out() {
        let codes: Vec<OtpCode> = (0..2000).map(|_| OtpCode::generate()).collect();
        assert!(codes.iter().all(|c| OtpCode::parse(c.expose()).is_ok()));
        // Each leading digit should appear about 200 times in 2000 uniform draws.
        let mut leading = [0u32; 10];
        for code in &codes {
            leading[(code.expose().as_bytes()[0] - b'0') as usize] += 1;
        }
        assert!(
            leading.iter().all(|&n| (100..=320).contains(&n)),
            "{leading:?}"
        );
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            if let Ok(code) = OtpCode::parse(&raw) {
                prop_assert_eq!(code.expose(), raw.trim());
                prop_assert_eq!(code.expose().len(), OtpCode::LENGTH);
                prop_assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            }
        }

        #[test]
        fn any_six_ascii_digits_parse(digits in "[0-9]{6}", pad in "[ \t\r\n]{0,3}") {
            let code = OtpCode::parse(&format!("{pad}{digits}{pad}")).unwrap();
            prop_assert_eq!(code.expose(), digits.as_str());
            prop_assert!(OtpCode::parse(code.expose()).unwrap() == code);
        }

        #[test]
        fn other_lengths_are_refused(digits in "[0-9]{0,5}|[0-9]{7,40}") {
            prop_assert!(OtpCode::parse(&digits).is_err());
        }

        #[test]
        fn a_non_digit_is_refused(
            digits in "[0-9]{6}",
            at in 0..OtpCode::LENGTH,
            other in any::<char>().prop_filter("not an ASCII digit", |c| !c.is_ascii_digit()),
        ) {
            let mut chars: Vec<char> = digits.chars().collect();
            chars[at] = other;
            let raw: String = chars.into_iter().collect();
            prop_assert!(OtpCode::parse(&raw).is_err(), "{:?} should be refused", raw);
        }
    }
}
