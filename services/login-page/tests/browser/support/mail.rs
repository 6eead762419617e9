//! The code emails, read from maildev's REST API (`GET /email`), as a user reads their inbox.

use std::time::Duration;

use mfa_testkit::mail::code_in;
use serde_json::Value;

pub struct Inbox {
    base: String,
    http: reqwest::Client,
}

impl Inbox {
    pub fn new(maildev_url: &str) -> Self {
        Self {
            base: maildev_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// The text of every email to `to` so far, oldest first.
    pub async fn texts_to(&self, to: &str) -> Vec<String> {
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
            .map(|email| email["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The code in the `nth` email to `to` (1 is the first), once it has arrived.
    pub async fn code(&self, to: &str, nth: usize) -> String {
        for _ in 0..300 {
            let texts = self.texts_to(to).await;
            if let Some(text) = texts.get(nth - 1) {
                return code_in(text).unwrap_or_else(|| panic!("no code in {text:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{to} did not receive email {nth} within 15 s");
    }
}
