//! The SMTP server of a run (maildev) and what reached it. A poller reads maildev's REST API,
//! files each email under its challenge (the code worker's Message-ID is
//! `<challenge_id@adaptive-mfa>`), and deletes it from maildev so the list stays short.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use mfa_testkit::mail::code_in;
use mfa_testkit::net::{free_port, wait_for_port};

use crate::process::Process;
use crate::HarnessError;

pub struct Mailbox {
    pub smtp_port: u16,
    pub inbox: Arc<Inbox>,
    _process: Process,
    poller: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct Inbox {
    state: Mutex<InboxState>,
    arrived: Notify,
}

#[derive(Default)]
struct InboxState {
    /// maildev's ids already filed, in case a delete failed.
    filed: HashSet<String>,
    /// The codes that arrived for each challenge, in order (more than one: a repeat).
    codes: HashMap<Uuid, Vec<Option<String>>>,
    /// Emails whose Message-ID names no challenge.
    unrelated: usize,
}

impl Mailbox {
    pub async fn start(maildev: &Path, folder: &Path) -> Result<Self, HarnessError> {
        let (smtp_port, web_port) = (free_port()?, free_port()?);
        let mail_folder = folder.join("mail");
        std::fs::create_dir_all(&mail_folder)
            .map_err(HarnessError::io("create the mail folder"))?;
        let args = vec![
            "--smtp".to_owned(),
            smtp_port.to_string(),
            "--web".to_owned(),
            web_port.to_string(),
            "--ip".to_owned(),
            "127.0.0.1".to_owned(),
            "--mail-directory".to_owned(),
            mail_folder.display().to_string(),
        ];
        let process = Process::spawn("maildev", maildev, &args, &[], &folder.join("maildev.log"))?;
        wait_for_port(smtp_port, Duration::from_secs(30), "maildev SMTP").await?;
        wait_for_port(web_port, Duration::from_secs(30), "maildev web").await?;
        let inbox = Arc::new(Inbox::default());
        let poller = tokio::spawn(poll(format!("http://127.0.0.1:{web_port}"), inbox.clone()));
        Ok(Self {
            smtp_port,
            inbox,
            _process: process,
            poller,
        })
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

async fn poll(base: String, inbox: Arc<Inbox>) {
    let http = reqwest::Client::new();
    loop {
        if let Ok(response) = http.get(format!("{base}/email")).send().await {
            if let Ok(Value::Array(emails)) = response.json::<Value>().await {
                for email in emails {
                    let Some(id) = email["id"].as_str() else {
                        continue;
                    };
                    if inbox.file(id, &email) {
                        let _ = http.delete(format!("{base}/email/{id}")).send().await;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Inbox {
    /// The inbox's state, even after a panic elsewhere while it was held: it is counts and
    /// codes, each update whole, so a reader still sees what arrived.
    fn state(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Files one email from maildev; false if it was filed before.
    fn file(&self, maildev_id: &str, email: &Value) -> bool {
        let mut state = self.state();
        if !state.filed.insert(maildev_id.to_owned()) {
            return false;
        }
        let challenge = email["messageId"]
            .as_str()
            .map(|id| id.trim_matches(|c| c == '<' || c == '>'))
            .and_then(|id| id.strip_suffix("@adaptive-mfa"))
            .and_then(|id| Uuid::parse_str(id).ok());
        match challenge {
            Some(challenge) => {
                let code = email["text"].as_str().and_then(code_in);
                state.codes.entry(challenge).or_default().push(code);
            }
            None => state.unrelated += 1,
        }
        drop(state);
        self.arrived.notify_waiters();
        true
    }

    /// The code of the first email for `challenge`, once it arrived (None after `within`).
    pub async fn wait_for_code(&self, challenge: Uuid, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.arrived.notified();
            if let Some(code) = self.first_code(challenge) {
                return Some(code);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.first_code(challenge);
            }
        }
    }

    fn first_code(&self, challenge: Uuid) -> Option<String> {
        let state = self.state();
        state.codes.get(&challenge)?.first().cloned().flatten()
    }

    /// How many emails arrived for each challenge.
    pub fn emails_per_challenge(&self) -> HashMap<Uuid, usize> {
        let state = self.state();
        state
            .codes
            .iter()
            .map(|(id, codes)| (*id, codes.len()))
            .collect()
    }

    /// Emails whose Message-ID named no challenge, or whose text held no code.
    pub fn malformed(&self) -> usize {
        let state = self.state();
        state.unrelated
            + state
                .codes
                .values()
                .flatten()
                .filter(|code| code.is_none())
                .count()
    }
}
