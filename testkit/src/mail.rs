//! The code emails that reached maildev, read through its REST API (`GET /email`) as a user
//! reads their inbox, and the code in one. The code worker writes "Your sign-in code is
//! 123456" (or its French) in the text part; the end-to-end tests, the sign-in page's browser tests and the
//! chaos audit read it back from there.

use std::time::Duration;

use serde_json::Value;

use crate::TestkitError;

/// maildev's inbox, over HTTP.
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
    /// `base`: maildev's web address (`http://127.0.0.1:<port>`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Every email received for `to` so far, oldest first.
    pub async fn emails_to(&self, to: &str) -> Result<Vec<ReceivedEmail>, TestkitError> {
        let listing = TestkitError::mail("list maildev's emails");
        let all: Value = match self.http.get(format!("{}/email", self.base)).send().await {
            Ok(response) => response.json().await.map_err(listing)?,
            Err(error) => return Err(listing(error)),
        };
        Ok(all
            .as_array()
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
            .collect())
    }

    /// Waits until `count` emails reached `to` (at most `within`), and returns them.
    pub async fn wait_for_emails(
        &self,
        to: &str,
        count: usize,
        within: Duration,
    ) -> Result<Vec<ReceivedEmail>, TestkitError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let emails = self.emails_to(to).await?;
            if emails.len() >= count {
                return Ok(emails);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TestkitError::EmailsMissing {
                    to: to.to_owned(),
                    arrived: emails.len(),
                    expected: count,
                    within,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The code in the `nth` code email to `to` (1 is the first), once it arrived. Other
    /// emails to the address (the "someone has your password" notifications) are not counted.
    pub async fn wait_for_code(
        &self,
        to: &str,
        nth: usize,
        within: Duration,
    ) -> Result<String, TestkitError> {
        let nth = nth.max(1);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let emails = self.emails_to(to).await?;
            let codes: Vec<String> = emails.iter().filter_map(|e| code_in(&e.text)).collect();
            if let Some(code) = codes.get(nth - 1) {
                return Ok(code.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(match emails.last() {
                    // As many emails as asked for, but not that many codes among them.
                    Some(last) if emails.len() >= nth => TestkitError::NoCode {
                        text: last.text.clone(),
                    },
                    _ => TestkitError::EmailsMissing {
                        to: to.to_owned(),
                        arrived: codes.len(),
                        expected: nth,
                        within,
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How the code worker's emails introduce the code, in each of their languages (its
/// `email::Wording::code_is`).
const CODE_IS: [&str; 2] = ["Your sign-in code is", "Votre code de connexion est"];

/// The 6 digits after "Your sign-in code is" (or its French).
pub fn code_in(text: &str) -> Option<String> {
    let rest = CODE_IS
        .iter()
        .find_map(|phrase| text.split(phrase).nth(1))?;
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
        assert_eq!(
            code_in("Votre code de connexion est 042917\n\nSaisissez-le"),
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
