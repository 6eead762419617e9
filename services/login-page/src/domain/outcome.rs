//! Every answer of the two APIs the user has to act on, and what the page says about it.
//! Mapping an answer to words is one pure function ([`Outcome::message`]), so each outcome's
//! wording is tested in every language without a server.

use crate::messages::Catalogue;

/// What happened, in the page's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    // Sign-in form, before any call.
    MissingEmail,
    MissingPassword,
    PasswordTooLong,
    /// The form's CSRF token did not check out (or cookies are off): the user fills it in again.
    FormExpired,

    // `POST /v1/logins`.
    /// `invalid_credentials`: a wrong password and an unknown email alike, so the page
    /// can't be used to learn who has an account.
    WrongCredentials,
    /// `422` on the email: not an address an account can have.
    EmailNotAccepted,
    /// `auth_method_not_allowed`: the company does not take passwords.
    PasswordsNotAccepted,
    /// `denylisted_network`.
    NetworkBlocked,
    /// `too_many_codes` or `too_many_failed_codes`: no new code before `seconds`.
    WaitForNewCode {
        seconds: u64,
    },
    /// `code_pending_elsewhere`: a code was emailed moments ago for a login on another
    /// device, and codes are never shared between devices; a new one after `seconds`.
    CodePendingElsewhere {
        seconds: u64,
    },
    /// `password_change_required`: the user reported a sign-in as not theirs and their
    /// company then requires a new password; no password sign-in until it is changed.
    PasswordChangeRequired,
    /// `429 rate_limited`, with its `Retry-After` when it gave one.
    RateLimited {
        seconds: Option<u64>,
    },
    /// Still `pending` after the page's wait.
    StillDeciding,

    // `POST /v1/challenges/{id}/verify`, and a decision read after it.
    /// Not 6 digits: no try was used.
    CodeNotSixDigits,
    /// `invalid_code`, with the tries the challenge still takes.
    IncorrectCode {
        tries_left: u32,
    },
    /// `too_many_attempts` / `code_locked`.
    CodeLocked,
    /// `expired_code` / `code_expired`.
    CodeExpired,
    /// `superseded`: a newer code was emailed.
    CodeSuperseded,
    /// `revoked`: the password was changed or sign-in disabled since.
    CodeRevoked,
    /// `already_used`.
    CodeAlreadyUsed,
    /// `code_delivery_failed`: the email could not be sent.
    CodeUndelivered,
    /// `unknown_challenge`, or ids in the form that are not ids.
    ChallengeUnknown,

    /// Either API is down, overloaded, or answered what the page does not expect.
    Unavailable,
}

/// Where the user goes after an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The code form again: the code can still be used.
    CodeForm,
    /// The sign-in form (its email kept), for a new login and so a new code if one is needed.
    SignInForm,
}

impl Outcome {
    /// A login's `rejected` reason (the POST's, or a later `GET /v1/logins/{id}`'s).
    pub fn from_rejection(reason: &str, retry_after_secs: Option<u64>) -> Outcome {
        match reason {
            "invalid_credentials" => Outcome::WrongCredentials,
            "auth_method_not_allowed" => Outcome::PasswordsNotAccepted,
            "denylisted_network" => Outcome::NetworkBlocked,
            "too_many_codes" | "too_many_failed_codes" => Outcome::WaitForNewCode {
                seconds: retry_after_secs.unwrap_or(0),
            },
            "code_pending_elsewhere" => Outcome::CodePendingElsewhere {
                seconds: retry_after_secs.unwrap_or(0),
            },
            "password_change_required" => Outcome::PasswordChangeRequired,
            "code_locked" => Outcome::CodeLocked,
            "code_expired" => Outcome::CodeExpired,
            "superseded" => Outcome::CodeSuperseded,
            "revoked" => Outcome::CodeRevoked,
            "code_delivery_failed" => Outcome::CodeUndelivered,
            // A reason added to the API after this page: the login did not pass, and a
            // person can still try again.
            _ => Outcome::Unavailable,
        }
    }

    pub fn next_step(self) -> NextStep {
        match self {
            Outcome::CodeNotSixDigits | Outcome::IncorrectCode { .. } => NextStep::CodeForm,
            _ => NextStep::SignInForm,
        }
    }

    /// What the page says, in the catalogue's language: what happened and what to do now.
    pub fn message(self, t: &Catalogue) -> String {
        match self {
            Outcome::MissingEmail => t.missing_email.to_owned(),
            Outcome::MissingPassword => t.missing_password.to_owned(),
            Outcome::PasswordTooLong => t.password_too_long.to_owned(),
            Outcome::FormExpired => t.form_expired.to_owned(),
            Outcome::WrongCredentials => t.wrong_credentials.to_owned(),
            Outcome::EmailNotAccepted => t.email_not_accepted.to_owned(),
            Outcome::PasswordsNotAccepted => t.passwords_not_accepted.to_owned(),
            Outcome::NetworkBlocked => t.network_blocked.to_owned(),
            Outcome::WaitForNewCode { seconds } => (t.wait_for_new_code)(seconds),
            Outcome::CodePendingElsewhere { seconds } => (t.code_pending_elsewhere)(seconds),
            Outcome::PasswordChangeRequired => t.password_change_required.to_owned(),
            Outcome::RateLimited { seconds } => (t.rate_limited)(seconds),
            Outcome::StillDeciding => t.still_deciding.to_owned(),
            Outcome::CodeNotSixDigits => t.code_not_six_digits.to_owned(),
            Outcome::IncorrectCode { tries_left } => (t.incorrect_code)(tries_left),
            Outcome::CodeLocked => t.code_locked.to_owned(),
            Outcome::CodeExpired => t.code_expired.to_owned(),
            Outcome::CodeSuperseded => t.code_superseded.to_owned(),
            Outcome::CodeRevoked => t.code_revoked.to_owned(),
            Outcome::CodeAlreadyUsed => t.code_already_used.to_owned(),
            Outcome::CodeUndelivered => t.code_undelivered.to_owned(),
            Outcome::ChallengeUnknown => t.challenge_unknown.to_owned(),
            Outcome::Unavailable => t.unavailable.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lang::Lang;

    const EVERY_OUTCOME: [Outcome; 23] = [
        Outcome::MissingEmail,
        Outcome::MissingPassword,
        Outcome::PasswordTooLong,
        Outcome::FormExpired,
        Outcome::WrongCredentials,
        Outcome::EmailNotAccepted,
        Outcome::PasswordsNotAccepted,
        Outcome::NetworkBlocked,
        Outcome::WaitForNewCode { seconds: 90 },
        Outcome::CodePendingElsewhere { seconds: 20 },
        Outcome::PasswordChangeRequired,
        Outcome::RateLimited { seconds: Some(30) },
        Outcome::StillDeciding,
        Outcome::CodeNotSixDigits,
        Outcome::IncorrectCode { tries_left: 3 },
        Outcome::CodeLocked,
        Outcome::CodeExpired,
        Outcome::CodeSuperseded,
        Outcome::CodeRevoked,
        Outcome::CodeAlreadyUsed,
        Outcome::CodeUndelivered,
        Outcome::ChallengeUnknown,
        Outcome::Unavailable,
    ];

    #[test]
    fn every_outcome_has_its_own_words_in_every_language() {
        for lang in Lang::ALL {
            let messages: Vec<String> = EVERY_OUTCOME
                .iter()
                .map(|outcome| outcome.message(lang.messages()))
                .collect();
            for (outcome, message) in EVERY_OUTCOME.iter().zip(&messages) {
                assert!(!message.trim().is_empty(), "{lang:?} {outcome:?}");
                let same = messages.iter().filter(|other| *other == message).count();
                assert_eq!(same, 1, "{lang:?}: {outcome:?} shares its words: {message}");
            }
        }
    }

    #[test]
    fn english_says_what_to_do() {
        let t = Lang::En.messages();
        assert_eq!(
            Outcome::IncorrectCode { tries_left: 3 }.message(t),
            "That code is not correct. You have 3 tries left."
        );
        assert_eq!(
            Outcome::IncorrectCode { tries_left: 1 }.message(t),
            "That code is not correct. You have 1 try left."
        );
        assert_eq!(
            Outcome::WaitForNewCode { seconds: 45 }.message(t),
            "No new code can be sent yet. Wait 45 seconds, then sign in again."
        );
        assert_eq!(
            Outcome::WaitForNewCode { seconds: 1800 }.message(t),
            "No new code can be sent yet. Wait 30 minutes, then sign in again."
        );
        assert_eq!(
            Outcome::RateLimited { seconds: Some(1) }.message(t),
            "Too many sign-in attempts. Wait 1 second, then try again."
        );
        assert!(Outcome::CodeLocked.message(t).contains("sign in again"));
        assert_eq!(
            Outcome::PasswordChangeRequired.message(t),
            "A sign-in to your account was reported as not yours, so your password must be \
             changed before you can sign in with it. Reset your password, or ask your \
             administrator."
        );
        assert!(Outcome::CodeExpired.message(t).contains("sign in again"));
    }

    #[test]
    fn french_says_what_to_do() {
        let t = Lang::Fr.messages();
        assert_eq!(
            Outcome::IncorrectCode { tries_left: 3 }.message(t),
            "Ce code n’est pas le bon. Il vous reste 3 essais."
        );
        assert_eq!(
            Outcome::IncorrectCode { tries_left: 1 }.message(t),
            "Ce code n’est pas le bon. Il vous reste 1 essai."
        );
        assert_eq!(
            Outcome::WaitForNewCode { seconds: 120 }.message(t),
            "Aucun nouveau code ne peut être envoyé pour l’instant. Attendez 2 minutes, puis reconnectez-vous."
        );
        assert!(Outcome::PasswordChangeRequired
            .message(t)
            .contains("votre mot de passe doit être changé"));
    }

    #[test]
    fn an_unknown_email_and_a_wrong_password_read_the_same() {
        // Both are `invalid_credentials` by the API's design; the page adds no difference.
        assert_eq!(
            Outcome::from_rejection("invalid_credentials", None),
            Outcome::WrongCredentials
        );
    }

    #[test]
    fn rejection_reasons_map_to_outcomes() {
        assert_eq!(
            Outcome::from_rejection("too_many_codes", Some(120)),
            Outcome::WaitForNewCode { seconds: 120 }
        );
        assert_eq!(
            Outcome::from_rejection("too_many_failed_codes", Some(7)),
            Outcome::WaitForNewCode { seconds: 7 }
        );
        assert_eq!(
            Outcome::from_rejection("code_locked", None),
            Outcome::CodeLocked
        );
        assert_eq!(
            Outcome::from_rejection("code_expired", None),
            Outcome::CodeExpired
        );
        assert_eq!(
            Outcome::from_rejection("superseded", None),
            Outcome::CodeSuperseded
        );
        assert_eq!(
            Outcome::from_rejection("revoked", None),
            Outcome::CodeRevoked
        );
        assert_eq!(
            Outcome::from_rejection("code_delivery_failed", None),
            Outcome::CodeUndelivered
        );
        assert_eq!(
            Outcome::from_rejection("denylisted_network", None),
            Outcome::NetworkBlocked
        );
        assert_eq!(
            Outcome::from_rejection("auth_method_not_allowed", None),
            Outcome::PasswordsNotAccepted
        );
        assert_eq!(
            Outcome::from_rejection("password_change_required", None),
            Outcome::PasswordChangeRequired
        );
        assert_eq!(
            Outcome::from_rejection("a_new_reason", None),
            Outcome::Unavailable
        );
    }

    #[test]
    fn only_a_code_that_can_still_be_used_keeps_the_code_form() {
        for outcome in EVERY_OUTCOME {
            let expected = match outcome {
                Outcome::CodeNotSixDigits | Outcome::IncorrectCode { .. } => NextStep::CodeForm,
                _ => NextStep::SignInForm,
            };
            assert_eq!(outcome.next_step(), expected, "{outcome:?}");
        }
    }
}
