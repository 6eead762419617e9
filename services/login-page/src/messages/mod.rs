//! The page's words, one [`Catalogue`] per language. A language is a `static` of that
//! struct, so one that lacks a message does not compile; the words that take a number are
//! functions, since languages count differently (French says "1 essai", "0 essai").

pub mod en;
pub mod fr;

pub struct Catalogue {
    /// The language's own name, as the switch to it shows it.
    pub name: &'static str,
    pub switch_label: &'static str,

    // The sign-in form.
    pub sign_in_title: &'static str,
    pub sign_in_to: fn(company: &str) -> String,
    pub email_label: &'static str,
    pub password_label: &'static str,
    pub sign_in_button: &'static str,
    pub problem_heading: &'static str,

    // The code form.
    pub code_title: &'static str,
    pub code_sent_to: fn(masked_email: &str) -> String,
    pub code_recently_sent: fn(masked_email: &str) -> String,
    pub code_valid_for: fn(minutes: i64, until: &str) -> String,
    pub code_label: &'static str,
    pub code_hint: &'static str,
    pub verify_button: &'static str,
    pub no_code_help: &'static str,
    pub sign_in_again: &'static str,

    // Signed in.
    pub signed_in_title: &'static str,
    pub signed_in_to: fn(platform: &str) -> String,
    pub continue_to: fn(platform: &str) -> String,

    // Outcomes (`crate::domain::outcome::Outcome::message`).
    pub missing_email: &'static str,
    pub missing_password: &'static str,
    pub password_too_long: &'static str,
    pub form_expired: &'static str,
    pub wrong_credentials: &'static str,
    pub email_not_accepted: &'static str,
    pub passwords_not_accepted: &'static str,
    pub network_blocked: &'static str,
    pub wait_for_new_code: fn(seconds: u64) -> String,
    pub code_pending_elsewhere: fn(seconds: u64) -> String,
    pub password_change_required: &'static str,
    pub rate_limited: fn(seconds: Option<u64>) -> String,
    pub still_deciding: &'static str,
    pub code_not_six_digits: &'static str,
    pub incorrect_code: fn(tries_left: u32) -> String,
    pub code_locked: &'static str,
    pub code_expired: &'static str,
    pub code_superseded: &'static str,
    pub code_revoked: &'static str,
    pub code_already_used: &'static str,
    pub code_undelivered: &'static str,
    pub challenge_unknown: &'static str,
    pub unavailable: &'static str,
}

/// A wait as a person reads it: seconds under two minutes, whole minutes (rounded up) under
/// two hours, else whole hours (rounded up). The words for each unit are the language's.
pub(crate) fn wait(seconds: u64, units: [(&str, &str); 3]) -> String {
    let [(second, seconds_word), (minute, minutes_word), (hour, hours_word)] = units;
    let (count, one, many) = if seconds < 120 {
        (seconds, second, seconds_word)
    } else if seconds < 2 * 60 * 60 {
        (seconds.div_ceil(60), minute, minutes_word)
    } else {
        (seconds.div_ceil(60 * 60), hour, hours_word)
    };
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::wait;

    const EN: [(&str, &str); 3] = [
        ("second", "seconds"),
        ("minute", "minutes"),
        ("hour", "hours"),
    ];

    #[test]
    fn waits_in_the_unit_a_person_reads() {
        assert_eq!(wait(1, EN), "1 second");
        assert_eq!(wait(119, EN), "119 seconds");
        assert_eq!(wait(120, EN), "2 minutes");
        assert_eq!(wait(121, EN), "3 minutes");
        assert_eq!(wait(7199, EN), "120 minutes");
        assert_eq!(wait(7200, EN), "2 hours");
        assert_eq!(wait(86_400, EN), "24 hours");
    }
}
