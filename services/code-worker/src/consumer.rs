//! Handles `MfaRequired`: store the challenge with its pending email in one transaction and
//! hand the email to the sender loop (`crate::sender`), which records `CodeSent` or
//! `CodeDeliveryFailed` with the event in the outbox. A redelivered `MfaRequired` queues
//! nothing new: it writes the outcome already recorded, if any, into the outbox again (the
//! same event: harmless while the first row is there, a republish once it was pruned).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use mfa_bus::{EventHandler, HandlerError};
use mfa_code_hash::CodeHasher;
use mfa_store::data_keys::{DataKeyError, DataKeys, Opened};
use shared::domain::OtpCode;
use shared::events::{AccountChange, Envelope, Event, EventType, FeedbackVerdict, MfaRequired};
use shared::personal::Subject;
use shared::topics::Topics;
use tokio::sync::Notify;

use crate::challenges::{ChallengeStore, EmailContext, NewChallenge};
use crate::sender::RetryPolicy;

pub const PRODUCER: &str = "code-worker";

pub struct CodeHandler {
    pub store: ChallengeStore,
    pub hasher: CodeHasher,
    pub topics: Arc<Topics>,
    pub retry: RetryPolicy,
    pub wake_sender: Arc<Notify>,
    /// Open the login's address and user agent, which the email names.
    pub data_keys: DataKeys,
}

impl CodeHandler {
    async fn on_mfa_required(
        &self,
        cause: &Envelope,
        required: &MfaRequired,
    ) -> Result<(), HandlerError> {
        if self
            .store
            .enqueue_recorded_outcome(required.challenge_id, &self.topics.challenges)
            .await?
        {
            return Ok(());
        }
        // The attempt's own sealed fields, carried over by the risk worker.
        let context = EventType::LoginAttempted.seal_context(cause.attempt_id);
        let client = match self.data_keys.open(&required.client, context).await {
            Ok(Opened::Fields(client)) => client,
            Ok(Opened::Erased(key)) => {
                return Err(HandlerError::Skip(format!(
                "MfaRequired {}: personal data erased (data key {key}): the account was deleted",
                required.challenge_id
            )))
            }
            Err(DataKeyError::Db(database)) => return Err(database.into()),
            Err(other) => {
                return Err(HandlerError::Reject(mfa_runtime::supervise::error_chain(
                    &other,
                )))
            }
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
                sealed_code: self.hasher.seal(required.challenge_id, &code),
                email: EmailContext {
                    platform: required.platform,
                    ip: client.ip,
                    user_agent: client.user_agent,
                    locale: required.locale,
                },
                give_up_at: shared::time::saturating_add(Utc::now(), self.retry.retry_window)
                    .min(required.expires_at),
                mfa_required_at: cause.occurred_at,
            })
            .await?;
        // The email is the sender loop's job from here; the partition moves on.
        self.wake_sender.notify_one();
        tracing::info!(challenge_id = %required.challenge_id, "challenge stored, email queued");
        Ok(())
    }
}

#[async_trait]
impl EventHandler for CodeHandler {
    async fn handle(&self, envelope: Envelope, _key: &str) -> Result<(), HandlerError> {
        match &envelope.event {
            Event::MfaRequired(required) => self.on_mfa_required(&envelope, required).await,
            Event::AccountChanged(changed) => {
                match changed.change {
                    AccountChange::PasswordChanged | AccountChange::Disabled => {
                        self.store.invalidate_pending(changed.user_id).await?
                    }
                    AccountChange::Deleted => {
                        self.data_keys.forget(Subject::User(changed.user_id));
                        self.store.delete_user(changed.user_id).await?
                    }
                    AccountChange::Enabled
                    | AccountChange::HistoryReset
                    | AccountChange::FirstFactorsChanged { .. } => {}
                }
                Ok(())
            }
            // Someone else had the password: a code still pending for the user (the reported
            // login's, or another's in flight) stops working, as after a password change. A
            // verify answers `revoked`; the user logs in again for a fresh one.
            Event::LoginFeedback(feedback) if feedback.verdict == FeedbackVerdict::WasntMe => {
                self.store.invalidate_pending(feedback.user_id).await?;
                Ok(())
            }
            other => Err(HandlerError::Skip(format!(
                "{} is not for the code worker",
                other.event_type()
            ))),
        }
    }
}
