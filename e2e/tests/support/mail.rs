//! What reached the SMTP server, through the test kit's reader of maildev: a step that fails
//! (maildev unreachable, an email still missing after 15 s) fails the test.

use std::time::Duration;

pub use mfa_testkit::mail::ReceivedEmail;

const WITHIN: Duration = Duration::from_secs(15);

pub struct MailBox(mfa_testkit::mail::MailBox);

impl MailBox {
    pub fn new(base: &str) -> Self {
        Self(mfa_testkit::mail::MailBox::new(base))
    }

    /// Every email received for `to` so far.
    pub async fn emails_to(&self, to: &str) -> Vec<ReceivedEmail> {
        self.0
            .emails_to(to)
            .await
            .expect("maildev lists its emails")
    }

    /// Waits until `count` emails reached `to`, and returns them (oldest first).
    pub async fn wait_for_emails(&self, to: &str, count: usize) -> Vec<ReceivedEmail> {
        self.0
            .wait_for_emails(to, count, WITHIN)
            .await
            .expect("the emails arrive")
    }

    /// The code in the `count`-th email to `to`.
    pub async fn wait_for_code(&self, to: &str, count: usize) -> String {
        self.0
            .wait_for_code(to, count, WITHIN)
            .await
            .expect("the code email arrives")
    }
}
