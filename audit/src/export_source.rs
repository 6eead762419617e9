//! Reading an export file (`mfa-audit export`): one record a line. A line that is not a
//! record is reported with its number and reading goes on, so one damaged line does not
//! hide the rest of the log.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::record::LogRecord;
use crate::source::{Malformed, Next, Progress, RecordSource, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot open the export {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the export {path} after line {line}")]
    Read {
        path: PathBuf,
        line: u64,
        #[source]
        source: std::io::Error,
    },
}

/// An export file, read line by line with one reused buffer: memory stays at the longest
/// line whatever the file's size.
pub struct ExportSource<R = File> {
    reader: BufReader<R>,
    name: PathBuf,
    line: Vec<u8>,
    line_number: u64,
    bytes_read: u64,
    size: Option<u64>,
    progress: Progress,
}

impl ExportSource<File> {
    pub fn open(path: &Path) -> Result<Self, ExportError> {
        let open_error = |source| ExportError::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let size = file.metadata().map_err(open_error)?.len();
        let mut source = Self::from_reader(file, path);
        source.size = Some(size);
        Ok(source)
    }
}

impl<R: Read> ExportSource<R> {
    /// Reads an export from any reader; `name` is how messages call it.
    pub fn from_reader(reader: R, name: &Path) -> Self {
        Self {
            reader: BufReader::with_capacity(1 << 20, reader),
            name: name.to_owned(),
            line: Vec::with_capacity(4096),
            line_number: 0,
            bytes_read: 0,
            size: None,
            progress: Progress::new(&format!("reading {}", name.display()), true),
        }
    }

    /// Progress on standard error while reading (off by default).
    pub fn with_progress(mut self, quiet: bool) -> Self {
        self.progress = Progress::new(&format!("reading {}", self.name.display()), quiet);
        self
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_number
    }
}

impl<R: Read> RecordSource for ExportSource<R> {
    fn next_into(&mut self, record: &mut LogRecord) -> Result<Option<Next>, SourceError> {
        loop {
            self.line.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|source| ExportError::Read {
                    path: self.name.clone(),
                    line: self.line_number,
                    source,
                })?;
            if read == 0 {
                return Ok(None);
            }
            self.line_number += 1;
            self.bytes_read += read as u64;
            let (bytes_read, size) = (self.bytes_read, self.size);
            self.progress.tick(self.line_number, || match size {
                Some(size) if size > 0 => {
                    format!(
                        "{:.0}% of the file",
                        bytes_read as f64 * 100.0 / size as f64
                    )
                }
                _ => format!("{bytes_read} bytes"),
            });
            let mut line = self.line.as_slice();
            if let Some(stripped) = line.strip_suffix(b"\n") {
                line = stripped;
            }
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            // A blank line (an editor's trailing newline) holds no record and loses none.
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(match record.decode_line(line) {
                Ok(()) => Next::Record,
                Err(error) => Next::Malformed(Malformed {
                    location: format!("line {} of {}", self.line_number, self.name.display()),
                    reason: error.to_string(),
                }),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_named_and_reading_goes_on() {
        let mut good = LogRecord {
            topic: "mfa.accounts".into(),
            value: b"{\"a\":1}".to_vec(),
            ..LogRecord::default()
        };
        let mut text = Vec::new();
        good.encode_line(&mut text);
        text.extend_from_slice(b"{\"topic\": truncated\n\n");
        good.offset = 1;
        good.encode_line(&mut text);
        let mut source = ExportSource::from_reader(text.as_slice(), Path::new("log.jsonl"));
        let mut record = LogRecord::default();
        assert_eq!(source.next_into(&mut record).unwrap(), Some(Next::Record));
        assert_eq!(record.offset, 0);
        match source.next_into(&mut record).unwrap() {
            Some(Next::Malformed(malformed)) => {
                assert_eq!(malformed.location, "line 2 of log.jsonl");
                assert!(
                    malformed.reason.contains("not an export record"),
                    "{malformed}"
                );
            }
            other => panic!("expected the malformed line, got {other:?}"),
        }
        assert_eq!(source.next_into(&mut record).unwrap(), Some(Next::Record));
        assert_eq!(record, good);
        assert_eq!(source.lines_read(), 4);
        assert_eq!(source.next_into(&mut record).unwrap(), None);
    }
}
