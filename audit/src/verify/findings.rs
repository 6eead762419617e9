//! What verification finds: each finding has a kind, a severity, a sentence for a person and
//! the ids (event ids, seals, offsets) that lead to the records.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use uuid::Uuid;

use crate::record::Location;

/// How bad a finding is. Only violations make a log unclean (a non-zero exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Violation,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Violation => "VIOLATION",
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
        })
    }
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $label:literal,)*) => {
        /// What was found. The label is stable: scripts may match on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind { $($(#[$doc])* $name),* }

        impl Kind {
            pub fn label(self) -> &'static str {
                match self { $(Kind::$name => $label),* }
            }
        }
    };
}

kinds! {
    /// An export line that is not a record.
    MalformedLine = "malformed-line",
    /// An event-topic value that is not an `Envelope`.
    MalformedEvent = "malformed-event",
    /// An `event_type` this build does not know: a warning, since readers are built to skip
    /// types a newer producer adds, and the record is still sealed and checked.
    UnknownEventType = "unknown-event-type",
    /// An event on a topic that does not carry its type.
    WrongTopic = "wrong-topic",
    /// An event whose `producer` is not the service that emits its type.
    WrongProducer = "wrong-producer",
    /// A checkpoints-topic value that is not a `Checkpoint`.
    MalformedCheckpoint = "malformed-checkpoint",
    /// A checkpoint record keyed other than by its chain id.
    CheckpointKeyMismatch = "checkpoint-key-mismatch",
    /// An event record without the `mfa-seal` header: not from a sealing producer.
    MissingSeal = "missing-seal",
    /// A seal header that does not read as `<chain id>:<seq>`, or several of them.
    MalformedSeal = "malformed-seal",
    /// A second record with a seal already seen, and other bytes: forged or altered.
    ConflictingCopy = "conflicting-copy",
    /// A second record with a seal seen longer ago than the window: not compared.
    UncomparedCopy = "uncompared-copy",
    /// Seqs missing from a chain: dropped records.
    SeqGap = "seq-gap",
    /// A record of a chain at a later offset than a record with a higher seq, in one
    /// partition: moved.
    Reordered = "reordered",
    /// A chain's head at a checkpoint's seq is not the signed head: a record in the range
    /// was altered, inserted or removed.
    HeadMismatch = "head-mismatch",
    /// A checkpoint signed with a key the key file does not list.
    CheckpointUnknownKey = "checkpoint-unknown-key",
    /// A checkpoint signed with the key of another producer.
    CheckpointWrongProducer = "checkpoint-wrong-producer",
    /// A checkpoint whose signature does not verify.
    CheckpointBadSignature = "checkpoint-bad-signature",
    /// A checkpoint for more entries than the log holds: the tail was dropped.
    CheckpointBeyondLog = "checkpoint-beyond-log",
    /// The events of a chain claim another producer than its checkpoints are signed by.
    ChainProducerMismatch = "chain-producer-mismatch",
    /// Records after a chain's last valid checkpoint: nothing signed covers them.
    NotCovered = "not-covered",
    /// Records after a gap, up to the next checkpoint: their chain could not be recomputed.
    Unchecked = "unchecked",
    /// A checkpoint that came too late (its seq already beyond the kept heads) to compare.
    CheckpointNotChecked = "checkpoint-not-checked",
    /// A redelivered copy: the same seal and bytes, or the same event sealed twice.
    Duplicate = "duplicate",
    /// The same event id with other bytes.
    ConflictingEvent = "conflicting-event",
    /// Offsets missing in a partition.
    OffsetGap = "offset-gap",
    /// An offset repeated, or going back, in a partition (a doubled or moved export line).
    OffsetOrder = "offset-order",
    /// A `LoginAttempted` without a risk decision.
    NoDecision = "no-decision",
    /// A `LoginAttempted` with more than one risk decision.
    SeveralDecisions = "several-decisions",
    /// An `MfaRequired` without `CodeSent` or `CodeDeliveryFailed`.
    NoDeliveryOutcome = "no-delivery-outcome",
    /// The verifier's approval not caused by an `MfaSucceeded` of its challenge.
    ApprovalWithoutMfa = "approval-without-mfa",
    /// A `causation_id` that names no event of the attempt.
    DanglingCause = "dangling-cause",
    /// Events of an attempt whose `LoginAttempted` is not in the log.
    NoLoginAttempted = "no-login-attempted",
    /// An attempt still in progress at the end of the log (recent): not yet a violation.
    Open = "open",
    /// The attempts in memory reached their cap and the window was shortened.
    WindowShortened = "window-shortened",
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<Uuid>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seals: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
}

impl Finding {
    pub fn new(kind: Kind, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            kind,
            severity,
            message: message.into(),
            event_ids: Vec::new(),
            seals: Vec::new(),
            locations: Vec::new(),
        }
    }

    pub fn violation(kind: Kind, message: impl Into<String>) -> Self {
        Self::new(kind, Severity::Violation, message)
    }

    pub fn warning(kind: Kind, message: impl Into<String>) -> Self {
        Self::new(kind, Severity::Warning, message)
    }

    pub fn info(kind: Kind, message: impl Into<String>) -> Self {
        Self::new(kind, Severity::Info, message)
    }

    pub fn events(mut self, ids: impl IntoIterator<Item = Uuid>) -> Self {
        self.event_ids.extend(ids);
        self
    }

    pub fn seal(mut self, seal: impl fmt::Display) -> Self {
        self.seals.push(seal.to_string());
        self
    }

    pub fn at(mut self, location: Location) -> Self {
        self.locations.push(location);
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}] {}", self.severity, self.kind, self.message)?;
        if !self.event_ids.is_empty() {
            let ids: Vec<String> = self.event_ids.iter().map(Uuid::to_string).collect();
            write!(f, "; events {}", ids.join(", "))?;
        }
        if !self.seals.is_empty() {
            write!(f, "; seals {}", self.seals.join(", "))?;
        }
        if !self.locations.is_empty() {
            let at: Vec<String> = self.locations.iter().map(Location::to_string).collect();
            write!(f, "; at {}", at.join(", "))?;
        }
        Ok(())
    }
}

/// Where findings go as they are found: verification keeps none of them, so a log with
/// millions of findings needs no more memory than a clean one.
pub trait FindingSink {
    fn report(&mut self, finding: Finding);
}

/// Keeps every finding: for tests and small logs.
impl FindingSink for Vec<Finding> {
    fn report(&mut self, finding: Finding) {
        self.push(finding);
    }
}

/// Counts findings by severity and kind, and hands each on.
pub(crate) struct Tally<'s> {
    pub(crate) sink: &'s mut dyn FindingSink,
    pub(crate) by_kind: BTreeMap<(Severity, Kind), u64>,
}

impl<'s> Tally<'s> {
    pub(crate) fn new(sink: &'s mut dyn FindingSink) -> Self {
        Self {
            sink,
            by_kind: BTreeMap::new(),
        }
    }

    pub(crate) fn report(&mut self, finding: Finding) {
        *self
            .by_kind
            .entry((finding.severity, finding.kind))
            .or_default() += 1;
        self.sink.report(finding);
    }
}
