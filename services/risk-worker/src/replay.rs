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
//! replay reads on.
//!
//! Personal fields sealed under a data key (schema version 7 on) are opened with the keys
//! `with_data_keys` gives (`risk-worker replay` reads them from the database). A login whose
//! key was erased (its user deleted, or past retention) gets no decision line either: it is
//! counted in `ReplayStats::erased`. Without a key source, a sealed event stops replay with a
//! clear error. A line that is not an event at all stops it (`ReplayError::Input`);
//! events of types this build does not know are skipped and counted.

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, Write};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};
use shared::domain::ChallengeId;
use shared::events::{Envelope, Event, EventType, LoginClient};
use shared::personal::{DataKey, DataKeyId, OpenError, Personal, PseudonymKey, SealContext};
use uuid::Uuid;

use crate::decision::{Learning, MalformedAttempt};
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
    /// A sealed event, and no data key for it (no key source, or the source failed).
    #[error("input line {line}: personal data under data key {key} cannot be read: {reason}")]
    DataKey {
        line: u64,
        key: DataKeyId,
        reason: String,
    },
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
    /// `LoginAttempted`s whose personal data was erased (their data key destroyed): no
    /// decision.
    pub erased: u64,
}

/// Where replay finds the data key of sealed personal fields: `Ok(None)` when it was erased.
pub trait DataKeySource {
    fn key(&mut self, id: &DataKeyId) -> Result<Option<DataKey>, String>;
}

impl DataKeySource for mfa_store::data_keys::BlockingDataKeys {
    fn key(&mut self, id: &DataKeyId) -> Result<Option<DataKey>, String> {
        mfa_store::data_keys::BlockingDataKeys::key(self, id)
            .map_err(|e| mfa_runtime::supervise::error_chain(&e))
    }
}

/// No keys: a sealed event is an error.
struct NoDataKeys;

impl DataKeySource for NoDataKeys {
    fn key(&mut self, _: &DataKeyId) -> Result<Option<DataKey>, String> {
        Err("replay was given no data keys (risk-worker replay reads them from MFA_DATABASE_URL with MFA_MASTER_KEYS)".into())
    }
}

/// What became of one input line.
enum Handled {
    Decided(Box<Envelope>),
    Followed,
    Erased,
}

/// Why a line gave no decision.
enum Unhandled {
    Malformed(MalformedAttempt),
    Key { key: DataKeyId, reason: String },
}

pub struct Replay {
    policy: Policy,
    geo: Arc<GeoIp>,
    state: MemoryState,
    last_pruned: Option<DateTime<Utc>>,
    clients: HashMap<String, ClientFacts>,
    data_keys: Box<dyn DataKeySource + Send>,
    pseudonyms: PseudonymKey,
    /// Logins whose personal data was erased, until their recorded decision (in the input,
    /// from the live worker) says what they counted for in the state shared by all users.
    erased: HashMap<shared::domain::AttemptId, ErasedLogin>,
}

/// An erased login, as far as the log still tells it.
struct ErasedLogin {
    user: Option<shared::domain::UserId>,
    account: crate::model::state::AccountKey,
    at: DateTime<Utc>,
}

/// The key replay hashes the shared counts' values under when it is given none: any key
/// gives the same decisions (values are only compared), but the live worker's
/// (`MFA_PSEUDONYM_KEY`) is needed to count erased logins from their recorded `counted`.
const DEFAULT_PSEUDONYM_KEY: [u8; 32] = [0x5a; 32];

impl Replay {
    pub fn new(policy: Policy, geo: Arc<GeoIp>) -> Self {
        Self {
            policy,
            geo,
            state: MemoryState::default(),
            last_pruned: None,
            clients: HashMap::new(),
            data_keys: Box::new(NoDataKeys),
            pseudonyms: PseudonymKey::from_bytes(DEFAULT_PSEUDONYM_KEY),
            erased: HashMap::new(),
        }
    }

    /// Hashes the shared counts' values as the live worker does (its `MFA_PSEUDONYM_KEY`), so
    /// that a login whose personal data was erased counts from its recorded decision.
    pub fn with_pseudonym_key(mut self, key: PseudonymKey) -> Self {
        self.set_pseudonym_key(key);
        self
    }

    pub fn set_pseudonym_key(&mut self, key: PseudonymKey) {
        self.pseudonyms = key;
    }

    /// A live decision of an erased login: what it counted for in the shared state (global
    /// counts, failures by address), applied as the live worker applied it.
    fn count_erased(&mut self, envelope: &Envelope) {
        if envelope.producer != crate::consumer::PRODUCER {
            return;
        }
        let (counted, learning) = match &envelope.event {
            Event::LoginApproved(approved) if !approved.approved_after_mfa => (
                &approved.counted,
                if approved.risk.as_ref().is_some_and(|r| r.observed.is_some()) {
                    Learning::Never
                } else {
                    Learning::Now
                },
            ),
            Event::MfaRequired(required) => (&required.counted, Learning::AfterMfa),
            Event::CodeThrottled(throttled) => (&throttled.counted, Learning::AfterMfa),
            Event::LoginRejected(rejected) => (&rejected.counted, Learning::Never),
            _ => return,
        };
        let (Some(counted), Some(login)) = (counted, self.erased.remove(&envelope.attempt_id))
        else {
            return;
        };
        let global = Features::from_counted(&counted.values);
        if let Some(ip) = &counted.failure_ip {
            self.state
                .record_failure(login.account, ip.clone(), login.at);
        }
        if let Some(user) = login.user {
            match learning {
                Learning::Now => self.state.learn(user, None, &global, login.at),
                Learning::AfterMfa => self.state.await_mfa_erased(
                    envelope.attempt_id,
                    user,
                    global,
                    login.at,
                    envelope.occurred_at,
                ),
                Learning::Never => {}
            }
        }
    }

    /// Opens sealed personal fields with the keys of `source`.
    pub fn with_data_keys(mut self, source: impl DataKeySource + Send + 'static) -> Self {
        self.set_data_keys(source);
        self
    }

    pub fn set_data_keys(&mut self, source: impl DataKeySource + Send + 'static) {
        self.data_keys = Box::new(source);
    }

    /// Opens `personal`: None when erased.
    fn open<T: serde::Serialize + serde::de::DeserializeOwned + Clone>(
        &mut self,
        personal: &Personal<T>,
        context: SealContext<'_>,
    ) -> Result<Option<T>, Unhandled> {
        let key = match personal.key_id() {
            Some(id) => match self.data_keys.key(&id) {
                Ok(Some(key)) => Some(key),
                Ok(None) => return Ok(None),
                Err(reason) => return Err(Unhandled::Key { key: id, reason }),
            },
            None => None,
        };
        match personal.open(key.as_ref(), context) {
            Ok(fields) => Ok(Some(fields)),
            Err(OpenError::Erased(_)) => Ok(None),
            Err(error @ OpenError::Corrupt(key)) => Err(Unhandled::Key {
                key,
                reason: error.to_string(),
            }),
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
            match self.handle_one(&envelope).await {
                Ok(Handled::Decided(decision)) => {
                    serde_json::to_writer(&mut output, &decision)
                        .map_err(|e| ReplayError::Write(e.into()))?;
                    output.write_all(b"\n").map_err(ReplayError::Write)?;
                    output.flush().map_err(ReplayError::Write)?;
                    stats.decisions += 1;
                }
                Ok(Handled::Followed) => {}
                Ok(Handled::Erased) => stats.erased += 1,
                Err(Unhandled::Malformed(MalformedAttempt::UserWithoutCompany)) => {
                    stats.dead_lettered += 1
                }
                Err(Unhandled::Key { key, reason }) => {
                    return Err(ReplayError::DataKey {
                        line: number,
                        key,
                        reason,
                    })
                }
            }
        }
    }

    /// The decision for a `LoginAttempted`; other events only update the state. None also
    /// for a login whose personal data was erased; an error for one whose key is missing.
    pub async fn handle(&mut self, envelope: &Envelope) -> Result<Option<Envelope>, ReplayError> {
        match self.handle_one(envelope).await {
            Ok(Handled::Decided(decision)) => Ok(Some(*decision)),
            Ok(Handled::Followed | Handled::Erased)
            | Err(Unhandled::Malformed(MalformedAttempt::UserWithoutCompany)) => Ok(None),
            Err(Unhandled::Key { key, reason }) => Err(ReplayError::DataKey {
                line: 0,
                key,
                reason,
            }),
        }
    }

    async fn handle_one(&mut self, envelope: &Envelope) -> Result<Handled, Unhandled> {
        self.prune(envelope.occurred_at);
        let Event::LoginAttempted(attempt) = &envelope.event else {
            let reported = match &envelope.event {
                Event::LoginFeedback(feedback) => self.open(
                    &feedback.reported,
                    EventType::LoginFeedback.seal_context(envelope.attempt_id),
                )?,
                _ => None,
            };
            if !self.erased.is_empty() {
                self.count_erased(envelope);
            }
            // The memory state cannot fail; events it does not follow change nothing.
            let Ok(_) = state::apply(&mut self.state, envelope, reported.as_ref()).await;
            return Ok(Handled::Followed);
        };
        let context = EventType::LoginAttempted.seal_context(envelope.attempt_id);
        let Some(client) = self.open(&attempt.client, context)? else {
            self.erased.insert(
                envelope.attempt_id,
                ErasedLogin {
                    user: attempt.user_id,
                    account: crate::engine::account_key(envelope.attempt_id, attempt),
                    at: envelope.occurred_at,
                },
            );
            return Ok(Handled::Erased);
        };
        let features = self.features(&client);
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
            state::OpenedAttempt {
                attempt,
                client: &client,
                features: &features,
            },
            &self.pseudonyms,
            envelope.occurred_at,
            ids,
            &self.policy,
        )
        .await;
        match decided {
            Ok(decision) => Ok(Handled::Decided(Box::new(decision))),
            Err(LoginError::Malformed(malformed)) => Err(Unhandled::Malformed(malformed)),
            Err(LoginError::State(never)) => match never {},
        }
    }

    /// The login's features; user-agent strings repeat a lot, so their parses are kept.
    fn features(&mut self, client: &LoginClient) -> Features {
        const KEPT_PARSES: usize = 100_000;
        let ua = client.user_agent.as_str();
        if !self.clients.contains_key(ua) {
            if self.clients.len() >= KEPT_PARSES {
                self.clients.clear();
            }
            self.clients.insert(ua.to_owned(), ClientFacts::parse(ua));
        }
        Features::from_parts(client, &self.geo, &self.clients[ua])
    }

    /// Bounds memory on long inputs, with the live worker's retention rules.
    fn prune(&mut self, now: DateTime<Utc>) {
        const EVERY: chrono::Duration = chrono::Duration::hours(1);
        if self.last_pruned.is_some_and(|last| now - last <= EVERY) {
            return;
        }
        self.last_pruned = Some(now);
        self.state.forget_expired(now, &Retention::of(&self.policy));
        // A live decision follows its login within moments; one never recorded never comes.
        self.erased
            .retain(|_, login| now - login.at <= chrono::Duration::days(1));
    }
}
