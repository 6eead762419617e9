//! How `verify` prints: a line per finding and a summary for a person, or one JSON document
//! (`{"findings": [...], "summary": {...}}`) for a script. Both are written as findings come,
//! so printing keeps no more of them in memory than verifying does.

use std::io::Write;

use super::findings::{Finding, FindingSink, Severity};
use super::Summary;

/// Findings as lines, then the summary.
pub struct TextOutput<W: Write> {
    out: W,
    /// Info findings (duplicates, open attempts) are counted in the summary either way.
    show_info: bool,
    error: Option<std::io::Error>,
}

impl<W: Write> TextOutput<W> {
    pub fn new(out: W, show_info: bool) -> Self {
        Self {
            out,
            show_info,
            error: None,
        }
    }

    pub fn finish(mut self, summary: &Summary) -> std::io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let out = &mut self.out;
        writeln!(out)?;
        writeln!(
            out,
            "{}: {} violations, {} warnings, {} notes",
            if summary.is_clean() {
                "CLEAN"
            } else {
                "NOT CLEAN"
            },
            summary.violations,
            summary.warnings,
            summary.infos
        )?;
        writeln!(
            out,
            "records {} (event records {}, checkpoints {}, other topics {}, malformed lines {})",
            summary.records,
            summary.event_records,
            summary.checkpoints,
            summary.other_records,
            summary.malformed_lines
        )?;
        writeln!(
            out,
            "events {} in {} chains; checkpoints signed {}, matched {}; duplicates {}",
            summary.events,
            summary.chains,
            summary.checkpoints_signed,
            summary.checkpoints_matched,
            summary.duplicates
        )?;
        writeln!(
            out,
            "attempts checked {} (at most {} held at once)",
            summary.attempts_checked, summary.peak_attempts_held
        )?;
        if let (Some(from), Some(to)) = (summary.log_from, summary.log_to) {
            writeln!(out, "log from {from} to {to}")?;
        }
        for (kind, count) in &summary.by_kind {
            writeln!(out, "  {kind}: {count}")?;
        }
        writeln!(
            out,
            "verified in {:.2} s: {:.0} events/s",
            summary.elapsed_secs, summary.events_per_sec
        )?;
        out.flush()
    }
}

impl<W: Write> FindingSink for TextOutput<W> {
    fn report(&mut self, finding: Finding) {
        if self.error.is_some() || (finding.severity == Severity::Info && !self.show_info) {
            return;
        }
        if let Err(error) = writeln!(self.out, "{finding}") {
            self.error = Some(error);
        }
    }
}

/// One JSON document, written as it goes.
pub struct JsonOutput<W: Write> {
    out: W,
    first: bool,
    error: Option<std::io::Error>,
}

impl<W: Write> JsonOutput<W> {
    pub fn new(mut out: W) -> Self {
        let error = out.write_all(b"{\"findings\":[").err();
        Self {
            out,
            first: true,
            error,
        }
    }

    pub fn finish(mut self, summary: &Summary) -> std::io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.out.write_all(b"\n],\"summary\":")?;
        serde_json::to_writer(&mut self.out, summary)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

impl<W: Write> FindingSink for JsonOutput<W> {
    fn report(&mut self, finding: Finding) {
        if self.error.is_some() {
            return;
        }
        let separator: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        let written = self
            .out
            .write_all(separator)
            .and_then(|()| serde_json::to_writer(&mut self.out, &finding).map_err(Into::into));
        if let Err(error) = written {
            self.error = Some(error);
        }
    }
}
