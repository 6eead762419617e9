//! The code emails, read from maildev through the test kit, as a user reads their inbox: a
//! step that fails (maildev unreachable, an email still missing after 15 s) fails the test.

use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

pub struct Inbox(mfa_testkit::mail::MailBox);

impl Inbox {
    pub fn new(maildev_url: &str) -> Self {
        Self(mfa_testkit::mail::MailBox::new(maildev_url))
    }

    /// The text of every email to `to` so far, oldest first.
    pub async fn texts_to(&self, to: &str) -> Vec<String> {
        let emails = self
            .0
            .emails_to(to)
            .await
            .expect("maildev lists its emails");
        emails.into_iter().map(|email| email.text).collect()
    }

    /// The code in the `nth` email to `to` (1 is the first), once it has arrived.
    pub async fn code(&self, to: &str, nth: usize) -> String {
        self.0
            .wait_for_code(to, nth, WITHIN)
            .await
            .expect("the code email arrives")
    }
}
