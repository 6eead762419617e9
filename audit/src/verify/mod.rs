//! `mfa-audit verify`: reads a log once, in order, and checks
//! - its **seals and chains** ([`chains`]): every event record sealed, each chain recomputed
//!   from the records' exact bytes and matched with its signed checkpoints; gaps, copies with
//!   other bytes, records moved within a partition, and records no checkpoint covers;
//! - its **checkpoints**: each a `Checkpoint`, signed by a key of the key file that belongs
//!   to the producer it names;
//! - its **schemas**: each event a `shared::events::Envelope` on the topic of its type, from
//!   the producer of its type;
//! - its **offsets** ([`offsets`]): none missing or repeated in a partition;
//! - its **login flows** ([`flows`]): one decision per attempt, a delivery outcome per
//!   `MfaRequired`, every approval after MFA caused by an `MfaSucceeded`, every cause in the
//!   log.
//!
//! A redelivered copy (the same seal and bytes, or the same event sealed twice) is a
//! duplicate: listed, counted, never a violation.
//!
//! **Memory** does not grow with the log: per chain, a leaf (32 bytes) per entry within the
//! window and at most [`chains::HEADS_KEPT`] heads and [`chains::PENDING_MAX`] early entries;
//! per attempt heard of within the window, about half a kilobyte, at most
//! [`Options::max_attempts`] attempts. A log of rate R events/s of event time needs about
//! `R × window × 32 bytes` for the chains plus the attempts of the window; findings are
//! written out as they are found, not kept.

pub mod chains;
pub mod findings;
pub mod flows;
pub mod offsets;
pub mod output;
pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::audit::{Checkpoint, CheckpointError, PublicKeys, Seal, SEAL_HEADER};
use shared::events::{DecodeError, Event};

use self::chains::{Chains, Fate, Place};
use self::findings::{Finding, FindingSink, Kind, Severity, Tally};
use self::flows::Flows;
use self::offsets::Offsets;
use crate::record::LogRecord;
use crate::source::{Malformed, Next, RecordSource, SourceError};

/// How to verify.
#[derive(Debug, Clone)]
pub struct Options {
    /// The producers' public keys (the auditor's key file).
    pub keys: PublicKeys,
    /// How long (event time) an attempt is kept after its last event, and how far back a
    /// redelivered copy is compared with its first copy.
    pub window: Duration,
    /// An attempt incomplete at the end of the log whose last event is this recent is
    /// "open" (info), not a violation.
    pub recent: Duration,
    /// A chain's records after its last checkpoint that start this close to the log's end
    /// are noted, not a violation (0: the log must end covered, as after a clean shutdown).
    pub open_tail: Duration,
    /// The most attempts held at once.
    pub max_attempts: usize,
    /// How a missing offset counts.
    pub offset_gaps: Severity,
}

impl Options {
    pub fn new(keys: PublicKeys) -> Self {
        Self {
            keys,
            window: Duration::from_secs(2 * 3600),
            recent: Duration::from_secs(15 * 60),
            open_tail: Duration::ZERO,
            max_attempts: 500_000,
            offset_gaps: Severity::Violation,
        }
    }
}

/// What a verification read and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Every record read.
    pub records: u64,
    /// Records of the event topics, copies included.
    pub event_records: u64,
    /// Distinct sealed entries of the event topics (copies not counted).
    pub events: u64,
    /// Records of the checkpoints topic.
    pub checkpoints: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints_signed: u64,
    /// Checkpoints compared with, and matching, the recomputed head.
    pub checkpoints_matched: u64,
    /// Records of other topics (requests, dead letters): not part of the audit.
    pub other_records: u64,
    pub chains: usize,
    pub duplicates: u64,
    pub attempts_checked: u64,
    pub peak_attempts_held: usize,
    pub malformed_lines: u64,
    pub violations: u64,
    pub warnings: u64,
    pub infos: u64,
    /// `"<severity> <kind>"` to its count.
    pub by_kind: BTreeMap<String, u64>,
    pub log_from: Option<DateTime<Utc>>,
    pub log_to: Option<DateTime<Utc>>,
    pub elapsed_secs: f64,
    /// Event records verified per second of this run.
    pub events_per_sec: f64,
}

impl Summary {
    pub fn is_clean(&self) -> bool {
        self.violations == 0
    }
}

/// What a topic carries, from its name's last part (`<namespace>.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicKind {
    Events(EventTopic),
    Checkpoints,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventTopic {
    LoginAttempts,
    RiskDecisions,
    Challenges,
    Verifications,
    Accounts,
}

impl TopicKind {
    fn of(topic: &str) -> Self {
        let name = topic.rsplit_once('.').map_or(topic, |(_, name)| name);
        match name {
            "login-attempts" => Self::Events(EventTopic::LoginAttempts),
            "risk-decisions" => Self::Events(EventTopic::RiskDecisions),
            "challenges" => Self::Events(EventTopic::Challenges),
            "verifications" => Self::Events(EventTopic::Verifications),
            "accounts" => Self::Events(EventTopic::Accounts),
            "audit-checkpoints" => Self::Checkpoints,
            _ => Self::Other,
        }
    }
}

/// The topic and producer of each event (`shared::topics`, the services' `PRODUCER`s).
fn expected_home(event: &Event) -> (EventTopic, &'static str) {
    match event {
        Event::LoginAttempted(_) | Event::AccountChanged(_) => (
            if matches!(event, Event::AccountChanged(_)) {
                EventTopic::Accounts
            } else {
                EventTopic::LoginAttempts
            },
            "login-intake",
        ),
        Event::RiskPolicyChanged(_) => (EventTopic::Accounts, "login-intake"),
        // The verifier takes the email links; login-intake the client and admin calls.
        Event::LoginFeedback(feedback) => (
            EventTopic::Accounts,
            match feedback.source {
                shared::events::FeedbackSource::EmailLink => "verifier",
                shared::events::FeedbackSource::Client | shared::events::FeedbackSource::Admin => {
                    "login-intake"
                }
            },
        ),
        Event::LoginApproved(approved) if approved.approved_after_mfa => {
            (EventTopic::Verifications, "verifier")
        }
        Event::LoginApproved(_)
        | Event::MfaRequired(_)
        | Event::LoginRejected(_)
        | Event::CodeThrottled(_) => (EventTopic::RiskDecisions, "risk-worker"),
        Event::CodeSent(_) | Event::CodeDeliveryFailed(_) => {
            (EventTopic::Challenges, "code-worker")
        }
        Event::MfaSucceeded(_) | Event::MfaFailed(_) => (EventTopic::Verifications, "verifier"),
    }
}

/// Maintenance (eviction, gap timeouts) runs every this many records.
const MAINTAIN_EVERY: u64 = 1024;

/// One verification in progress: feed it records in the log's order, then finish it.
pub struct Verifier<'s> {
    options: Options,
    tally: Tally<'s>,
    topics: HashMap<String, (u16, TopicKind)>,
    chains: Chains,
    flows: Flows,
    offsets: Offsets,
    summary: Summary,
    first_ms: Option<i64>,
    now_ms: i64,
    checkpoints_signed: u64,
    started: Instant,
}

impl<'s> Verifier<'s> {
    pub fn new(options: Options, sink: &'s mut dyn FindingSink) -> Self {
        let window_ms = millis(options.window);
        let recent_ms = millis(options.recent);
        let max_attempts = options.max_attempts;
        Self {
            options,
            tally: Tally::new(sink),
            topics: HashMap::new(),
            chains: Chains::default(),
            flows: Flows::new(window_ms, recent_ms, max_attempts),
            offsets: Offsets::default(),
            summary: Summary::default(),
            first_ms: None,
            now_ms: i64::MIN,
            checkpoints_signed: 0,
            started: Instant::now(),
        }
    }

    fn topic(&mut self, name: &str) -> (u16, TopicKind) {
        if let Some(known) = self.topics.get(name) {
            return *known;
        }
        let index = u16::try_from(self.topics.len()).unwrap_or(u16::MAX);
        let entry = (index, TopicKind::of(name));
        self.topics.insert(name.to_owned(), entry);
        entry
    }

    /// Checks one record.
    pub fn record(&mut self, record: &LogRecord) {
        self.summary.records += 1;
        if record.timestamp_ms >= 0 {
            self.first_ms = Some(
                self.first_ms
                    .map_or(record.timestamp_ms, |first| first.min(record.timestamp_ms)),
            );
            self.now_ms = self.now_ms.max(record.timestamp_ms);
        }
        let (topic_index, kind) = self.topic(&record.topic);
        let place = Place {
            topic: &record.topic,
            topic_index,
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
        };
        self.offsets.observe(
            topic_index,
            || place.location(),
            record.partition,
            record.offset,
            self.options.offset_gaps,
            &mut self.tally,
        );
        match kind {
            TopicKind::Events(topic) => self.event(record, topic, &place),
            TopicKind::Checkpoints => self.checkpoint(record, &place),
            TopicKind::Other => self.summary.other_records += 1,
        }
        if self.summary.records.is_multiple_of(MAINTAIN_EVERY) {
            self.maintain();
        }
    }

    fn maintain(&mut self) {
        let window_ms = millis(self.options.window);
        self.chains
            .maintain(self.now_ms, window_ms, &mut self.tally);
        self.flows.evict(self.now_ms, &mut self.tally);
    }

    /// Notes an entry of the source that was not a record.
    pub fn malformed(&mut self, malformed: &Malformed) {
        self.summary.malformed_lines += 1;
        self.tally.report(Finding::violation(
            Kind::MalformedLine,
            format!("{}: {}", malformed.location, malformed.reason),
        ));
    }

    fn event(&mut self, record: &LogRecord, topic: EventTopic, place: &Place<'_>) {
        self.summary.event_records += 1;
        let decoded = schema::decode(&record.value);
        let event_id = decoded.as_ref().ok().map(|envelope| envelope.event_id);
        let seal = match record.header_count(SEAL_HEADER) {
            0 => {
                self.tally.report(
                    Finding::violation(
                        Kind::MissingSeal,
                        "an event record without a seal: not published by a sealing producer",
                    )
                    .events(event_id)
                    .at(place.location()),
                );
                return;
            }
            1 => record
                .header(SEAL_HEADER)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .and_then(|text| text.parse::<Seal>().ok()),
            _ => None,
        };
        let Some(seal) = seal else {
            self.tally.report(
                Finding::violation(
                    Kind::MalformedSeal,
                    format!(
                        "the record's {SEAL_HEADER} header is not one <chain id>:<seq> ({} \
                         headers)",
                        record.header_count(SEAL_HEADER)
                    ),
                )
                .events(event_id)
                .at(place.location()),
            );
            return;
        };
        let leaf = shared::audit::leaf(seal.seq, &record.topic, record.key_bytes(), &record.value);
        let fate = self
            .chains
            .entry(seal, leaf, place, event_id, &mut self.tally);
        if fate == Fate::Copy {
            return;
        }
        self.summary.events += 1;
        let envelope = match decoded {
            Ok(envelope) => envelope,
            Err(DecodeError::UnknownType(name)) => {
                self.tally.report(
                    Finding::warning(
                        Kind::UnknownEventType,
                        format!(
                            "event type {name:?} is unknown to this build (a newer producer?): \
                             sealed and checked, its flow not"
                        ),
                    )
                    .seal(seal)
                    .at(place.location()),
                );
                return;
            }
            Err(DecodeError::Malformed(reason)) => {
                self.tally.report(
                    Finding::violation(
                        Kind::MalformedEvent,
                        format!("not an event envelope: {reason}"),
                    )
                    .seal(seal)
                    .at(place.location()),
                );
                return;
            }
        };
        let (home, producer) = expected_home(&envelope.event);
        let type_name = envelope.event_type();
        if home != topic {
            self.tally.report(
                Finding::violation(
                    Kind::WrongTopic,
                    format!("a {type_name} on {}, which does not carry it", record.topic),
                )
                .events([envelope.event_id])
                .seal(seal)
                .at(place.location()),
            );
        }
        if envelope.producer != producer {
            self.tally.report(
                Finding::violation(
                    Kind::WrongProducer,
                    format!(
                        "a {type_name} from producer {:?}; only {producer} emits it",
                        envelope.producer
                    ),
                )
                .events([envelope.event_id])
                .seal(seal)
                .at(place.location()),
            );
        }
        self.chains.claim(
            seal.chain_id,
            &envelope.producer,
            seal,
            envelope.event_id,
            || place.location(),
            &mut self.tally,
        );
        self.flows.event(
            &envelope,
            &record.value,
            seal,
            record.timestamp_ms,
            &mut self.tally,
        );
    }

    fn checkpoint(&mut self, record: &LogRecord, place: &Place<'_>) {
        self.summary.checkpoints += 1;
        let checkpoint = match Checkpoint::from_json(&record.value) {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                self.tally.report(
                    Finding::violation(Kind::MalformedCheckpoint, error.to_string())
                        .at(place.location()),
                );
                return;
            }
        };
        let keyed_by_chain = record
            .key
            .as_deref()
            .is_some_and(|key| key == checkpoint.chain_id.to_string().as_bytes());
        if !keyed_by_chain {
            self.tally.report(
                Finding::warning(
                    Kind::CheckpointKeyMismatch,
                    format!(
                        "a checkpoint of chain {} keyed otherwise",
                        checkpoint.chain_id
                    ),
                )
                .at(place.location()),
            );
        }
        if let Err(error) = checkpoint.verify(&self.options.keys) {
            let kind = match error {
                CheckpointError::UnknownKey(_) => Kind::CheckpointUnknownKey,
                CheckpointError::WrongProducer { .. } => Kind::CheckpointWrongProducer,
                CheckpointError::BadSignature => Kind::CheckpointBadSignature,
            };
            self.tally.report(
                Finding::violation(
                    kind,
                    format!(
                        "checkpoint of chain {} at seq {} (producer {}, key {}): {error}",
                        checkpoint.chain_id, checkpoint.seq, checkpoint.producer, checkpoint.key_id
                    ),
                )
                .at(place.location()),
            );
            return;
        }
        let digest = match checkpoint.head_digest() {
            Ok(digest) => digest,
            Err(error) => {
                self.tally.report(
                    Finding::violation(Kind::MalformedCheckpoint, error.to_string())
                        .at(place.location()),
                );
                return;
            }
        };
        self.checkpoints_signed += 1;
        self.chains
            .checkpoint(&checkpoint, digest, place.location(), &mut self.tally);
    }

    /// Ends the log: checks what can only be checked at its end, and sums up.
    pub fn finish(mut self) -> Summary {
        let end_ms = self.now_ms.max(0);
        self.chains
            .finish(end_ms, millis(self.options.open_tail), &mut self.tally);
        self.flows.finish(end_ms, &mut self.tally);
        let mut summary = self.summary;
        summary.chains = self.chains.count();
        summary.checkpoints_signed = self.checkpoints_signed;
        summary.checkpoints_matched = self.chains.checkpoints_matched;
        summary.attempts_checked = self.flows.attempts_checked;
        summary.peak_attempts_held = self.flows.peak_attempts;
        for (&(severity, kind), &count) in &self.tally.by_kind {
            match severity {
                Severity::Violation => summary.violations += count,
                Severity::Warning => summary.warnings += count,
                Severity::Info => summary.infos += count,
            }
            if kind == Kind::Duplicate {
                summary.duplicates += count;
            }
            summary
                .by_kind
                .insert(format!("{} {}", severity_label(severity), kind), count);
        }
        summary.log_from = self.first_ms.and_then(DateTime::from_timestamp_millis);
        summary.log_to = (self.now_ms >= 0)
            .then_some(self.now_ms)
            .and_then(DateTime::from_timestamp_millis);
        summary.elapsed_secs = self.started.elapsed().as_secs_f64();
        summary.events_per_sec = summary.event_records as f64 / summary.elapsed_secs.max(1e-9);
        summary
    }
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Violation => "violation",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Verifies every record of `source`, handing findings to `sink` as they are found.
pub fn verify(
    source: &mut dyn RecordSource,
    options: Options,
    sink: &mut dyn FindingSink,
) -> Result<Summary, SourceError> {
    let mut verifier = Verifier::new(options, sink);
    let mut record = LogRecord::default();
    while let Some(next) = source.next_into(&mut record)? {
        match next {
            Next::Record => verifier.record(&record),
            Next::Malformed(malformed) => verifier.malformed(&malformed),
        }
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests;
