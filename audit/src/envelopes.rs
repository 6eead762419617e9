//! The log's events, for the commands that read the story in them (`timeline`, `report`,
//! `recheck`): the records of the event topics, decoded, each event once.
//!
//! What it leaves out, and says so on standard error: records of other topics (checkpoints,
//! login requests, dead letters) silently; values that are not events, named by their place;
//! events of a type this build does not know, counted. A redelivered copy (the same
//! `event_id`, at-least-once delivery) is read once: ids are remembered for [`DEDUP_WINDOW`]
//! of event time, so memory stays bounded on a log of any length (a redelivery comes within
//! moments of the first copy; `verify` is the command that proves it).

use std::collections::HashMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use shared::events::{DecodeError, Envelope};
use uuid::Uuid;

use crate::record::LogRecord;
use crate::source::{Next, RecordSource, SourceError};

/// How long an event id is remembered to drop its copies.
pub const DEDUP_WINDOW: chrono::Duration = chrono::Duration::hours(2);

/// The topic suffixes that carry events (`shared::topics::Topics::event_topics`).
const EVENT_TOPICS: [&str; 5] = [
    "login-attempts",
    "risk-decisions",
    "challenges",
    "verifications",
    "accounts",
];

/// Whether `topic` is one of the event topics of `namespace`.
pub fn is_event_topic(namespace: &str, topic: &str) -> bool {
    topic
        .strip_prefix(namespace)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|suffix| EVENT_TOPICS.contains(&suffix))
}

/// What reading left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub duplicates: u64,
    pub unknown_types: u64,
    pub unreadable: u64,
}

/// Drops the copies of events already read.
#[derive(Debug, Default)]
pub struct Dedup {
    seen: HashMap<Uuid, DateTime<Utc>>,
    pruned_at: Option<DateTime<Utc>>,
}

impl Dedup {
    /// True the first time `event` is seen (within the window).
    pub fn first(&mut self, event: &Envelope) -> bool {
        let at = event.occurred_at;
        if self.pruned_at.is_none_or(|last| at - last > DEDUP_WINDOW) {
            self.seen.retain(|_, seen| at - *seen <= DEDUP_WINDOW);
            self.pruned_at = Some(at);
        }
        self.seen.insert(event.event_id, at).is_none()
    }
}

/// Reads every event of `source` (of the topics of `namespace`) into `each`, once, in log
/// order. Problems with single records go to `warnings` (standard error) and reading goes on.
pub fn for_each_event(
    source: &mut dyn RecordSource,
    namespace: &str,
    warnings: &mut dyn Write,
    mut each: impl FnMut(&Envelope),
) -> Result<Skipped, SourceError> {
    let mut record = LogRecord::default();
    let mut dedup = Dedup::default();
    let mut skipped = Skipped::default();
    while let Some(next) = source.next_into(&mut record)? {
        match next {
            Next::Malformed(malformed) => {
                skipped.unreadable += 1;
                // Warnings are best effort: a closed stderr must not stop the reading.
                let _ = writeln!(warnings, "skipped: {malformed}");
            }
            Next::Record if !is_event_topic(namespace, &record.topic) => {}
            Next::Record => match Envelope::from_json(&record.value) {
                Ok(event) if dedup.first(&event) => each(&event),
                Ok(_) => skipped.duplicates += 1,
                Err(DecodeError::UnknownType(_)) => skipped.unknown_types += 1,
                Err(DecodeError::Malformed(reason)) => {
                    skipped.unreadable += 1;
                    let _ = writeln!(
                        warnings,
                        "skipped: {}: not an event: {reason}",
                        record.location()
                    );
                }
            },
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_namespaces_event_topics_are_read() {
        for topic in ["mfa.login-attempts", "mfa.accounts", "mfa.risk-decisions"] {
            assert!(is_event_topic("mfa", topic), "{topic}");
        }
        for topic in [
            "mfa.audit-checkpoints",
            "mfa.dead-letters",
            "mfa.login-requests",
            "other.login-attempts",
            "mfalogin-attempts",
        ] {
            assert!(!is_event_topic("mfa", topic), "{topic}");
        }
    }
}
