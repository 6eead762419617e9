//! What the browser tests stand on: the whole system in process on random ports (the four
//! services and the page) against the real stack of `scripts/stack up`, a real Chromium
//! through its WebDriver server, and the maildev inbox.

pub mod browser;
pub mod mail;
pub mod system;

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// A unique address, so tests sharing the SMTP server never read each other's mail.
pub fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Two tests at a time: each runs five services and a Chromium, on 2 cores.
pub static AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
