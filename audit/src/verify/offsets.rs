//! Offsets per partition. Tansu 0.6.0 gives each partition contiguous offsets from 0 (the
//! services never write transactionally, so no control records take offsets either; the
//! integration test `kafka::offsets_are_contiguous_on_this_broker` checks it on the stack's
//! broker), so a missing offset is a record removed from the log, and a repeated or
//! backward offset is a doubled or moved line of an export.

use std::collections::HashMap;

use super::findings::{Finding, Kind, Severity, Tally};
use crate::record::Location;

#[derive(Default)]
pub struct Offsets {
    /// The last offset seen per (topic number, partition).
    last: HashMap<(u16, i32), i64>,
}

impl Offsets {
    /// Notes the offset of a record at `location` (topic number `topic`). `gap_severity`:
    /// a violation on a broker with contiguous offsets.
    pub(crate) fn observe(
        &mut self,
        topic: u16,
        location: impl FnOnce() -> Location,
        partition: i32,
        offset: i64,
        gap_severity: Severity,
        tally: &mut Tally<'_>,
    ) {
        match self.last.insert((topic, partition), offset) {
            None if offset > 0 => {
                let at = location();
                tally.report(
                    Finding::info(
                        Kind::OffsetGap,
                        format!(
                            "{}/{} starts at offset {offset}: the records before it are not in \
                             this log (retention, or an export of part of it)",
                            at.topic, at.partition
                        ),
                    )
                    .at(at),
                );
            }
            None => {}
            Some(last) if offset == last + 1 => {}
            Some(last) if offset > last + 1 => {
                let at = location();
                tally.report(
                    Finding::new(
                        Kind::OffsetGap,
                        gap_severity,
                        format!(
                            "{}/{}: offsets {}..={} are missing",
                            at.topic,
                            at.partition,
                            last + 1,
                            offset - 1
                        ),
                    )
                    .at(at),
                );
            }
            Some(last) => {
                let at = location();
                tally.report(
                    Finding::violation(
                        Kind::OffsetOrder,
                        format!(
                            "{}/{}: offset {offset} comes after offset {last}",
                            at.topic, at.partition
                        ),
                    )
                    .at(at),
                );
                // Keep the highest: one moved line is one finding.
                self.last.insert((topic, partition), last.max(offset));
            }
        }
    }
}
