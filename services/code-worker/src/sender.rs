//! The sender loop: emails the codes the consumer stored, so a slow or failing SMTP server
//! never holds up the consumer (and every other login in its partition).
//!
//! Each due email is claimed for a lease, sent, and its outcome recorded: `CodeSent` once the
//! SMTP server accepted it; after a failure a retry with back-off, until the give-up time
//! (well inside the code's lifetime), then `CodeDeliveryFailed`. The outcome is recorded
//! with its event in the outbox, in one transaction: the outbox relay publishes it.
//!
//! The one repeat the design allows: a crash after the SMTP server accepted an email and
//! before the outcome was recorded resends it when the lease runs out, with the same
//! Message-ID (the challenge id), so mail systems can drop it. A database that is away at
//! that moment is not a crash: the record is retried while the lease lasts. And a code that
//! was used meanwhile proves its email arrived: the retry records `CodeSent` and sends
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mfa_code_hash::CodeHasher;
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::trace_context::continue_trace;
use shared::events::{CodeDeliveryFailed, CodeSent, Envelope, Event};
use shared::topics::Topics;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::challenges::{ChallengeStore, PendingEmail};
use crate::consumer::PRODUCER;
use crate::email::{CodeEmail, Mailer};
use crate::metrics::CodeMetrics;

/// How the sender retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first retry's wait; each next one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// From the challenge's creation, how long its email may be retried (capped by the
    /// code's expiry).
    pub retry_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            retry_window: Duration::from_secs(5 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (from 1).
    pub fn backoff(&self, attempt: i32) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(16);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// What to do after a failed try: retry at the given time, or give up.
pub fn after_failure(
    policy: &RetryPolicy,
    attempt: i32,
    give_up_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let next = now + chrono::Duration::from_std(policy.backoff(attempt)).ok()?;
    (next < give_up_at).then_some(next)
}

pub struct EmailSender {
    pub store: ChallengeStore,
    pub hasher: CodeHasher,
    pub mailer: Mailer,
    pub topics: Arc<Topics>,
    pub retry: RetryPolicy,
    /// The consumer rings it when it stored an email, so one goes out at once.
    pub wake: Arc<Notify>,
    pub metrics: CodeMetrics,
}

/// Emails sent at once, each on its own task: one slow recipient server holds up no other.
const BATCH: i64 = 16;
/// A claimed email no sender recorded for this long is taken over by another.
const LEASE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

impl EmailSender {
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            if let Err(error) = self.send_due().await {
                tracing::warn!(%error, "sending due code emails failed; retrying");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    async fn send_due(self: &Arc<Self>) -> Result<(), sqlx::Error> {
        loop {
            let due = self.store.claim_due_emails(BATCH, LEASE).await?;
            if due.is_empty() {
                return Ok(());
            }
            let mut sending = tokio::task::JoinSet::new();
            for email in due {
                let sender = Arc::clone(self);
                sending.spawn(async move { sender.send_one(email).await });
            }
            while let Some(done) = sending.join_next().await {
                if let Ok(Err(error)) = done {
                    tracing::warn!(%error, "recording a code email's outcome failed");
                }
            }
        }
    }

    /// Sends one email in a span of the login's trace, continued from the span that stored
    /// the challenge (its consumer's): the outcome recorded here is the login's next step.
    async fn send_one(&self, email: PendingEmail) -> Result<(), sqlx::Error> {
        let span = tracing::info_span!(
            "send code email",
            attempt_id = %email.attempt_id,
            challenge_id = %email.challenge_id,
            attempt = email.attempt,
        );
        continue_trace(&span, email.traceparent.as_deref());
        self.try_sending(email).instrument(span).await
    }

    async fn try_sending(&self, email: PendingEmail) -> Result<(), sqlx::Error> {
        let now = Utc::now();
        let failed = |reason: String| {
            Event::CodeDeliveryFailed(CodeDeliveryFailed {
                user_id: email.user_id,
                challenge_id: email.challenge_id,
                reason,
            })
        };
        if email.code_used {
            return self.record_sent(&email).await;
        }
        let ready = match (
            &email.recipient,
            self.hasher.unseal(email.challenge_id, &email.sealed_code),
        ) {
            (None, _) => Err("the account no longer exists"),
            (_, None) => Err("the pending code cannot be unsealed (secret changed)"),
            _ if !email.still_pending => Err("the challenge ended before its email was sent"),
            _ if email.expires_at <= now => Err("the challenge expired before its email was sent"),
            (Some(to), Some(code)) => Ok((to, code)),
        };
        let (to, code) = match ready {
            Ok(ready) => ready,
            Err(reason) => return self.record(&email, failed(reason.to_owned()), false).await,
        };
        let message = CodeEmail {
            to,
            code: &code,
            challenge_id: email.challenge_id,
            expires_at: email.expires_at,
            now,
            platform: email.context.platform,
            user_agent: &email.context.user_agent,
            ip: email.context.ip,
            locale: email.context.locale,
        };
        self.metrics.send_attempted();
        match self.mailer.send(&message).await {
            Ok(()) => {
                self.metrics.delivered(email.mfa_required_at, Utc::now());
                self.record_sent_while_leased(&email).await
            }
            Err(error) => {
                let error = error.to_string();
                let retry = after_failure(&self.retry, email.attempt, email.give_up_at, Utc::now());
                self.metrics.send_failed(retry.is_some());
                match retry {
                    Some(next) => {
                        tracing::warn!(challenge_id = %email.challenge_id, attempt = email.attempt, %error, "code email not sent; retrying");
                        self.store
                            .retry_later(email.challenge_id, next, &error)
                            .await
                    }
                    None => {
                        tracing::warn!(challenge_id = %email.challenge_id, attempt = email.attempt, %error, "code email given up");
                        self.record(
                            &email,
                            failed(format!("after {} tries: {error}", email.attempt)),
                            false,
                        )
                        .await
                    }
                }
            }
        }
    }

    async fn record_sent(&self, email: &PendingEmail) -> Result<(), sqlx::Error> {
        let sent = Event::CodeSent(CodeSent {
            user_id: email.user_id,
            challenge_id: email.challenge_id,
            expires_at: email.expires_at,
        });
        self.record(email, sent, true).await
    }

    /// The SMTP server took the email: recording that is retried (the database may be
    /// restarting) for as long as the lease keeps the job ours, because once the lease ends
    /// another try sends the email again.
    async fn record_sent_while_leased(&self, email: &PendingEmail) -> Result<(), sqlx::Error> {
        let give_up = tokio::time::Instant::now() + LEASE / 2;
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.record_sent(email).await {
                Ok(()) => return Ok(()),
                Err(error) if tokio::time::Instant::now() + backoff < give_up => {
                    tracing::warn!(challenge_id = %email.challenge_id, %error, "recording a sent code email failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(4));
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn record(
        &self,
        email: &PendingEmail,
        event: Event,
        sent: bool,
    ) -> Result<(), sqlx::Error> {
        let outcome = Envelope::new(
            PRODUCER,
            email.attempt_id,
            Some(email.cause_event_id),
            Utc::now(),
            event,
        );
        let recorded = self
            .store
            .record_outcome(email.challenge_id, &outcome, sent, &self.topics.challenges)
            .await?;
        // Once per challenge: an outcome another sender recorded first was counted there.
        if recorded {
            self.metrics.outcome_recorded(&outcome.event);
        }
        tracing::info!(challenge_id = %email.challenge_id, outcome = %outcome.event_type(), "code email handled");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|a| policy.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn retries_stop_before_the_give_up_time() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let give_up_at = now + chrono::Duration::seconds(10);
        assert_eq!(
            after_failure(&policy, 1, give_up_at, now),
            Some(now + chrono::Duration::seconds(1))
        );
        assert_eq!(
            after_failure(&policy, 4, give_up_at, now),
            Some(now + chrono::Duration::seconds(8))
        );
        assert_eq!(after_failure(&policy, 5, give_up_at, now), None);
    }
}
