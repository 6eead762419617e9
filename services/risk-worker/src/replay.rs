//! `risk-worker replay`: the live worker, offline. Reads events as JSON lines (the envelopes
//! published on Kafka) and, for each `LoginAttempted`, writes its decision as one JSON line
//! and flushes before reading on, so a driver can answer a challenge before the next login.
//!
//! It decides with the live worker's code (`state::decide_login` over `MemoryState` instead
//! of PostgreSQL): the same model, and the same caps on code emails (per hour, the minimum
//! gap, the daily ceiling of wrong codes), so a login within the gap of a code still valid
//! gets `CodeThrottled` with that challenge, one with no usable code a new one, and one past
//! the hourly cap with no code to reuse `LoginRejected` (`too_many_codes`, with its
//! `retry_after_secs`). It follows what the live worker follows, as it
//! does: its own approvals and `MfaRequired`s, then the `MfaSucceeded` / final
//! `LoginApproved` (learning), `MfaFailed` (wrong codes; closed challenges),
//! `CodeDeliveryFailed` and `AccountChanged` of its input. State is in memory and starts
//! empty; the clock is each event's `occurred_at` (the live worker's is the wall clock when
//! it decides, a few milliseconds later); ids in the output are UUID v5 of the input's
//! event ids. So the same input always gives byte-identical output. The verifier's and code
//! worker's events in a live log name the live worker's challenge ids: replay finds its own
//! challenge by the attempt it was issued for.
//!
//! A `LoginAttempted` that the live worker dead-letters (a `user_id` without a
//! `company_id`) gets no decision line: it is counted in `ReplayStats::dead_lettered` and
//! replay reads on. A line that is not an event at all stops it (`ReplayError::Input`);
//! events of types this build does not know are skipped and counted.

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, Write};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};
use shared::domain::ChallengeId;
use shared::events::{Envelope, Event, LoginAttempted};
use uuid::Uuid;

use crate::decision::MalformedAttempt;
use crate::geo::GeoIp;
use crate::housekeeping::Retention;
use crate::model::features::{ClientFacts, Features};
use crate::model::state::MemoryState;
use crate::rules::Policy;
use crate::state::{self, DecisionIds, LoginError};

/// Namespaces of the derived ids (random, fixed forever: changing one changes every output).
const DECISION_NAMESPACE: Uuid = Uuid::from_u128(0x6f1b_2c0e_8a4d_4f3b_9e57_1d2a_c3b4_e5f6);
const CHALLENGE_NAMESPACE: Uuid = Uuid::from_u128(0x2d9e_7a41_c0b8_4e62_a1f3_5b6c_7d8e_9f01);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("input line {line}: {reason}")]
    Input { line: u64, reason: String },
    #[error("reading input")]
    Read(#[source] std::io::Error),
    #[error("writing output")]
    Write(#[source] std::io::Error),
    /// Cannot happen: the memory state never waits. Reported rather than looped on.
    #[error("the in-memory state waited")]
    Waited,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub events: u64,
    pub decisions: u64,
    /// Events of types this build does not know (from a newer producer): skipped.
    pub skipped: u64,
    /// `LoginAttempted`s the live worker would dead-letter (`MalformedAttempt`): no decision.
    pub dead_lettered: u64,
}

pub struct Replay {
    policy: Policy,
    geo: Arc<GeoIp>,
    state: MemoryState,
    last_pruned: Option<DateTime<Utc>>,
    clients: HashMap<String, ClientFacts>,
}

impl Replay {
    pub fn new(policy: Policy, geo: Arc<GeoIp>) -> Self {
        Self {
            policy,
            geo,
            state: MemoryState::default(),
            last_pruned: None,
            clients: HashMap::new(),
        }
    }

    /// Reads `input` to its end, writing one decision line per `LoginAttempted`.
    pub fn run(
        &mut self,
        input: impl BufRead,
        output: impl Write,
    ) -> Result<ReplayStats, ReplayError> {
        // The decision flow is shared with the live worker, so it is async; over the memory
        // state every step is done when called, so one poll runs the whole input, with no
        // runtime (and `run` works inside one, as in the end-to-end tests).
        let mut run = pin!(self.run_lines(input, output));
        match run.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(ReplayError::Waited),
        }
    }

    async fn run_lines(
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
            match self.handle(&envelope).await {
                Ok(Some(decision)) => {
                    serde_json::to_writer(&mut output, &decision)
                        .map_err(|e| ReplayError::Write(e.into()))?;
                    output.write_all(b"\n").map_err(ReplayError::Write)?;
                    output.flush().map_err(ReplayError::Write)?;
                    stats.decisions += 1;
                }
                Ok(None) => {}
                Err(MalformedAttempt::UserWithoutCompany) => stats.dead_lettered += 1,
            }
        }
    }

    /// The decision for a `LoginAttempted`; other events only update the state.
    pub async fn handle(
        &mut self,
        envelope: &Envelope,
    ) -> Result<Option<Envelope>, MalformedAttempt> {
        self.prune(envelope.occurred_at);
        let Event::LoginAttempted(attempt) = &envelope.event else {
            // The memory state cannot fail; events it does not follow change nothing.
            let Ok(_) = state::apply(&mut self.state, envelope).await;
            return Ok(None);
        };
        let features = self.features(attempt);
        let ids = DecisionIds {
            event_id: Uuid::new_v5(&DECISION_NAMESPACE, envelope.event_id.as_bytes()),
            challenge_id: ChallengeId::from_uuid(Uuid::new_v5(
                &CHALLENGE_NAMESPACE,
                envelope.event_id.as_bytes(),
            )),
        };
        let decided = state::decide_login(
            &mut self.state,
            envelope,
            attempt,
            &features,
            envelope.occurred_at,
            ids,
            &self.policy,
        )
        .await;
        match decided {
            Ok(decision) => Ok(Some(decision)),
            Err(LoginError::Malformed(malformed)) => Err(malformed),
            Err(LoginError::State(never)) => match never {},
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

    /// Bounds memory on long inputs, with the live worker's retention rules.
    fn prune(&mut self, now: DateTime<Utc>) {
        const EVERY: chrono::Duration = chrono::Duration::hours(1);
        if self.last_pruned.is_some_and(|last| now - last <= EVERY) {
            return;
        }
        self.last_pruned = Some(now);
        self.state.forget_expired(now, &Retention::of(&self.policy));
    }
}
