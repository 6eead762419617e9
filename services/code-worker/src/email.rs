//! The code email, and sending it over SMTP with lettre.

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use shared::domain::{ChallengeId, OtpCode, Platform, UserAgent};
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

impl CodeEmail<'_> {
    /// How long the code still works, as a person says it: seconds under two minutes (a
    /// code about to expire must not be announced as "1 minutes"), else the nearest minute.
    /// The exact time follows it in the email.
    fn validity(&self) -> String {
        let seconds = (self.expires_at - self.now).num_seconds().max(0);
        match seconds {
            1 => "1 second".to_owned(),
            0..120 => format!("{seconds} seconds"),
            _ => format!("{} minutes", (seconds + 30) / 60),
        }
    }

    pub fn subject(&self) -> String {
        "Your sign-in code".to_owned()
    }

    pub fn text(&self) -> String {
        let browser = UserAgentSummary::parse(self.user_agent).describe();
        format!(
            "Your sign-in code is {code}\n\n\
             Enter it to finish signing in. It is valid for {validity} \
             (until {expires} UTC) and works once.\n\n\
             The sign-in is from:\n\
             - {platform}\n\
             - {browser}\n\
             - IP address {ip}\n\n\
             Not you? Do not share this code with anyone: someone may know your password. \
             Change your password now and tell your administrator.\n",
            code = self.code.expose(),
            validity = self.validity(),
            expires = self.expires_at.format("%Y-%m-%d %H:%M"),
            platform = self.platform.display_name(),
            ip = self.ip,
        )
    }

    pub fn html(&self) -> String {
        let browser = html_escape(&UserAgentSummary::parse(self.user_agent).describe());
        format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\">\
             <p>Your sign-in code is</p>\
             <p style=\"font-size:28px;font-weight:bold;letter-spacing:4px\">{code}</p>\
             <p>Enter it to finish signing in. It is valid for {validity} \
             (until {expires} UTC) and works once.</p>\
             <p>The sign-in is from:</p><ul><li>{platform}</li><li>{browser}</li><li>IP address {ip}</li></ul>\
             <p><strong>Not you?</strong> Do not share this code with anyone: someone may know your \
             password. Change your password now and tell your administrator.</p>\
             </body></html>",
            code = self.code.expose(),
            validity = self.validity(),
            expires = self.expires_at.format("%Y-%m-%d %H:%M"),
            platform = html_escape(self.platform.display_name()),
            ip = html_escape(&self.ip.to_string()),
        )
    }

    pub fn message(&self, from: &Mailbox) -> Result<Message, EmailError> {
        let to: Mailbox = self
            .to
            .parse()
            .map_err(|e: lettre::address::AddressError| EmailError::Address(e.to_string()))?;
        Message::builder()
            .from(from.clone())
            .to(to)
            .subject(self.subject())
            // Stable per challenge: if the same email is ever sent twice (a crash right after
            // the SMTP server accepted it), mail systems can drop the repeat.
            .message_id(Some(format!("<{}@adaptive-mfa>", self.challenge_id)))
            .multipart(MultiPart::alternative_plain_html(self.text(), self.html()))
            .map_err(|e| EmailError::Build(e.to_string()))
    }
}

fn html_escape(raw: &str) -> String {
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
        let message = email.message(&self.from)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| EmailError::Smtp(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_how_long_the_code_works_in_words_that_are_true() {
        let now = Utc::now();
        let code = OtpCode::parse("042137").unwrap();
        let ua = UserAgent::parse("curl/8.0").unwrap();
        let validity = |seconds: i64| {
            CodeEmail {
                to: "alice@example.com",
                code: &code,
                challenge_id: ChallengeId::new_random(),
                expires_at: now + chrono::Duration::seconds(seconds),
                now,
                platform: Platform::Ios,
                user_agent: &ua,
                ip: "203.0.113.7".parse().unwrap(),
            }
            .validity()
        };
        assert_eq!(validity(1), "1 second");
        assert_eq!(validity(45), "45 seconds");
        assert_eq!(validity(60), "60 seconds");
        assert_eq!(validity(119), "119 seconds");
        assert_eq!(validity(120), "2 minutes");
        assert_eq!(validity(599), "10 minutes");
        assert_eq!(validity(600), "10 minutes");
        assert_eq!(validity(569), "9 minutes");
    }

    #[test]
    fn names_the_code_validity_platform_browser_ip_and_what_to_do() {
        let now = Utc::now();
        let code = OtpCode::parse("042137").unwrap();
        let ua = UserAgent::parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        )
        .unwrap();
        let email = CodeEmail {
            to: "alice@example.com",
            code: &code,
            challenge_id: ChallengeId::new_random(),
            expires_at: now + chrono::Duration::minutes(10),
            now,
            platform: Platform::Workspace,
            user_agent: &ua,
            ip: "203.0.113.7".parse().unwrap(),
        };
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
}
