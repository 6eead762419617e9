//! The live worker's handler: each `LoginAttempted` is read, decided and recorded by
//! `state::decide_login` over PostgreSQL; what follows a decision (the verifier's
//! `MfaSucceeded`, `MfaFailed` and final `LoginApproved`, the code worker's
//! `CodeDeliveryFailed`, `AccountChanged`) is recorded by `state::apply`. `replay` runs the
//! same two over its memory.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mfa_bus::{EventHandler, HandlerError};
use shared::domain::ChallengeId;
use shared::events::{Envelope, Event, LoginAttempted};
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
        let features = Features::of(attempt, &self.geo);
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
            attempt,
            &features,
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
        let mut store = self.store.publishing(&self.topics.risk_decisions, key);
        match state::apply(&mut store, &envelope).await? {
            Applied::Recorded => Ok(()),
            Applied::NotFollowed => Err(HandlerError::Skip(format!(
                "{} is not for the risk worker",
                envelope.event_type()
            ))),
        }
    }
}
