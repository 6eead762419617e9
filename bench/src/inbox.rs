//! The code emails of the benchmark's users, read from maildev's REST API as they arrive.
//! One poller lists the inbox, takes the code out of each email to one of this run's users,
//! and deletes that email, so the listing stays short however many logins the run makes
//! (and other runs' and tests' emails are left alone).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

/// The codes each address received, in order.
#[derive(Default)]
struct Codes {
    by_address: HashMap<String, Vec<String>>,
    seen: HashSet<String>,
}

#[derive(Clone)]
pub struct Inbox {
    codes: Arc<Mutex<Codes>>,
    arrived: Arc<Notify>,
}

impl Inbox {
    /// Starts polling `maildev` (its web address) for emails to the addresses `ours` accepts.
    pub fn start(
        http: reqwest::Client,
        maildev: String,
        ours: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        let inbox = Self {
            codes: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let poller = inbox.clone();
        tokio::spawn(async move {
            loop {
                // A failed listing is retried at the next tick: a code late is a slow login,
                // which the figures show.
                let _ = poller.poll_once(&http, &maildev, &ours).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        inbox
    }

    async fn poll_once(
        &self,
        http: &reqwest::Client,
        maildev: &str,
        ours: &(impl Fn(&str) -> bool + Send + Sync),
    ) -> Result<(), reqwest::Error> {
        let listing: Value = http
            .get(format!("{maildev}/email"))
            .send()
            .await?
            .json()
            .await?;
        let mut taken = Vec::new();
        for email in listing.as_array().into_iter().flatten() {
            let Some(id) = email["id"].as_str() else {
                continue;
            };
            let Some(to) = email["to"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|recipient| recipient["address"].as_str())
                .find(|address| ours(address))
            else {
                continue;
            };
            let code = mfa_testkit::mail::code_in(email["text"].as_str().unwrap_or_default());
            taken.push((id.to_owned(), to.to_owned(), code));
        }
        if taken.is_empty() {
            return Ok(());
        }
        {
            let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
            for (id, to, code) in &taken {
                if !codes.seen.insert(id.clone()) {
                    continue;
                }
                if let Some(code) = code {
                    codes
                        .by_address
                        .entry(to.clone())
                        .or_default()
                        .push(code.clone());
                }
            }
        }
        self.arrived.notify_waiters();
        for (id, _, _) in taken {
            let _ = http.delete(format!("{maildev}/email/{id}")).send().await;
        }
        Ok(())
    }

    /// How many codes reached `to` so far.
    pub fn received(&self, to: &str) -> usize {
        let codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.by_address.get(to).map_or(0, Vec::len)
    }

    /// The `nth` code to `to` (1 is the first), once it arrived, or `None` after `within`.
    pub async fn code(&self, to: &str, nth: usize, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.arrived.notified();
            {
                let codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(code) = codes
                    .by_address
                    .get(to)
                    .and_then(|all| all.get(nth.checked_sub(1)?))
                {
                    return Some(code.clone());
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }
}
