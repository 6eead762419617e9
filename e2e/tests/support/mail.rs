//! Reading what reached the SMTP server, through maildev's REST API (`GET /email`).

use std::time::Duration;

pub use mfa_testkit::mail::code_in;
use serde_json::Value;

pub struct MailBox {
    base: String,
    http: reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

impl MailBox {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Every email received for `to` so far.
    pub async fn emails_to(&self, to: &str) -> Vec<ReceivedEmail> {
        let all: Value = self
            .http
            .get(format!("{}/email", self.base))
            .send()
            .await
            .expect("maildev answers")
            .json()
            .await
            .expect("maildev lists emails as JSON");
        all.as_array()
            .into_iter()
            .flatten()
            .filter(|email| {
                email["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|recipient| recipient["address"].as_str() == Some(to))
            })
            .map(|email| ReceivedEmail {
                subject: email["subject"].as_str().unwrap_or_default().to_owned(),
                text: email["text"].as_str().unwrap_or_default().to_owned(),
                html: email["html"].as_str().unwrap_or_default().to_owned(),
                message_id: email["messageId"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// Waits until `count` emails reached `to`, and returns them (oldest first).
    pub async fn wait_for_emails(&self, to: &str, count: usize) -> Vec<ReceivedEmail> {
        for _ in 0..300 {
            let emails = self.emails_to(to).await;
            if emails.len() >= count {
                return emails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{to} did not receive {count} email(s) within 15 s");
    }

    /// The code in the `count`-th email to `to`.
    pub async fn wait_for_code(&self, to: &str, count: usize) -> String {
        let emails = self.wait_for_emails(to, count).await;
        code_in(&emails[count - 1].text)
            .unwrap_or_else(|| panic!("no code in {:?}", emails[count - 1].text))
    }
}
