//! `risk-eval seal`: a recorded input with its personal fields sealed as the live services
//! seal them (each user's data key for the month, created in a database with a master key),
//! so `throughput` can time replay opening them, and the cost of sealing and opening one
//! login's fields is measured on its own.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mfa_store::data_keys::DataKeys;
use shared::events::{Envelope, Event, EventType};
use shared::personal::{Personal, PseudonymKey, Subject};

/// What sealing a file measured.
#[derive(Debug, Default)]
pub struct SealReport {
    pub events: u64,
    pub sealed: u64,
    /// Sealing the fields with a key in hand: serialising, encrypting.
    pub seal_time: Duration,
    /// Opening them again: decrypting, parsing.
    pub open_time: Duration,
}

impl SealReport {
    pub fn render(&self) -> String {
        let each = |total: Duration| total.as_secs_f64() * 1e6 / self.sealed.max(1) as f64;
        format!(
            "{} events, {} logins sealed: {:.2} µs to seal one login's fields, {:.2} µs to open them (XChaCha20-Poly1305 and JSON, the key in memory)",
            self.events,
            self.sealed,
            each(self.seal_time),
            each(self.open_time)
        )
    }
}

/// Copies `input` to `output`, sealing each `LoginAttempted`'s fields in the clear under its
/// subject's key (an unknown account's: one per attempt, as no email is recorded).
pub async fn seal_lines(
    input: impl BufRead,
    mut output: impl Write,
    keys: &DataKeys,
    pseudonyms: &PseudonymKey,
) -> Result<SealReport> {
    let mut report = SealReport::default();
    for (number, line) in input.lines().enumerate() {
        let line = line.context("reading the input")?;
        if line.trim().is_empty() {
            continue;
        }
        report.events += 1;
        let mut envelope = Envelope::from_json(line.as_bytes())
            .with_context(|| format!("input line {}", number + 1))?;
        if let Event::LoginAttempted(attempt) = &mut envelope.event {
            if let Some(client) = attempt.client.in_clear().cloned() {
                let subject = match attempt.user_id {
                    Some(user) => Subject::User(user),
                    None => Subject::unknown_account(pseudonyms, &envelope.attempt_id.to_string()),
                };
                let (id, key) = keys.sealing_key(subject, envelope.occurred_at).await?;
                let context = EventType::LoginAttempted.seal_context(envelope.attempt_id);
                let started = Instant::now();
                let sealed = Personal::seal(&client, id, &key, context);
                report.seal_time += started.elapsed();
                let started = Instant::now();
                let opened = sealed.open(Some(&key), context);
                report.open_time += started.elapsed();
                anyhow::ensure!(
                    opened.as_ref() == Ok(&client),
                    "a sealed login did not open"
                );
                attempt.client = sealed;
                report.sealed += 1;
            }
        }
        output.write_all(&envelope.to_json())?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(report)
}
