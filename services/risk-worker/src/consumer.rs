//! The live worker's handler: each `LoginAttempted` is read, decided and recorded by
//! `state::decide_login` over PostgreSQL; what follows a decision (the verifier's
//! `MfaSucceeded`, `MfaFailed` and final `LoginApproved`, the code worker's
//! `CodeDeliveryFailed`, `AccountChanged`) is recorded by `state::apply`. `replay` runs the
//! same two over its memory.
//!
//! Personal fields are opened here, at the edge, with the data keys (`mfa_store::data_keys`).
//! A login whose keys were erased (its account deleted while it waited) is skipped: there is
//! no account left to decide for. A key this database does not have, or a ciphertext that
//! does not open, is dead-lettered.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mfa_bus::{EventHandler, HandlerError};
use mfa_store::data_keys::{DataKeyError, DataKeys, Opened};
use shared::domain::ChallengeId;
use shared::events::{AccountChange, Envelope, Event, EventType, LoginAttempted};
use shared::personal::{PseudonymKey, Subject};
use shared::topics::Topics;
use tracing::field::Empty;
use tracing::Instrument;
use uuid::Uuid;

use crate::geo::GeoIp;
use crate::metrics::{Counted, RiskMetrics};
use crate::model::features::Features;
use crate::rules::Policy;
use crate::state::{self, Applied, DecisionIds, LoginError};
use crate::store::RiskStore;

pub const PRODUCER: &str = "risk-worker";

pub struct RiskHandler {
    pub store: RiskStore,
    pub topics: Arc<Topics>,
    pub policy: Policy,
    pub geo: Arc<GeoIp>,
    pub metrics: RiskMetrics,
    pub data_keys: DataKeys,
    /// Keys the state shared by all users (`MFA_PSEUDONYM_KEY`).
    pub pseudonyms: PseudonymKey,
}

/// A data key that cannot be read: a database outage is retried, anything else is a message
/// that can never be read here.
fn unreadable(error: DataKeyError) -> HandlerError {
    match error {
        DataKeyError::Db(database) => HandlerError::from(database),
        other => HandlerError::Reject(mfa_runtime::supervise::error_chain(&other)),
    }
}

impl RiskHandler {
    async fn on_login_attempted(
        &self,
        cause: &Envelope,
        attempt: &LoginAttempted,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        // A redelivered attempt changes nothing: its decision was stored with its outbox row,
        // and the relay publishes (or published) it.
        if self.store.decision(cause.attempt_id).await?.is_some() {
            return Ok(());
        }
        let context = EventType::LoginAttempted.seal_context(cause.attempt_id);
        let client = match self.data_keys.open(&attempt.client, context).await {
            Ok(Opened::Fields(client)) => client,
            Ok(Opened::Erased(key)) => {
                return Err(HandlerError::Skip(format!(
                "LoginAttempted {}: personal data erased (data key {key}): the account was deleted",
                cause.attempt_id
            )))
            }
            Err(error) => return Err(unreadable(error)),
        };
        let features = Features::of(&client, &self.geo);
        let ids = DecisionIds {
            event_id: Uuid::now_v7(),
            challenge_id: ChallengeId::new_random(),
        };
        let mut store = self.store.publishing(&self.topics.risk_decisions, key);
        // A child of the consume span: the reads, the model and the decision's transaction
        // (whose outbox row carries this span's context on to the next service).
        let span = tracing::info_span!("decide", risk_level = Empty, decision = Empty);
        let decision = state::decide_login(
            &mut store,
            cause,
            state::OpenedAttempt {
                attempt,
                client: &client,
                features: &features,
            },
            &self.pseudonyms,
            now,
            ids,
            &self.policy,
        )
        .instrument(span.clone())
        .await
        .map_err(|error| match error {
            LoginError::Malformed(malformed) => HandlerError::Reject(malformed.to_string()),
            LoginError::State(database) => HandlerError::from(database),
        })?;
        let counted = Counted::of(attempt, &decision.event);
        if let Some(counted) = &counted {
            span.record("decision", counted.decision.decision);
            if let Some(level) = counted.level {
                span.record("risk_level", level);
            }
        }
        // Committed by now; a delivery that lost the race to another one stored nothing and
        // counts nothing.
        if let (true, Some(counted)) = (store.stored_decision, &counted) {
            self.metrics.decided(counted);
        }
        tracing::info!(attempt_id = %cause.attempt_id, decision = %decision.event_type(), "decided");
        Ok(())
    }
}

#[async_trait]
impl EventHandler for RiskHandler {
    async fn handle(&self, envelope: Envelope, key: &str) -> Result<(), HandlerError> {
        if let Event::LoginAttempted(attempt) = &envelope.event {
            return self
                .on_login_attempted(&envelope, attempt, key, Utc::now())
                .await;
        }
        let reported = match &envelope.event {
            Event::LoginFeedback(feedback) => {
                let context = EventType::LoginFeedback.seal_context(envelope.attempt_id);
                match self.data_keys.open(&feedback.reported, context).await {
                    Ok(opened) => opened.fields(),
                    Err(error) => return Err(unreadable(error)),
                }
            }
            Event::AccountChanged(changed) if changed.change == AccountChange::Deleted => {
                // Its keys are erased: none of them stays in this process's memory either.
                self.data_keys.forget(Subject::User(changed.user_id));
                None
            }
            _ => None,
        };
        let mut store = self.store.publishing(&self.topics.risk_decisions, key);
        match state::apply(&mut store, &envelope, reported.as_ref()).await? {
            Applied::Recorded => Ok(()),
            Applied::NotFollowed => Err(HandlerError::Skip(format!(
                "{} is not for the risk worker",
                envelope.event_type()
            ))),
        }
    }
}
