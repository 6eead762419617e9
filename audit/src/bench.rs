//! `mfa-audit bench-verify`: generates a realistic signed log of N events into a temporary
//! export file, verifies the file as `mfa-audit verify --from` would, and reports the
//! verification's rate and the process's peak memory (VmHWM). Run it from a release build.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::export::{export, ExportWriteError};
use crate::export_source::{ExportError, ExportSource};
use crate::source::{RecordSource, SourceError};
use crate::synth::{Synth, SynthConfig, SynthKeys};
use crate::verify::findings::{Finding, FindingSink, Severity};
use crate::verify::{verify, Options, Summary};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot create the temporary export")]
    TempFile(#[source] std::io::Error),
    #[error(transparent)]
    Write(#[from] ExportWriteError),
    #[error(transparent)]
    Open(#[from] ExportError),
    #[error(transparent)]
    Read(#[from] SourceError),
    #[error("the generated log did not verify clean: {0}")]
    NotClean(String),
}

/// What a benchmark run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub events: u64,
    pub records: u64,
    pub export_bytes: u64,
    pub generate_secs: f64,
    pub verify_secs: f64,
    pub events_per_sec: f64,
    pub checkpoints: u64,
    /// Peak resident memory of the process, KiB (VmHWM), after generating and verifying.
    pub peak_rss_kib: Option<u64>,
    pub summary: Summary,
}

/// Keeps the first few violations, to say why a generated log was not clean.
#[derive(Default)]
struct FirstViolations(Vec<Finding>);

impl FindingSink for FirstViolations {
    fn report(&mut self, finding: Finding) {
        if finding.severity == Severity::Violation && self.0.len() < 5 {
            self.0.push(finding);
        }
    }
}

/// Generates `config.events` events into memory (no disk: a 5M-event log is 4 GB) and
/// verifies them through the same export reader as a file. The log's bytes are resident
/// while verifying, so the peak memory reported includes `export_bytes`.
pub fn run_in_memory(config: SynthConfig) -> Result<BenchReport, BenchError> {
    let keys = SynthKeys::generate();
    let generating = Instant::now();
    let mut bytes = Vec::new();
    export(
        &mut Synth::new(config, &keys),
        &mut bytes,
        Path::new("memory"),
    )?;
    let generate_secs = generating.elapsed().as_secs_f64();
    let export_bytes = bytes.len() as u64;
    let mut source = ExportSource::from_reader(bytes.as_slice(), Path::new("memory"));
    let timed = Timed {
        export_bytes,
        generate_secs,
    };
    timed.verify(&mut source, &keys)
}

/// The generation's figures, for the report of the verification that follows.
struct Timed {
    export_bytes: u64,
    generate_secs: f64,
}

impl Timed {
    /// Verifies `source` as `mfa-audit verify` would, timing it and taking the peak memory.
    fn verify(
        self,
        source: &mut dyn RecordSource,
        keys: &SynthKeys,
    ) -> Result<BenchReport, BenchError> {
        // The peak is the verification's, not the generator's: Linux resets VmHWM on "5".
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let mut sink = FirstViolations::default();
        let verifying = Instant::now();
        let summary = verify(source, Options::new(keys.public_keys()), &mut sink)?;
        let verify_secs = verifying.elapsed().as_secs_f64();
        if !summary.is_clean() {
            let listed: Vec<String> = sink.0.iter().map(Finding::to_string).collect();
            return Err(BenchError::NotClean(listed.join("; ")));
        }
        Ok(BenchReport {
            events: summary.event_records,
            records: summary.records,
            export_bytes: self.export_bytes,
            generate_secs: self.generate_secs,
            verify_secs,
            events_per_sec: summary.event_records as f64 / verify_secs.max(1e-9),
            checkpoints: summary.checkpoints,
            peak_rss_kib: peak_rss_kib(),
            summary,
        })
    }
}

/// Generates `config.events` events into a temporary file in `dir`, and verifies it. With
/// `keep`, the export stays there, and the key file beside it (`<keep>.keys.json`), for
/// `mfa-audit verify --from` to be timed on the same log.
pub fn run(
    config: SynthConfig,
    dir: &Path,
    keep: Option<&Path>,
) -> Result<BenchReport, BenchError> {
    let keys = SynthKeys::generate();
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(BenchError::TempFile)?;
    let generating = Instant::now();
    {
        let mut synth = Synth::new(config, &keys);
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file.as_file_mut());
        export(&mut synth, &mut out, dir)?;
        out.flush().map_err(BenchError::TempFile)?;
    }
    let generate_secs = generating.elapsed().as_secs_f64();
    let export_bytes = file
        .as_file()
        .metadata()
        .map_err(BenchError::TempFile)?
        .len();
    let mut source = ExportSource::open(file.path())?;
    let timed = Timed {
        export_bytes,
        generate_secs,
    };
    let report = timed.verify(&mut source, &keys);
    // Kept whether or not it verified clean: a log that did not is the one to look at.
    if let Some(keep) = keep {
        let keys_path = keep.with_extension("keys.json");
        serde_json::to_writer(
            std::fs::File::create(&keys_path).map_err(BenchError::TempFile)?,
            &keys.key_file(),
        )
        .map_err(|error| BenchError::TempFile(error.into()))?;
        file.persist(keep)
            .map_err(|error| BenchError::TempFile(error.error))?;
    }
    report
}

/// The process's peak resident set (VmHWM in /proc/self/status), where Linux tells it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
