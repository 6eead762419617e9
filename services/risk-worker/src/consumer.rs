//! Handles `LoginAttempted` (assess, decide, store, publish), the verifier's `MfaSucceeded`
//! and final `LoginApproved` (the login joins the user's history), and what becomes of each challenge
//! (`MfaSucceeded`, `MfaFailed`, `CodeDeliveryFailed`: for the code caps).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mfa_bus::{EventHandler, HandlerError};
use shared::domain::{ChallengeId, PrimaryFactor};
use shared::events::{
    AccountChange, CodeThrottled, Envelope, Event, LoginApproved, LoginAttempted, LoginRejected,
    MfaFailureReason, MfaRequired,
};
use shared::topics::Topics;

use crate::engine::{self, StateView};
use crate::geo::GeoIp;
use crate::model::assess::UserFacts;
use crate::model::features::Features;
use crate::rules::{code_decision, CodeDecision, Policy, Verdict};
use crate::store::{DecisionRecord, RiskStore};

pub const PRODUCER: &str = "risk-worker";

pub struct RiskHandler {
    pub store: RiskStore,
    pub topics: Arc<Topics>,
    pub policy: Policy,
    pub geo: Arc<GeoIp>,
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
        let at = cause.occurred_at;
        let features = Features::of(attempt, &self.geo);
        let policy = &self.policy.risk;
        let account = engine::account_key(cause.attempt_id, attempt);
        let ip = engine::ip_key(attempt);
        let history = match attempt.user_id {
            Some(user_id) => Some(
                self.store
                    .history(user_id, at, policy.history_window)
                    .await?,
            ),
            None => None,
        };
        let user = history.map(|h| UserFacts::from_history(&h.entries, &features));
        let global = self.store.global(&features).await?;
        let velocity = self
            .store
            .velocity(
                attempt.user_id.map(|_| &account),
                &ip,
                at,
                policy.account_failures_window,
                policy.ip_window,
            )
            .await?;
        let (risk, verdict) = engine::evaluate(
            attempt,
            &features,
            at,
            StateView {
                user: user.as_ref(),
                global: &global,
                velocity,
            },
            &self.policy,
        );
        let mut issued_challenge = None;
        let event = match &verdict {
            Verdict::Approve { user_id } => Event::LoginApproved(LoginApproved {
                user_id: *user_id,
                approved_after_mfa: false,
                challenge_id: None,
                risk: Some(risk.clone()),
            }),
            Verdict::RequireMfa { user_id } => {
                let history = self.store.code_history(*user_id, now).await?;
                match code_decision(&history, now, &self.policy.code_caps) {
                    CodeDecision::Issue => {
                        let challenge_id = ChallengeId::new_random();
                        let expires_at = now
                            + chrono::Duration::from_std(self.policy.code_ttl)
                                .unwrap_or(chrono::Duration::MAX);
                        issued_challenge = Some((challenge_id, now, expires_at));
                        Event::MfaRequired(MfaRequired {
                            user_id: *user_id,
                            // login-intake sets both for every known account; an event
                            // without it is malformed and goes to the dead-letter topic.
                            company_id: attempt.company_id.clone().ok_or_else(|| {
                                HandlerError::Reject(
                                    "LoginAttempted has a user_id but no company_id".into(),
                                )
                            })?,
                            challenge_id,
                            expires_at,
                            reasons: risk.reasons.clone(),
                            platform: attempt.platform,
                            ip: attempt.ip,
                            user_agent: attempt.user_agent.clone(),
                            risk: Some(risk.clone()),
                        })
                    }
                    CodeDecision::Reuse {
                        challenge_id,
                        expires_at,
                        reason,
                    } => Event::CodeThrottled(CodeThrottled {
                        user_id: *user_id,
                        challenge_id,
                        expires_at,
                        reason,
                        risk: Some(risk.clone()),
                    }),
                    CodeDecision::Refuse(reason) => Event::LoginRejected(LoginRejected {
                        user_id: Some(*user_id),
                        reason,
                        risk: Some(risk.clone()),
                    }),
                }
            }
            Verdict::Reject(reason) => Event::LoginRejected(LoginRejected {
                user_id: attempt.user_id,
                reason: *reason,
                risk: Some(risk.clone()),
            }),
        };
        let decision = Envelope::caused_by(cause, PRODUCER, now, event);
        self.store
            .record(DecisionRecord {
                attempt_id: cause.attempt_id,
                user_id: attempt.user_id,
                event: &decision,
                topic: &self.topics.risk_decisions,
                key,
                features: &features,
                occurred_at: at,
                failure: (attempt.primary_factor == PrimaryFactor::Failed
                    || attempt.user_id.is_none())
                .then(|| (account.clone(), ip.clone())),
                learn_now: matches!(verdict, Verdict::Approve { .. }),
                issued_challenge,
            })
            .await?;
        tracing::info!(attempt_id = %cause.attempt_id, decision = %decision.event_type(), "decided");
        Ok(())
    }
}

#[async_trait]
impl EventHandler for RiskHandler {
    async fn handle(&self, envelope: Envelope, key: &str) -> Result<(), HandlerError> {
        match &envelope.event {
            Event::LoginAttempted(attempt) => {
                self.on_login_attempted(&envelope, attempt, key, Utc::now())
                    .await
            }
            Event::LoginApproved(approved) if approved.approved_after_mfa => {
                self.store
                    .learn_after_mfa(envelope.attempt_id, envelope.occurred_at)
                    .await?;
                Ok(())
            }
            Event::MfaSucceeded(succeeded) => {
                // Learning on either event of a passed challenge: whichever comes first.
                self.store
                    .learn_after_mfa(envelope.attempt_id, envelope.occurred_at)
                    .await?;
                self.store
                    .close_challenge(succeeded.challenge_id, envelope.occurred_at)
                    .await?;
                Ok(())
            }
            Event::MfaFailed(failed) => {
                if matches!(
                    failed.reason,
                    MfaFailureReason::InvalidCode | MfaFailureReason::TooManyAttempts
                ) {
                    self.store
                        .record_failed_code(envelope.event_id, failed.user_id, envelope.occurred_at)
                        .await?;
                }
                if failed.reason != MfaFailureReason::InvalidCode {
                    self.store
                        .close_challenge(failed.challenge_id, envelope.occurred_at)
                        .await?;
                }
                Ok(())
            }
            Event::CodeDeliveryFailed(failed) => {
                self.store
                    .close_challenge(failed.challenge_id, envelope.occurred_at)
                    .await?;
                Ok(())
            }
            Event::AccountChanged(changed) => {
                let user_id = changed.user_id;
                match changed.change {
                    AccountChange::HistoryReset => self.store.forget_history(user_id).await?,
                    AccountChange::PasswordChanged | AccountChange::Disabled => {
                        self.store
                            .close_challenges_of(user_id, envelope.occurred_at)
                            .await?
                    }
                    AccountChange::Deleted => self.store.delete_user(user_id).await?,
                    // Login-intake enforces first factors; nothing here depends on them.
                    AccountChange::Enabled | AccountChange::FirstFactorsChanged { .. } => {}
                }
                Ok(())
            }
            other => Err(HandlerError::Skip(format!(
                "{} is not for the risk worker",
                other.event_type()
            ))),
        }
    }
}
