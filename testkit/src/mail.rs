//! The code in a code email. The code worker writes "Your sign-in code is 123456" in the
//! text part; both the end-to-end tests and the chaos audit read it back from there.

/// The 6 digits after "Your sign-in code is".
pub fn code_in(text: &str) -> Option<String> {
    let rest = text.split("Your sign-in code is").nth(1)?;
    let code: String = rest.trim_start().chars().take(6).collect();
    (code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::code_in;

    #[test]
    fn finds_the_six_digits_after_the_phrase() {
        assert_eq!(
            code_in("Hello,\nYour sign-in code is 042917. It expires in 10 minutes."),
            Some("042917".to_owned())
        );
    }

    #[test]
    fn no_phrase_or_fewer_than_six_digits_is_no_code() {
        assert_eq!(code_in("Your code: 042917"), None);
        assert_eq!(code_in("Your sign-in code is 04291"), None);
        assert_eq!(code_in("Your sign-in code is 04a917"), None);
    }
}
