//! `mfa-audit export`: writes a log as export lines, in the order the source gives them
//! (for Kafka, merged by timestamp), so verifying the export reads what verifying Kafka
//! would.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::record::LogRecord;
use crate::source::{Malformed, Next, RecordSource, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum ExportWriteError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write the export {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What an export wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exported {
    pub records: u64,
    /// Entries the source could not read (an export of an export), not written.
    pub malformed: Vec<Malformed>,
}

/// Copies every record of `source` into `out` (named `path` in errors), then flushes it.
pub fn export(
    source: &mut dyn RecordSource,
    out: &mut dyn Write,
    path: &Path,
) -> Result<Exported, ExportWriteError> {
    let write_error = |source| ExportWriteError::Write {
        path: path.to_owned(),
        source,
    };
    let mut record = LogRecord::default();
    let mut line = Vec::with_capacity(4096);
    let mut exported = Exported::default();
    while let Some(next) = source.next_into(&mut record)? {
        match next {
            Next::Record => {
                line.clear();
                record.encode_line(&mut line);
                out.write_all(&line).map_err(write_error)?;
                exported.records += 1;
            }
            Next::Malformed(malformed) => exported.malformed.push(malformed),
        }
    }
    out.flush().map_err(write_error)?;
    Ok(exported)
}
