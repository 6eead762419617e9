//! `risk-worker replay`: the live model, offline. Reads events as JSON lines (the envelopes
//! published on Kafka) and, for each `LoginAttempted`, writes its decision as one JSON line
//! and flushes before reading on, so a driver can answer a challenge before the next login.
//!
//! It learns as the live worker does: from its own approvals, and from the `MfaSucceeded` or
//! final `LoginApproved` that follows an `MfaRequired` in its input. State is in memory and
//! starts empty; time is each event's `occurred_at`; ids in the output are UUID v5 of the
//! input's event ids. So the same input always gives byte-identical output.
//!
//! Unlike the live worker it does not cap code emails (that depends on deliveries and on
//! the wall clock): every login that needs a code gets `MfaRequired`.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, ChallengeId, CompanyId, PrimaryFactor, UserId};
use shared::events::{
    AccountChange, Envelope, Event, LoginApproved, LoginAttempted, LoginRejected, MfaRequired,
    SCHEMA_VERSION,
};
use uuid::Uuid;

use crate::consumer::PRODUCER;
use crate::engine::{self, StateView};
use crate::geo::GeoIp;
use crate::housekeeping::DECISION_RETENTION;
use crate::model::features::{ClientFacts, Features};
use crate::model::state::MemoryState;
use crate::rules::{Policy, Verdict};

/// Namespaces of the derived ids (random, fixed forever: changing one changes every output).
const DECISION_NAMESPACE: Uuid = Uuid::from_u128(0x6f1b_2c0e_8a4d_4f3b_9e57_1d2a_c3b4_e5f6);
const CHALLENGE_NAMESPACE: Uuid = Uuid::from_u128(0x2d9e_7a41_c0b8_4e62_a1f3_5b6c_7d8e_9f01);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("input line {line}: {reason}")]
    Input { line: u64, reason: String },
    #[error("reading input: {0}")]
    Read(std::io::Error),
    #[error("writing output: {0}")]
    Write(std::io::Error),
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub events: u64,
    pub decisions: u64,
    /// Events of types this build does not know (from a newer producer): skipped.
    pub skipped: u64,
}

pub struct Replay {
    policy: Policy,
    geo: Arc<GeoIp>,
    state: MemoryState,
    /// Logins that need a code, learned if the user passes it.
    awaiting_mfa: HashMap<AttemptId, (UserId, Features, DateTime<Utc>)>,
    last_pruned: Option<DateTime<Utc>>,
    clients: HashMap<String, ClientFacts>,
}

impl Replay {
    pub fn new(policy: Policy, geo: Arc<GeoIp>) -> Self {
        Self {
            policy,
            geo,
            state: MemoryState::default(),
            awaiting_mfa: HashMap::new(),
            last_pruned: None,
            clients: HashMap::new(),
        }
    }

    /// Reads `input` to its end, writing one decision line per `LoginAttempted`.
    pub fn run(
        &mut self,
        mut input: impl BufRead,
        mut output: impl Write,
    ) -> Result<ReplayStats, ReplayError> {
        let mut stats = ReplayStats::default();
        let mut line = String::new();
        let mut number = 0u64;
        loop {
            line.clear();
            if input.read_line(&mut line).map_err(ReplayError::Read)? == 0 {
                return Ok(stats);
            }
            number += 1;
            if line.trim().is_empty() {
                continue;
            }
            let envelope = match Envelope::from_json(line.as_bytes()) {
                Ok(envelope) => envelope,
                Err(shared::events::DecodeError::UnknownType(_)) => {
                    stats.skipped += 1;
                    continue;
                }
                Err(error) => {
                    return Err(ReplayError::Input {
                        line: number,
                        reason: error.to_string(),
                    })
                }
            };
            stats.events += 1;
            if let Some(decision) = self.handle(&envelope) {
                serde_json::to_writer(&mut output, &decision)
                    .map_err(|e| ReplayError::Write(e.into()))?;
                output.write_all(b"\n").map_err(ReplayError::Write)?;
                output.flush().map_err(ReplayError::Write)?;
                stats.decisions += 1;
            }
        }
    }

    /// The decision for a `LoginAttempted`; other events only update the state.
    pub fn handle(&mut self, envelope: &Envelope) -> Option<Envelope> {
        self.prune(envelope.occurred_at);
        match &envelope.event {
            Event::LoginAttempted(attempt) => Some(self.decide(envelope, attempt)),
            Event::MfaSucceeded(_) => {
                self.learn_after_mfa(envelope.attempt_id);
                None
            }
            Event::LoginApproved(approved) if approved.approved_after_mfa => {
                self.learn_after_mfa(envelope.attempt_id);
                None
            }
            Event::AccountChanged(changed) => {
                if matches!(
                    changed.change,
                    AccountChange::HistoryReset | AccountChange::Deleted
                ) {
                    self.state.forget_user(changed.user_id);
                }
                None
            }
            _ => None,
        }
    }

    fn decide(&mut self, cause: &Envelope, attempt: &LoginAttempted) -> Envelope {
        let at = cause.occurred_at;
        let features = self.features(attempt);
        let risk_policy = &self.policy.risk;
        let account = engine::account_key(cause.attempt_id, attempt);
        let ip = engine::ip_key(attempt);
        if let Some(user) = attempt.user_id {
            self.state
                .forget_history_before(user, at, risk_policy.history_window);
        }
        let user = attempt
            .user_id
            .map(|user| self.state.user_facts(user, &features));
        let global = self.state.global(&features);
        let velocity = self.state.velocity(
            attempt.user_id.map(|_| &account),
            &ip,
            at,
            risk_policy.account_failures_window,
            risk_policy.ip_window,
        );
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
        if attempt.primary_factor == PrimaryFactor::Failed || attempt.user_id.is_none() {
            self.state.record_failure(account, ip, at);
        }
        let event = match verdict {
            Verdict::Approve { user_id } => {
                self.state.learn(user_id, &features, at);
                Event::LoginApproved(LoginApproved {
                    user_id,
                    approved_after_mfa: false,
                    challenge_id: None,
                    risk: Some(risk),
                })
            }
            Verdict::RequireMfa { user_id } => {
                self.awaiting_mfa
                    .insert(cause.attempt_id, (user_id, features, at));
                Event::MfaRequired(MfaRequired {
                    user_id,
                    company_id: attempt.company_id.clone().unwrap_or_else(|| {
                        CompanyId::parse("unknown").expect("a valid company id")
                    }),
                    challenge_id: ChallengeId::from_uuid(Uuid::new_v5(
                        &CHALLENGE_NAMESPACE,
                        cause.event_id.as_bytes(),
                    )),
                    expires_at: at
                        + chrono::Duration::from_std(self.policy.code_ttl)
                            .unwrap_or(chrono::Duration::MAX),
                    reasons: risk.reasons.clone(),
                    platform: attempt.platform,
                    ip: attempt.ip,
                    user_agent: attempt.user_agent.clone(),
                    risk: Some(risk),
                })
            }
            Verdict::Reject(reason) => Event::LoginRejected(LoginRejected {
                user_id: attempt.user_id,
                reason,
                risk: Some(risk),
            }),
        };
        Envelope {
            event_id: Uuid::new_v5(&DECISION_NAMESPACE, cause.event_id.as_bytes()),
            schema_version: SCHEMA_VERSION,
            occurred_at: at,
            attempt_id: cause.attempt_id,
            causation_id: Some(cause.event_id),
            producer: PRODUCER.to_owned(),
            event,
        }
    }

    /// The login's features; user-agent strings repeat a lot, so their parses are kept.
    fn features(&mut self, attempt: &LoginAttempted) -> Features {
        const KEPT_PARSES: usize = 100_000;
        let ua = attempt.user_agent.as_str();
        if !self.clients.contains_key(ua) {
            if self.clients.len() >= KEPT_PARSES {
                self.clients.clear();
            }
            self.clients.insert(ua.to_owned(), ClientFacts::parse(ua));
        }
        Features::from_parts(attempt, &self.geo, &self.clients[ua])
    }

    fn learn_after_mfa(&mut self, attempt_id: AttemptId) {
        if let Some((user, features, at)) = self.awaiting_mfa.remove(&attempt_id) {
            self.state.learn(user, &features, at);
        }
    }

    /// Bounds memory on long inputs, with the live worker's retention rules: failures past
    /// the longest velocity window, and logins awaiting MFA past the decision retention.
    fn prune(&mut self, now: DateTime<Utc>) {
        const EVERY: Duration = Duration::from_secs(3600);
        let due = self
            .last_pruned
            .is_none_or(|last| now - last > chrono::Duration::from_std(EVERY).unwrap());
        if !due {
            return;
        }
        self.last_pruned = Some(now);
        let policy = &self.policy.risk;
        let keep = policy.account_failures_window.max(policy.ip_window);
        self.state.forget_failures_before(now, keep);
        let oldest = now - chrono::Duration::from_std(DECISION_RETENTION).unwrap();
        self.awaiting_mfa.retain(|_, (_, _, at)| *at >= oldest);
    }
}
