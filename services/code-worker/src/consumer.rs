//! Handles `MfaRequired`: store the challenge, email the code, publish `CodeSent` or
//! `CodeDeliveryFailed`. A redelivered `MfaRequired` sends nothing: it republishes the outcome
//! already recorded.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use shared::bus::{EventHandler, EventPublisher, HandlerError};
use shared::code_hash::CodeHasher;
use shared::domain::OtpCode;
use shared::events::{AccountChange, CodeDeliveryFailed, CodeSent, Envelope, Event, MfaRequired};
use shared::topics::Topics;

use crate::challenges::{ChallengeStore, NewChallenge};
use crate::email::{CodeEmail, Mailer};

pub const PRODUCER: &str = "code-worker";

pub struct CodeHandler {
    pub store: ChallengeStore,
    pub hasher: CodeHasher,
    pub mailer: Mailer,
    pub publisher: Arc<dyn EventPublisher>,
    pub topics: Arc<Topics>,
}

impl CodeHandler {
    async fn on_mfa_required(
        &self,
        cause: &Envelope,
        required: &MfaRequired,
        key: &str,
    ) -> Result<(), HandlerError> {
        if let Some(outcome) = self.store.outcome(required.challenge_id).await? {
            self.publisher
                .publish(&self.topics.challenges, key, &outcome)
                .await?;
            return Ok(());
        }
        let now = Utc::now();
        let failed = |reason: String| {
            Event::CodeDeliveryFailed(CodeDeliveryFailed {
                user_id: required.user_id,
                challenge_id: required.challenge_id,
                reason,
            })
        };
        let code = OtpCode::generate();
        self.store
            .store(&NewChallenge {
                challenge_id: required.challenge_id,
                attempt_id: cause.attempt_id,
                user_id: required.user_id,
                company_id: required.company_id.clone(),
                code_hash: self.hasher.hash(required.challenge_id, &code),
                expires_at: required.expires_at,
                cause_event_id: cause.event_id,
            })
            .await?;
        let recipient = self.store.recipient(required.user_id).await?;
        let (event, sent) = match recipient {
            None => (failed("the account no longer exists".into()), false),
            Some(_) if required.expires_at <= now => (
                failed("the challenge expired before its email was sent".into()),
                false,
            ),
            Some(to) => {
                let email = CodeEmail {
                    to: &to,
                    code: &code,
                    challenge_id: required.challenge_id,
                    expires_at: required.expires_at,
                    now,
                    platform: required.platform,
                    user_agent: &required.user_agent,
                    ip: required.ip,
                };
                match self.mailer.send(&email).await {
                    Ok(()) => (
                        Event::CodeSent(CodeSent {
                            user_id: required.user_id,
                            challenge_id: required.challenge_id,
                            expires_at: required.expires_at,
                        }),
                        true,
                    ),
                    Err(error) => {
                        tracing::warn!(challenge_id = %required.challenge_id, %error, "code email not sent");
                        (failed(error.to_string()), false)
                    }
                }
            }
        };
        let outcome = Envelope::caused_by(cause, PRODUCER, Utc::now(), event);
        self.store
            .record_outcome(required.challenge_id, &outcome, sent)
            .await?;
        self.publisher
            .publish(&self.topics.challenges, key, &outcome)
            .await?;
        tracing::info!(challenge_id = %required.challenge_id, outcome = %outcome.event_type(), "challenge handled");
        Ok(())
    }
}

#[async_trait]
impl EventHandler for CodeHandler {
    async fn handle(&self, envelope: Envelope, key: &str) -> Result<(), HandlerError> {
        match &envelope.event {
            Event::MfaRequired(required) => self.on_mfa_required(&envelope, required, key).await,
            Event::AccountChanged(changed) => {
                match changed.change {
                    AccountChange::PasswordChanged | AccountChange::Disabled => {
                        self.store.invalidate_pending(changed.user_id).await?
                    }
                    AccountChange::Deleted => self.store.delete_user(changed.user_id).await?,
                    AccountChange::Enabled | AccountChange::HistoryReset => {}
                }
                Ok(())
            }
            other => Err(HandlerError::Skip(format!(
                "{} is not for the code worker",
                other.event_type()
            ))),
        }
    }
}
