//! A realistic signed log, generated: the benchmark's input and the tests' clean log to
//! tamper with.
//!
//! Four producers (login-intake, risk-worker, code-worker, verifier), each with its key and
//! one chain, publish what the real services publish for each login: `LoginAttempted`, one
//! risk decision, for an `MfaRequired` the code email's outcome, then the verifier's tries
//! and its final approval, with realistic payloads, keys (the user id), trace headers and
//! delays between the steps; now and then an admin's `AccountChanged`. Each producer signs a
//! checkpoint every [`SynthConfig::checkpoint_every`] of its events and one at the end (its
//! shutdown). Records come out in timestamp order, as `mfa-audit export` writes them, one at
//! a time: generating millions of events holds only the attempts in flight.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::audit::{AuditSigner, ChainHead, KeyFile, PublicKeys, Seal, SEAL_HEADER};
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, DeviceId, Locale, Platform, PrimaryFactor,
    UserAgent, UserId,
};
use shared::events::{
    AccountChange, AccountChanged, CodeDeliveryFailed, CodeSent, CodeThrottled, Envelope, Event,
    LoginApproved, LoginAttempted, LoginClient, LoginRejected, MfaFailed, MfaFailureReason,
    MfaRequired, MfaSucceeded, RejectionReason, ReportedClient, RiskAssessment, RiskLevel,
    RiskReason, ThrottleReason,
};
use shared::personal::Personal;
use shared::topics::Topics;
use uuid::Uuid;

use crate::record::LogRecord;
use crate::source::{Next, RecordSource, SourceError};

/// The producing services, as their events name them.
pub const PRODUCERS: [&str; 4] = ["login-intake", "risk-worker", "code-worker", "verifier"];

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub namespace: String,
    /// About this many event records (the attempts under way at the end are completed).
    pub events: u64,
    /// The first login's time.
    pub start: DateTime<Utc>,
    /// Logins started per second of event time.
    pub logins_per_sec: f64,
    /// A checkpoint after every this many events of a producer.
    pub checkpoint_every: u64,
    pub partitions: i32,
    pub seed: u64,
}

impl SynthConfig {
    pub fn new(events: u64) -> Self {
        Self {
            namespace: "mfa".to_owned(),
            events,
            start: DateTime::from_timestamp_millis(1_764_600_000_000).unwrap_or_default(),
            logins_per_sec: 25.0,
            checkpoint_every: 1_000,
            partitions: 3,
            seed: 1,
        }
    }
}

/// The producers' signing keys.
#[derive(Debug, Clone)]
pub struct SynthKeys {
    pub signers: Vec<AuditSigner>,
}

impl SynthKeys {
    /// A fresh key pair per producer, with key ids `<producer>-1`.
    pub fn generate() -> Self {
        Self {
            signers: PRODUCERS
                .iter()
                .map(|producer| AuditSigner::generate(producer, &format!("{producer}-1")).1)
                .collect(),
        }
    }

    /// The auditor's key file.
    pub fn key_file(&self) -> KeyFile {
        KeyFile {
            keys: self.signers.iter().map(AuditSigner::public_key).collect(),
        }
    }

    #[expect(
        clippy::expect_used,
        reason = "the entries come from valid signers: they always parse"
    )]
    pub fn public_keys(&self) -> PublicKeys {
        PublicKeys::from_entries(&self.key_file().keys).expect("generated keys are valid")
    }
}

struct ProducerChain {
    signer: AuditSigner,
    chain_id: Uuid,
    head: ChainHead,
    since_checkpoint: u64,
}

/// The next thing an attempt does.
#[derive(Debug, Clone, Copy)]
enum Step {
    Attempted,
    Decide,
    Deliver,
    Verify {
        tries_left: u8,
    },
    AccountChange,
    /// The user's answer to the "someone has your password" email of a code that expired.
    Feedback,
}

struct InFlight {
    attempt_id: AttemptId,
    user: usize,
    step: Step,
    /// The event the next one is caused by.
    cause: Option<Uuid>,
    /// The MfaRequired's id: the verifier's events are caused by it.
    required: Option<Uuid>,
    challenge: Option<ChallengeId>,
}

struct User {
    id: UserId,
    company: CompanyId,
    user_agent: UserAgent,
    device: DeviceId,
    ip: IpAddr,
    platform: Platform,
}

impl User {
    fn client(&self) -> LoginClient {
        LoginClient {
            ip: self.ip,
            user_agent: self.user_agent.clone(),
            device_id: Some(self.device.clone()),
        }
    }
}

/// The generator; a [`RecordSource`] of its log.
pub struct Synth {
    config: SynthConfig,
    topics: Topics,
    rng: StdRng,
    chains: Vec<ProducerChain>,
    users: Vec<User>,
    /// Scheduled steps by (time, tie-breaker).
    schedule: BinaryHeap<Reverse<(i64, u64)>>,
    in_flight: HashMap<u64, InFlight>,
    next_id: u64,
    next_login_ms: i64,
    emitted: u64,
    ready: VecDeque<LogRecord>,
    offsets: HashMap<(String, i32), i64>,
    last_ms: i64,
    stopped_starting: bool,
    finished: bool,
    /// Admin operations so far: every other one sets a company's risk policy.
    admin_operations: u64,
}

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Workspace/4.12.0 (iPhone; iOS 18.1; Scale/3.00)",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];

impl Synth {
    pub fn new(config: SynthConfig, keys: &SynthKeys) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let chains = keys
            .signers
            .iter()
            .map(|signer| {
                let chain_id = Uuid::from_u128(rng.gen());
                ProducerChain {
                    signer: signer.clone(),
                    chain_id,
                    head: ChainHead::genesis(chain_id),
                    since_checkpoint: 0,
                }
            })
            .collect();
        let users = (0..2_000)
            .map(|index| User {
                id: UserId::from_uuid(Uuid::from_u128(rng.gen())),
                company: parsed(CompanyId::parse(&format!("company-{}", index % 40))),
                user_agent: parsed(UserAgent::parse(USER_AGENTS[index % USER_AGENTS.len()])),
                device: parsed(DeviceId::parse(&format!("web:{:016x}", rng.gen::<u64>()))),
                ip: IpAddr::V4(Ipv4Addr::new(
                    81,
                    rng.gen_range(0..=255),
                    rng.gen_range(0..=255),
                    rng.gen_range(1..=254),
                )),
                platform: [
                    Platform::Dashboard,
                    Platform::Workspace,
                    Platform::Ios,
                    Platform::Android,
                ][index % 4],
            })
            .collect();
        let start_ms = config.start.timestamp_millis();
        Self {
            topics: Topics::new(&config.namespace),
            config,
            rng,
            chains,
            users,
            schedule: BinaryHeap::new(),
            in_flight: HashMap::new(),
            next_id: 0,
            next_login_ms: start_ms,
            emitted: 0,
            ready: VecDeque::new(),
            offsets: HashMap::new(),
            last_ms: start_ms,
            stopped_starting: false,
            finished: false,
            admin_operations: 0,
        }
    }

    /// Every record, in order (for small logs: tests).
    pub fn collect(mut self) -> Vec<LogRecord> {
        let mut records = Vec::new();
        while let Some(record) = self.next_record() {
            records.push(record);
        }
        records
    }

    /// The chain id of `producer` in this log.
    pub fn chain_of(&self, producer: &str) -> Option<Uuid> {
        self.chains
            .iter()
            .find(|chain| chain.signer.producer == producer)
            .map(|chain| chain.chain_id)
    }

    fn schedule(&mut self, at_ms: i64, flight: InFlight) {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.insert(id, flight);
        self.schedule.push(Reverse((at_ms, id)));
    }

    fn next_record(&mut self) -> Option<LogRecord> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(record);
            }
            if self.finished {
                return None;
            }
            self.advance();
        }
    }

    /// Runs the simulation until it emits something (or ends).
    fn advance(&mut self) {
        // Once enough is under way no login starts again: one would start in the past.
        self.stopped_starting |=
            self.emitted + 2 * self.in_flight.len() as u64 >= self.config.events;
        let starting = !self.stopped_starting;
        let next_step = self.schedule.peek().map(|Reverse((at, _))| *at);
        if starting && next_step.is_none_or(|at| at >= self.next_login_ms) {
            let at = self.next_login_ms;
            let gap = 1000.0 / self.config.logins_per_sec.max(0.001);
            self.next_login_ms += (gap * self.rng.gen_range(0.5..1.5)) as i64 + 1;
            let user = self.rng.gen_range(0..self.users.len());
            let step = if self.rng.gen_bool(0.01) {
                Step::AccountChange
            } else {
                Step::Attempted
            };
            let attempt_id = AttemptId::from_uuid(Uuid::from_u128(self.rng.gen()));
            self.schedule(
                at,
                InFlight {
                    attempt_id,
                    user,
                    step,
                    cause: None,
                    required: None,
                    challenge: None,
                },
            );
            return;
        }
        let Some(Reverse((at, id))) = self.schedule.pop() else {
            self.finish();
            return;
        };
        let Some(flight) = self.in_flight.remove(&id) else {
            return;
        };
        self.run_step(at, flight);
    }

    fn risk(&mut self, level: RiskLevel, reasons: Vec<RiskReason>) -> RiskAssessment {
        RiskAssessment {
            score: self.rng.gen_range(-3.0..4.0),
            level,
            reasons,
            model_version: "adaptive-1".to_owned(),
            policy_version: None,
            observed: None,
        }
    }

    fn run_step(&mut self, at: i64, mut flight: InFlight) {
        let now = DateTime::from_timestamp_millis(at).unwrap_or_default();
        let user = &self.users[flight.user];
        let (user_id, company) = (user.id, user.company.clone());
        match flight.step {
            Step::AccountChange => {
                let change = [
                    AccountChange::PasswordChanged,
                    AccountChange::HistoryReset,
                    AccountChange::Enabled,
                ][self.rng.gen_range(0..3)];
                self.admin_operations += 1;
                // Every other admin operation sets the user's company's risk policy instead
                // (a global count: each company's versions increase).
                let event = if self.admin_operations.is_multiple_of(2) {
                    Event::RiskPolicyChanged(shared::events::RiskPolicyChanged {
                        company_id: company,
                        version: self.admin_operations / 2,
                        policy: shared::events::CompanyRiskPolicy {
                            observe_only: Some(false),
                            ..Default::default()
                        },
                    })
                } else {
                    Event::AccountChanged(AccountChanged { user_id, change })
                };
                self.emit(
                    0,
                    &self.topics.accounts.clone(),
                    user_id,
                    &flight,
                    now,
                    event,
                );
            }
            Step::Attempted => {
                let event = Event::LoginAttempted(LoginAttempted {
                    user_id: Some(user_id),
                    company_id: Some(company),
                    auth_method: AuthMethod::Password,
                    primary_factor: if self.rng.gen_bool(0.05) {
                        PrimaryFactor::Failed
                    } else {
                        PrimaryFactor::Succeeded
                    },
                    privileged: self.rng.gen_bool(0.1),
                    platform: user.platform,
                    client: Personal::Clear(user.client()),
                    locale: Locale::En,
                });
                let id = self.emit(
                    0,
                    &self.topics.login_attempts.clone(),
                    user_id,
                    &flight,
                    now,
                    event,
                );
                flight.cause = Some(id);
                flight.step = Step::Decide;
                let delay = self.rng.gen_range(20..80);
                self.schedule(at + delay, flight);
            }
            Step::Decide => {
                let roll: f64 = self.rng.gen();
                let topic = self.topics.risk_decisions.clone();
                if roll < 0.70 {
                    let risk = self.risk(RiskLevel::Low, vec![]);
                    let event = Event::LoginApproved(LoginApproved {
                        counted: None,
                        user_id,
                        approved_after_mfa: false,
                        challenge_id: None,
                        risk: Some(risk),
                    });
                    self.emit(1, &topic, user_id, &flight, now, event);
                } else if roll < 0.90 {
                    let user = &self.users[flight.user];
                    let platform = user.platform;
                    // As the risk worker does: the attempt's own fields.
                    let client = Personal::Clear(user.client());
                    let challenge = ChallengeId::from_uuid(Uuid::from_u128(self.rng.gen()));
                    let reasons = vec![RiskReason::NewDevice, RiskReason::NewNetwork];
                    let risk = self.risk(RiskLevel::Medium, reasons.clone());
                    let event = Event::MfaRequired(MfaRequired {
                        counted: None,
                        user_id,
                        company_id: company,
                        challenge_id: challenge,
                        expires_at: now + chrono::Duration::minutes(10),
                        reasons,
                        platform,
                        client,
                        locale: Locale::En,
                        risk: Some(risk),
                    });
                    let id = self.emit(1, &topic, user_id, &flight, now, event);
                    flight.cause = Some(id);
                    flight.required = Some(id);
                    flight.challenge = Some(challenge);
                    flight.step = Step::Deliver;
                    let delay = self.rng.gen_range(300..1_500);
                    self.schedule(at + delay, flight);
                } else if roll < 0.97 {
                    let risk = self.risk(RiskLevel::High, vec![RiskReason::FailedAttemptsBurst]);
                    let event = Event::LoginRejected(LoginRejected {
                        counted: None,
                        user_id: Some(user_id),
                        reason: RejectionReason::InvalidCredentials,
                        retry_after_secs: None,
                        risk: Some(risk),
                    });
                    self.emit(1, &topic, user_id, &flight, now, event);
                } else {
                    let risk = self.risk(RiskLevel::Medium, vec![RiskReason::NewDevice]);
                    let event = Event::CodeThrottled(CodeThrottled {
                        counted: None,
                        user_id,
                        challenge_id: ChallengeId::from_uuid(Uuid::from_u128(self.rng.gen())),
                        expires_at: now + chrono::Duration::minutes(8),
                        reason: ThrottleReason::RecentlySent,
                        risk: Some(risk),
                    });
                    self.emit(1, &topic, user_id, &flight, now, event);
                }
            }
            Step::Deliver => {
                let Some(challenge_id) = flight.challenge else {
                    return;
                };
                let topic = self.topics.challenges.clone();
                if self.rng.gen_bool(0.95) {
                    let event = Event::CodeSent(CodeSent {
                        user_id,
                        challenge_id,
                        expires_at: now + chrono::Duration::minutes(9),
                    });
                    self.emit(2, &topic, user_id, &flight, now, event);
                    flight.step = Step::Verify { tries_left: 3 };
                    flight.cause = flight.required;
                    let delay = self.rng.gen_range(8_000..40_000);
                    self.schedule(at + delay, flight);
                } else {
                    let event = Event::CodeDeliveryFailed(CodeDeliveryFailed {
                        user_id,
                        challenge_id,
                        reason: "after 5 tries: 421 4.7.0 try again later".to_owned(),
                    });
                    self.emit(2, &topic, user_id, &flight, now, event);
                }
            }
            Step::Feedback => {
                let user = &self.users[flight.user];
                let reported = Personal::Clear(ReportedClient {
                    ip: Some(user.ip),
                    device_id: Some(user.device.clone()),
                });
                let verdict = if self.rng.gen_bool(0.5) {
                    shared::events::FeedbackVerdict::WasMe
                } else {
                    shared::events::FeedbackVerdict::WasntMe
                };
                let event = Event::LoginFeedback(shared::events::LoginFeedback {
                    user_id,
                    company_id: company,
                    verdict,
                    source: shared::events::FeedbackSource::EmailLink,
                    reported,
                });
                self.emit(
                    3,
                    &self.topics.accounts.clone(),
                    user_id,
                    &flight,
                    now,
                    event,
                );
            }
            Step::Verify { tries_left } => {
                let Some(challenge_id) = flight.challenge else {
                    return;
                };
                let topic = self.topics.verifications.clone();
                if tries_left > 1 && self.rng.gen_bool(0.12) {
                    let event = Event::MfaFailed(MfaFailed {
                        user_id,
                        challenge_id,
                        reason: MfaFailureReason::InvalidCode,
                        attempts_remaining: u32::from(tries_left) - 1,
                    });
                    self.emit(3, &topic, user_id, &flight, now, event);
                    flight.step = Step::Verify {
                        tries_left: tries_left - 1,
                    };
                    let delay = self.rng.gen_range(3_000..15_000);
                    self.schedule(at + delay, flight);
                } else if self.rng.gen_bool(0.04) {
                    let event = Event::MfaFailed(MfaFailed {
                        user_id,
                        challenge_id,
                        reason: MfaFailureReason::Expired,
                        attempts_remaining: 0,
                    });
                    self.emit(3, &topic, user_id, &flight, now, event);
                    // Some users answer the notification, minutes to hours later: past the
                    // verifier's window too, where the feedback stands alone.
                    if self.rng.gen_bool(0.3) {
                        flight.step = Step::Feedback;
                        flight.cause = None;
                        let delay = self.rng.gen_range(60_000..10_800_000);
                        self.schedule(at + delay, flight);
                    }
                } else {
                    let event = Event::MfaSucceeded(MfaSucceeded {
                        user_id,
                        challenge_id,
                    });
                    let succeeded = self.emit(3, &topic, user_id, &flight, now, event);
                    flight.cause = Some(succeeded);
                    let event = Event::LoginApproved(LoginApproved {
                        counted: None,
                        user_id,
                        approved_after_mfa: true,
                        challenge_id: Some(challenge_id),
                        risk: None,
                    });
                    self.emit(3, &topic, user_id, &flight, now, event);
                }
            }
        }
    }

    /// Publishes an event of producer `producer` (an index of [`PRODUCERS`]): sealed, chained,
    /// and checkpointed when due. Returns its event id.
    fn emit(
        &mut self,
        producer: usize,
        topic: &str,
        key: UserId,
        flight: &InFlight,
        now: DateTime<Utc>,
        event: Event,
    ) -> Uuid {
        let cause = match flight.step {
            // The verifier's first event is caused by the MfaRequired, its approval by the
            // success (set by the caller as the cause).
            Step::Verify { .. } => flight.cause.or(flight.required),
            _ => flight.cause,
        };
        let mut envelope = Envelope::new(PRODUCERS[producer], flight.attempt_id, cause, now, event);
        envelope.event_id = Uuid::from_u128(self.rng.gen());
        let value = envelope.to_json();
        let key = key.to_string();
        let chain = &mut self.chains[producer];
        let seq = chain.head.seq + 1;
        chain.head = chain.head.append_record(topic, key.as_bytes(), &value);
        chain.since_checkpoint += 1;
        let seal = Seal {
            chain_id: chain.chain_id,
            seq,
        }
        .to_string();
        let traceparent = format!(
            "00-{:032x}-{:016x}-01",
            self.rng.gen::<u128>(),
            self.rng.gen::<u64>()
        );
        let at_ms = now.timestamp_millis();
        self.last_ms = self.last_ms.max(at_ms);
        let record = self.record(
            topic,
            &key,
            at_ms,
            &[
                (SEAL_HEADER, seal.as_bytes()),
                ("traceparent", traceparent.as_bytes()),
            ],
            value,
        );
        self.ready.push_back(record);
        self.emitted += 1;
        if self.chains[producer].since_checkpoint >= self.config.checkpoint_every {
            self.checkpoint(producer, now);
        }
        envelope.event_id
    }

    fn checkpoint(&mut self, producer: usize, now: DateTime<Utc>) {
        let chain = &mut self.chains[producer];
        chain.since_checkpoint = 0;
        let checkpoint = chain.signer.checkpoint(chain.chain_id, &chain.head, now);
        let key = chain.chain_id.to_string();
        let topic = self.topics.audit_checkpoints.clone();
        let record = self.record(
            &topic,
            &key,
            now.timestamp_millis(),
            &[],
            checkpoint.to_json(),
        );
        self.ready.push_back(record);
    }

    fn record(
        &mut self,
        topic: &str,
        key: &str,
        timestamp_ms: i64,
        headers: &[(&str, &[u8])],
        value: Vec<u8>,
    ) -> LogRecord {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let partition = (hasher.finish() % self.config.partitions.max(1) as u64) as i32;
        let offset = self
            .offsets
            .entry((topic.to_owned(), partition))
            .or_insert(0);
        let record = LogRecord {
            topic: topic.to_owned(),
            partition,
            offset: *offset,
            timestamp_ms,
            key: Some(key.as_bytes().to_vec()),
            headers: Vec::new(),
            value,
        };
        *offset += 1;
        let mut record = record;
        record.set_headers(headers.iter().map(|(name, value)| (*name, Some(*value))));
        record
    }

    /// The producers' shutdown: a last checkpoint of each chain with entries it does not cover.
    fn finish(&mut self) {
        self.finished = true;
        let now = DateTime::from_timestamp_millis(self.last_ms + 1).unwrap_or_default();
        for producer in 0..self.chains.len() {
            if self.chains[producer].since_checkpoint > 0 {
                self.checkpoint(producer, now);
            }
        }
    }
}

impl RecordSource for Synth {
    fn next_into(&mut self, record: &mut LogRecord) -> Result<Option<Next>, SourceError> {
        Ok(self.next_record().map(|next| {
            *record = next;
            Next::Record
        }))
    }
}

#[expect(
    clippy::expect_used,
    reason = "the generator's ids and user agents are constants of valid form"
)]
fn parsed<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.expect("a generated value of valid form")
}

/// A log built record by record, sealed and signed as the producers do: for tests that need
/// a flow of their own (a missing decision, a republished event) or a checkpoint at a
/// chosen place.
pub struct LogBuilder {
    topics: Topics,
    chains: Vec<ProducerChain>,
    records: Vec<LogRecord>,
    offsets: HashMap<(String, i32), i64>,
    partitions: i32,
}

impl LogBuilder {
    pub fn new(namespace: &str, keys: &SynthKeys) -> Self {
        Self {
            topics: Topics::new(namespace),
            chains: keys
                .signers
                .iter()
                .map(|signer| {
                    let chain_id = Uuid::new_v4();
                    ProducerChain {
                        signer: signer.clone(),
                        chain_id,
                        head: ChainHead::genesis(chain_id),
                        since_checkpoint: 0,
                    }
                })
                .collect(),
            records: Vec::new(),
            offsets: HashMap::new(),
            partitions: 2,
        }
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    fn producer_index(&self, producer: &str) -> Option<usize> {
        self.chains
            .iter()
            .position(|chain| chain.signer.producer == producer)
    }

    /// The chain id of `producer`.
    pub fn chain_of(&self, producer: &str) -> Option<Uuid> {
        self.producer_index(producer)
            .map(|index| self.chains[index].chain_id)
    }

    /// Publishes `value` on `topic` as `producer` does: the next seq of its chain. `None`
    /// for a producer without a key.
    pub fn publish(
        &mut self,
        producer: &str,
        topic: &str,
        key: &str,
        value: &[u8],
        timestamp_ms: i64,
    ) -> Option<Seal> {
        let index = self.producer_index(producer)?;
        let chain = &mut self.chains[index];
        chain.head = chain.head.append_record(topic, key.as_bytes(), value);
        chain.since_checkpoint += 1;
        let seal = Seal {
            chain_id: chain.chain_id,
            seq: chain.head.seq,
        };
        let header = seal.to_string();
        self.push(
            topic,
            key,
            timestamp_ms,
            &[(SEAL_HEADER, header.as_bytes())],
            value.to_vec(),
        );
        Some(seal)
    }

    /// Publishes an event on its topic, from its producer, keyed by `key`, at its
    /// `occurred_at`.
    pub fn event(&mut self, envelope: &Envelope, key: &str) -> Option<Seal> {
        let topic = match &envelope.event {
            Event::LoginAttempted(_) => &self.topics.login_attempts,
            Event::AccountChanged(_) | Event::RiskPolicyChanged(_) | Event::LoginFeedback(_) => {
                &self.topics.accounts
            }
            Event::LoginApproved(approved) if approved.approved_after_mfa => {
                &self.topics.verifications
            }
            Event::LoginApproved(_)
            | Event::MfaRequired(_)
            | Event::LoginRejected(_)
            | Event::CodeThrottled(_) => &self.topics.risk_decisions,
            Event::CodeSent(_) | Event::CodeDeliveryFailed(_) => &self.topics.challenges,
            Event::MfaSucceeded(_) | Event::MfaFailed(_) => &self.topics.verifications,
        }
        .clone();
        let producer = envelope.producer.clone();
        self.publish(
            &producer,
            &topic,
            key,
            &envelope.to_json(),
            envelope.occurred_at.timestamp_millis(),
        )
    }

    /// Signs and publishes a checkpoint of `producer`'s chain as it is now.
    pub fn checkpoint(&mut self, producer: &str, timestamp_ms: i64) {
        let Some(index) = self.producer_index(producer) else {
            return;
        };
        let chain = &mut self.chains[index];
        chain.since_checkpoint = 0;
        let now = DateTime::from_timestamp_millis(timestamp_ms).unwrap_or_default();
        let checkpoint = chain.signer.checkpoint(chain.chain_id, &chain.head, now);
        let key = chain.chain_id.to_string();
        let topic = self.topics.audit_checkpoints.clone();
        self.push(&topic, &key, timestamp_ms, &[], checkpoint.to_json());
    }

    /// A checkpoint of every chain with entries not yet covered (the producers' shutdown).
    pub fn checkpoint_all(&mut self, timestamp_ms: i64) {
        let due: Vec<String> = self
            .chains
            .iter()
            .filter(|chain| chain.since_checkpoint > 0)
            .map(|chain| chain.signer.producer.clone())
            .collect();
        for producer in due {
            self.checkpoint(&producer, timestamp_ms);
        }
    }

    /// Appends a record as it is (a copy, a forgery): at the next offset of its partition.
    pub fn push_raw(&mut self, mut record: LogRecord) {
        let offset = self
            .offsets
            .entry((record.topic.clone(), record.partition))
            .or_insert(0);
        record.offset = *offset;
        *offset += 1;
        self.records.push(record);
    }

    fn push(
        &mut self,
        topic: &str,
        key: &str,
        timestamp_ms: i64,
        headers: &[(&str, &[u8])],
        value: Vec<u8>,
    ) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let partition = (hasher.finish() % self.partitions.max(1) as u64) as i32;
        let mut record = LogRecord {
            topic: topic.to_owned(),
            partition,
            offset: 0,
            timestamp_ms,
            key: Some(key.as_bytes().to_vec()),
            headers: Vec::new(),
            value,
        };
        record.set_headers(headers.iter().map(|(name, value)| (*name, Some(*value))));
        self.push_raw(record);
    }

    /// The log so far, in the order built.
    pub fn records(&self) -> &[LogRecord] {
        &self.records
    }

    pub fn into_records(self) -> Vec<LogRecord> {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_in_timestamp_order_with_contiguous_offsets() {
        let mut config = SynthConfig::new(2_000);
        config.logins_per_sec = 4.0;
        let records = Synth::new(config, &SynthKeys::generate()).collect();
        for pair in records.windows(2) {
            assert!(
                pair[0].timestamp_ms <= pair[1].timestamp_ms,
                "{} at {} then {} at {}",
                pair[0].location(),
                pair[0].timestamp_ms,
                pair[1].location(),
                pair[1].timestamp_ms
            );
        }
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        for record in &records {
            let expected = next
                .entry((record.topic.clone(), record.partition))
                .or_insert(0);
            assert_eq!(record.offset, *expected, "{}", record.location());
            *expected += 1;
        }
    }
}
