//! Where records come from: a Kafka deployment ([`crate::kafka_source::KafkaSource`]) or an
//! export file ([`crate::export_source::ExportSource`]), behind one trait, so every command
//! (verify, export, and whatever reads the log next) iterates records the same way.
//!
//! ```no_run
//! use mfa_audit::record::LogRecord;
//! use mfa_audit::source::{Next, RecordSource};
//! use mfa_audit::export_source::ExportSource;
//!
//! # fn main() -> Result<(), mfa_audit::source::SourceError> {
//! let mut source = ExportSource::open("log.jsonl".as_ref())?;
//! let mut record = LogRecord::default();
//! while let Some(next) = source.next_into(&mut record)? {
//!     match next {
//!         Next::Record => println!("{} {} bytes", record.location(), record.value.len()),
//!         Next::Malformed(malformed) => eprintln!("{malformed}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::export_source::ExportError;
use crate::kafka_source::KafkaSourceError;

/// What [`RecordSource::next_into`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The record passed in now holds the next record.
    Record,
    /// Something that should have been a record could not be read; reading goes on.
    Malformed(Malformed),
}

/// An unreadable entry of a source, named so an auditor can find it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Malformed {
    /// Where: `line 17 of log.jsonl`.
    pub location: String,
    pub reason: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// A source of log records, in the order they are to be read (merged by timestamp).
pub trait RecordSource {
    /// Reads the next record into `record`, reusing its buffers; `Ok(None)` at the end of
    /// the log. An error ends the reading (the source is gone); a malformed entry does not.
    fn next_into(
        &mut self,
        record: &mut crate::record::LogRecord,
    ) -> Result<Option<Next>, SourceError>;
}

/// Why a source stopped before the end of the log.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Kafka(#[from] KafkaSourceError),
}

/// Progress lines on standard error while a source is read: at most one every
/// [`Progress::EVERY`], so reading is never slowed by them. Off with `quiet`.
pub struct Progress {
    what: String,
    quiet: bool,
    started: Instant,
    last: Instant,
    /// Checking the clock costs more than counting: only every this many records.
    countdown: u32,
}

impl Progress {
    pub const EVERY: Duration = Duration::from_secs(2);
    const CHECK_CLOCK_EVERY: u32 = 4096;

    pub fn new(what: &str, quiet: bool) -> Self {
        let now = Instant::now();
        Self {
            what: what.to_owned(),
            quiet,
            started: now,
            last: now,
            countdown: Self::CHECK_CLOCK_EVERY,
        }
    }

    /// Called per record read; `detail` says how far (e.g. "41% of the file") when a line
    /// is due.
    pub fn tick(&mut self, records: u64, detail: impl FnOnce() -> String) {
        if self.quiet {
            return;
        }
        self.countdown -= 1;
        if self.countdown > 0 {
            return;
        }
        self.countdown = Self::CHECK_CLOCK_EVERY;
        self.maybe_report(records, detail);
    }

    /// Like `tick`, for sources that wait (a broker): checks the clock every call.
    pub fn maybe_report(&mut self, records: u64, detail: impl FnOnce() -> String) {
        if self.quiet || self.last.elapsed() < Self::EVERY {
            return;
        }
        self.last = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = records as f64 / elapsed.max(1e-9);
        // Progress is best effort: a closed stderr must not stop the reading.
        let _ = writeln!(
            std::io::stderr(),
            "{}: {records} records read ({rate:.0}/s), {}",
            self.what,
            detail()
        );
    }
}

/// Records held in memory, in order: a constructed log (tests, the benchmark's checks).
pub struct MemorySource {
    records: std::vec::IntoIter<crate::record::LogRecord>,
}

impl MemorySource {
    pub fn new(records: Vec<crate::record::LogRecord>) -> Self {
        Self {
            records: records.into_iter(),
        }
    }
}

impl RecordSource for MemorySource {
    fn next_into(
        &mut self,
        record: &mut crate::record::LogRecord,
    ) -> Result<Option<Next>, SourceError> {
        Ok(self.records.next().map(|next| {
            *record = next;
            Next::Record
        }))
    }
}
