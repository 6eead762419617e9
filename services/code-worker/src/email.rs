//! The code email, and sending it over SMTP with lettre.

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use shared::domain::{ChallengeId, Locale, OtpCode, Platform, UserAgent};
use shared::user_agent::UserAgentSummary;

use crate::config::{SmtpConfig, SmtpTls};

/// What the email tells the user.
pub struct CodeEmail<'a> {
    pub to: &'a str,
    pub code: &'a OtpCode,
    pub challenge_id: ChallengeId,
    pub expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub platform: Platform,
    pub user_agent: &'a UserAgent,
    pub ip: std::net::IpAddr,
    /// The language it is written in: the login's.
    pub locale: Locale,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("invalid recipient address: {0}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
}

/// The email's words in one language. `testkit::mail::code_in` reads the code back after
/// `code_is`, in every language: a change here is a change there.
struct Wording {
    subject: &'static str,
    code_is: &'static str,
    enter_it: fn(validity: &str, expires: &str) -> String,
    from: &'static str,
    ip_address: &'static str,
    not_you: &'static str,
    warning: &'static str,
    seconds: fn(i64) -> String,
    minutes: fn(i64) -> String,
    platform: fn(Platform) -> &'static str,
    unrecognised_browser: &'static str,
    /// "Chrome on Windows 10"
    browser_on_os: fn(&str, &str) -> String,
}

const ENGLISH: Wording = Wording {
    subject: "Your sign-in code",
    code_is: "Your sign-in code is",
    enter_it: |validity, expires| {
        format!(
            "Enter it to finish signing in. It is valid for {validity} (until {expires} UTC) \
             and works once."
        )
    },
    from: "The sign-in is from:",
    ip_address: "IP address",
    not_you: "Not you?",
    warning: "Do not share this code with anyone: someone may know your password. Change your \
              password now and tell your administrator.",
    seconds: |n| match n {
        1 => "1 second".to_owned(),
        n => format!("{n} seconds"),
    },
    minutes: |n| format!("{n} minutes"),
    platform: Platform::display_name,
    unrecognised_browser: "an unrecognised browser or app",
    browser_on_os: |browser, os| format!("{browser} on {os}"),
};

const FRENCH: Wording = Wording {
    subject: "Votre code de connexion",
    code_is: "Votre code de connexion est",
    enter_it: |validity, expires| {
        format!(
            "Saisissez-le pour terminer la connexion. Il est valable {validity} (jusqu'au \
             {expires} UTC) et ne sert qu'une fois."
        )
    },
    from: "La connexion vient de :",
    ip_address: "adresse IP",
    not_you: "Ce n'est pas vous ?",
    warning: "Ne communiquez ce code à personne : quelqu'un connaît peut-être votre mot de \
              passe. Changez votre mot de passe maintenant et prévenez votre administrateur.",
    // French counts 0 and 1 in the singular.
    seconds: |n| match n {
        0 | 1 => format!("{n} seconde"),
        n => format!("{n} secondes"),
    },
    minutes: |n| format!("{n} minutes"),
    platform: |platform| match platform {
        Platform::Dashboard => "le Dashboard web",
        Platform::Workspace => "l'application de bureau Workspace",
        Platform::Ios => "l'application iOS",
        Platform::Android => "l'application Android",
    },
    unrecognised_browser: "un navigateur ou une application non reconnus",
    browser_on_os: |browser, os| format!("{browser} sous {os}"),
};

impl CodeEmail<'_> {
    fn wording(&self) -> &'static Wording {
        match self.locale {
            Locale::En => &ENGLISH,
            Locale::Fr => &FRENCH,
        }
    }

    /// How long the code still works, as a person says it: seconds under two minutes (a
    /// code about to expire must not be announced as "1 minutes"), else the nearest minute.
    /// The exact time follows it in the email.
    fn validity(&self) -> String {
        let seconds = (self.expires_at - self.now).num_seconds().max(0);
        let wording = self.wording();
        match seconds {
            0..120 => (wording.seconds)(seconds),
            _ => (wording.minutes)((seconds + 30) / 60),
        }
    }

    /// The browser or app of the login, as the email names it.
    fn browser(&self) -> String {
        let summary = UserAgentSummary::parse(self.user_agent);
        let wording = self.wording();
        if summary.browser == "UNKNOWN" {
            wording.unrecognised_browser.to_owned()
        } else if summary.os == "UNKNOWN" {
            summary.browser
        } else {
            (wording.browser_on_os)(&summary.browser, &summary.os)
        }
    }

    fn enter_it(&self) -> String {
        let expires = self.expires_at.format("%Y-%m-%d %H:%M").to_string();
        (self.wording().enter_it)(&self.validity(), &expires)
    }

    pub fn subject(&self) -> String {
        self.wording().subject.to_owned()
    }

    pub fn text(&self) -> String {
        let w = self.wording();
        format!(
            "{code_is} {code}\n\n{enter_it}\n\n{from}\n- {platform}\n- {browser}\n\
             - {ip_address} {ip}\n\n{not_you} {warning}\n",
            code_is = w.code_is,
            code = self.code.expose(),
            enter_it = self.enter_it(),
            from = w.from,
            platform = (w.platform)(self.platform),
            browser = self.browser(),
            ip_address = w.ip_address,
            ip = self.ip,
            not_you = w.not_you,
            warning = w.warning,
        )
    }

    pub fn html(&self) -> String {
        let w = self.wording();
        format!(
            "<!doctype html><html lang=\"{lang}\"><body style=\"font-family:sans-serif\">\
             <p>{code_is}</p>\
             <p style=\"font-size:28px;font-weight:bold;letter-spacing:4px\">{code}</p>\
             <p>{enter_it}</p>\
             <p>{from}</p><ul><li>{platform}</li><li>{browser}</li><li>{ip_address} {ip}</li></ul>\
             <p><strong>{not_you}</strong> {warning}</p>\
             </body></html>",
            lang = self.locale.as_str(),
            code_is = html_escape(w.code_is),
            code = self.code.expose(),
            enter_it = html_escape(&self.enter_it()),
            from = html_escape(w.from),
            platform = html_escape((w.platform)(self.platform)),
            browser = html_escape(&self.browser()),
            ip_address = html_escape(w.ip_address),
            ip = html_escape(&self.ip.to_string()),
            not_you = html_escape(w.not_you),
            warning = html_escape(w.warning),
        )
    }

    pub fn message(&self, from: &Mailbox) -> Result<Message, EmailError> {
        // Stable per challenge: if the same email is ever sent twice (a crash right after the
        // SMTP server accepted it), mail systems can drop the repeat.
        build_message(
            from,
            self.to,
            self.subject(),
            format!("<{}@adaptive-mfa>", self.challenge_id),
            self.text(),
            self.html(),
        )
    }
}

/// An email of the code worker's: text and HTML alternatives, with a Message-ID of the
/// caller's choosing (each kind is stable per challenge, so a resend can be dropped).
pub fn build_message(
    from: &Mailbox,
    to: &str,
    subject: String,
    message_id: String,
    text: String,
    html: String,
) -> Result<Message, EmailError> {
    let to: Mailbox = to
        .parse()
        .map_err(|e: lettre::address::AddressError| EmailError::Address(e.to_string()))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| EmailError::Build(e.to_string()))
}

pub fn html_escape(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Sends emails over one pooled SMTP transport.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, EmailError> {
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(|e| EmailError::Smtp(e.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| EmailError::Smtp(e.to_string()))?,
        };
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from: config.from.clone(),
        })
    }

    pub async fn send(&self, email: &CodeEmail<'_>) -> Result<(), EmailError> {
        self.send_message(email.message(&self.from)).await
    }

    /// The sender's address, for messages built elsewhere (`crate::notice_email`).
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    pub async fn send_message(
        &self,
        message: Result<Message, EmailError>,
    ) -> Result<(), EmailError> {
        let message = message?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| EmailError::Smtp(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static CODE: LazyLock<OtpCode> = LazyLock::new(|| OtpCode::parse("042137").unwrap());
    static FIREFOX: LazyLock<UserAgent> = LazyLock::new(|| {
        UserAgent::parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        )
        .unwrap()
    });

    /// A code email for a login from Firefox on Windows at 203.0.113.7, its code valid for
    /// `valid_secs` more seconds.
    fn email(platform: Platform, valid_secs: i64, locale: Locale) -> CodeEmail<'static> {
        let now = Utc::now();
        CodeEmail {
            to: "alice@example.com",
            code: &CODE,
            challenge_id: ChallengeId::new_random(),
            expires_at: now + chrono::Duration::seconds(valid_secs),
            now,
            platform,
            user_agent: &FIREFOX,
            ip: "203.0.113.7".parse().unwrap(),
            locale,
        }
    }

    #[test]
    fn says_how_long_the_code_works_in_words_that_are_true() {
        let validity = |seconds: i64| email(Platform::Ios, seconds, Locale::En).validity();
        assert_eq!(validity(1), "1 second");
        assert_eq!(validity(45), "45 seconds");
        assert_eq!(validity(60), "60 seconds");
        assert_eq!(validity(119), "119 seconds");
        assert_eq!(validity(120), "2 minutes");
        assert_eq!(validity(599), "10 minutes");
        assert_eq!(validity(600), "10 minutes");
        assert_eq!(validity(569), "9 minutes");
        let french = |seconds: i64| email(Platform::Ios, seconds, Locale::Fr).validity();
        assert_eq!(french(1), "1 seconde");
        assert_eq!(french(45), "45 secondes");
        assert_eq!(french(600), "10 minutes");
    }

    #[test]
    fn names_the_code_validity_platform_browser_ip_and_what_to_do() {
        let email = email(Platform::Workspace, 600, Locale::En);
        for body in [email.text(), email.html()] {
            assert!(body.contains("042137"));
            assert!(body.contains("10 minutes"));
            assert!(body.contains("Workspace desktop app"));
            assert!(body.contains("Firefox"));
            assert!(body.contains("203.0.113.7"));
            assert!(body.contains("Not you?"));
        }
        let message = email
            .message(&"MFA <mfa@example.com>".parse().unwrap())
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains(&format!(
            "Message-ID: <{}@adaptive-mfa>",
            email.challenge_id
        )));
    }

    #[test]
    fn a_french_login_gets_its_email_in_french() {
        let email = email(Platform::Ios, 45, Locale::Fr);
        assert_eq!(email.subject(), "Votre code de connexion");
        let text = email.text();
        assert!(
            text.starts_with("Votre code de connexion est 042137\n"),
            "{text}"
        );
        for body in [text, email.html()] {
            assert!(body.contains("45 secondes"), "{body}");
            assert!(body.contains("application iOS"), "{body}");
            assert!(body.contains("Firefox sous Windows"), "{body}");
            assert!(body.contains("adresse IP 203.0.113.7"), "{body}");
            assert!(body.contains("pas vous"), "{body}");
            assert!(!body.contains("sign-in"), "no English left: {body}");
        }
        assert!(email.html().contains("lang=\"fr\""));
    }
}
