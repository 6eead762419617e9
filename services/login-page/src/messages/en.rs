//! English.

use super::{wait, Catalogue};

const UNITS: [(&str, &str); 3] = [
    ("second", "seconds"),
    ("minute", "minutes"),
    ("hour", "hours"),
];

pub static ENGLISH: Catalogue = Catalogue {
    name: "English",
    switch_label: "Language",

    sign_in_title: "Sign in",
    sign_in_to: |company| format!("Sign in to {company}"),
    email_label: "Email address",
    password_label: "Password",
    sign_in_button: "Sign in",
    problem_heading: "There is a problem",

    code_title: "Check your email",
    code_sent_to: |masked| format!("We sent a 6-digit sign-in code to {masked}."),
    code_recently_sent: |masked| {
        format!("A code was sent to {masked} moments ago: use that one, it still works.")
    },
    code_valid_for: |minutes, until| {
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        format!("It works for {minutes} {unit}, until {until}.")
    },
    code_label: "Sign-in code",
    code_hint: "The 6 digits in the email. You can paste the whole code.",
    verify_button: "Continue",
    no_code_help: "No email? Look in your spam folder, or sign in again to get a new code.",
    sign_in_again: "Sign in again",

    signed_in_title: "You are signed in",
    signed_in_to: |platform| format!("You are signed in to {platform}."),
    continue_to: |platform| format!("Continue to {platform}"),

    missing_email: "Enter your email address.",
    missing_password: "Enter your password.",
    password_too_long: "That password is too long to be yours. Check it and try again.",
    form_expired: "This page was open too long, or your browser blocks cookies. Enter your details again.",
    wrong_credentials: "The email address or password is not correct. Check them and try again.",
    email_not_accepted: "That is not an email address an account can have. Check it and try again.",
    passwords_not_accepted: "Your organisation does not sign in with a password here. Use your organisation's sign-in instead.",
    network_blocked: "Signing in from this network is not allowed. Try again from another network, or ask your administrator.",
    wait_for_new_code: |seconds| {
        format!(
            "No new code can be sent yet. Wait {}, then sign in again.",
            wait(seconds, UNITS)
        )
    },
    code_pending_elsewhere: |seconds| {
        format!(
            "A code was sent moments ago for a sign-in on another device. Wait {}, then sign in again here. If that sign-in was not yours, change your password.",
            wait(seconds, UNITS)
        )
    },
    password_change_required: "A sign-in to your account was reported as not yours, so your password must be changed before you can sign in with it. Reset your password, or ask your administrator.",
    rate_limited: |seconds| match seconds {
        Some(seconds) => format!(
            "Too many sign-in attempts. Wait {}, then try again.",
            wait(seconds, UNITS)
        ),
        None => "Too many sign-in attempts. Wait a minute, then try again.".to_owned(),
    },
    still_deciding: "Signing you in is taking longer than usual. Try again in a moment.",
    code_not_six_digits: "Enter the 6 digits from the email.",
    incorrect_code: |tries_left| {
        let tries = if tries_left == 1 { "try" } else { "tries" };
        format!("That code is not correct. You have {tries_left} {tries} left.")
    },
    code_locked: "Too many incorrect codes: this code no longer works. To get a new one, sign in again.",
    code_expired: "This code has expired. To get a new one, sign in again.",
    code_superseded: "A newer code was sent, so this one no longer works. Use the newest email, or sign in again for a new code.",
    code_revoked: "This code no longer works because your account was changed after it was sent. To get a new one, sign in again.",
    code_already_used: "This code was already used. To sign in again, enter your details.",
    code_undelivered: "We could not send the code email. Check your address with your administrator, or sign in again later.",
    challenge_unknown: "This sign-in can no longer be completed. Please sign in again.",
    unavailable: "Signing in is not possible right now. Try again in a few minutes.",
};
