//! `mfa-audit`: export, verify and question the event log. The subcommands are one enum;
//! each has its arguments' struct and a `run` that takes them. The work is in the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use mfa_audit::export_source::ExportSource;
use mfa_audit::kafka_source::{KafkaSource, KafkaSourceConfig};
use mfa_audit::source::RecordSource;

mod story_commands;

#[derive(Parser)]
#[command(
    name = "mfa-audit",
    version,
    about = "Export, verify and question adaptive-mfa's event log",
    long_about = "Export, verify and question adaptive-mfa's event log.\n\n\
        Reads the log from Kafka (every partition of the namespace's event topics and of its \
        checkpoints topic, from the earliest offset to the end at start time) or from an \
        export file it wrote. Progress goes to standard error, results to standard output."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the whole log from Kafka to an export file (JSON Lines, merged by timestamp).
    Export(ExportArgs),
    /// Checks seals, checkpoints, schemas, offsets and login flows; exit 0 only for a clean log.
    Verify(VerifyArgs),
    /// Generates a signed log of N events, verifies it, and prints events/s and peak memory.
    BenchVerify(BenchArgs),
    /// The story of each login of a user (or of one login): context, decision and reasons,
    /// the code's fate with its times, the outcome.
    ///
    /// Where a login came from is sealed in the log. With the deployment's keys
    /// (MFA_MASTER_KEYS and MFA_DATABASE_URL) it is opened: in the clear, "erased" once the
    /// user was deleted or the month is past retention, or the reason it cannot be read.
    Timeline(story_commands::TimelineArgs),
    /// Logins, MFA rate and the codes' fates by day and by platform; --chart draws an SVG.
    Report(story_commands::ReportArgs),
    /// Replays the logins through the risk worker's decision core with other settings and
    /// lists the decisions that would change.
    Recheck(story_commands::RecheckArgs),
}

/// Where the broker is: as the services read it, flags first.
#[derive(Args, Clone)]
struct KafkaArgs {
    /// The broker(s), host:port[,host:port...].
    #[arg(long, env = "MFA_KAFKA_BROKERS")]
    brokers: Option<String>,
    /// The topic namespace of the deployment.
    #[arg(long, env = "MFA_TOPIC_NAMESPACE", default_value = "mfa")]
    namespace: String,
    /// Seconds to wait for a broker that does not answer.
    #[arg(long, default_value_t = 30)]
    broker_timeout_secs: u64,
    /// Also the login requests and dead letters (not events of the log).
    #[arg(long)]
    all_topics: bool,
}

impl KafkaArgs {
    fn connect(&self, quiet: bool) -> anyhow::Result<KafkaSource> {
        let brokers = self
            .brokers
            .as_deref()
            .filter(|brokers| !brokers.trim().is_empty())
            .context("no broker: set MFA_KAFKA_BROKERS or pass --brokers")?;
        let mut config = KafkaSourceConfig::new(brokers, &self.namespace);
        config.all_topics = self.all_topics;
        config.timeout = std::time::Duration::from_secs(self.broker_timeout_secs.max(1));
        config.quiet = quiet;
        Ok(KafkaSource::connect(&config)?)
    }
}

#[derive(Args)]
struct ExportArgs {
    /// The export file to write (replaced if it exists).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// No progress on standard error.
    #[arg(long)]
    quiet: bool,
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut source = args.kafka.connect(args.quiet)?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let exported = mfa_audit::export::export(&mut source, &mut out, &args.out)?;
    if !args.quiet {
        eprintln!(
            "exported {} records to {}",
            exported.records,
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
#[command(
    long_about = "Checks the log: every event record sealed and in its producer's \
    chain, each chain recomputed from the records' bytes and matched with its signed \
    checkpoints (a key of --keys, of the producer it names), nothing after the last \
    checkpoint, events that parse, contiguous offsets, and each login's flow (one decision, \
    a delivery outcome per MfaRequired, approvals after MFA caused by an MfaSucceeded, every \
    cause in the log). Redelivered copies are listed as duplicates, never violations.\n\n\
    Exit status: 0 clean, 1 violations found, 2 the log or the keys could not be read."
)]
struct VerifyArgs {
    /// An export file to verify; without it, the log is read from Kafka.
    #[arg(long)]
    from: Option<PathBuf>,
    /// The producers' public keys (JSON: {"keys": [{"key_id", "producer", "public_key"}]}).
    #[arg(long)]
    keys: PathBuf,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// One JSON document on standard output: {"findings": [...], "summary": {...}}.
    #[arg(long)]
    json: bool,
    /// Minutes of event time an attempt is kept after its last event (and a redelivered
    /// copy compared with the first).
    #[arg(long, default_value_t = 120)]
    window_mins: u64,
    /// Minutes before the log's end within which an incomplete attempt is "open", not a
    /// violation.
    #[arg(long, default_value_t = 15)]
    recent_mins: u64,
    /// Seconds before the log's end within which records no checkpoint covers yet are
    /// noted, not a violation (for a live system; 0 for a log taken after shutdown).
    #[arg(long, default_value_t = 0)]
    open_tail_secs: u64,
    /// The most attempts held in memory (about half a kilobyte each).
    #[arg(long, default_value_t = 500_000)]
    max_attempts: usize,
    /// Do not list notes (duplicates, open attempts): they are counted either way.
    #[arg(long)]
    no_notes: bool,
    /// No progress on standard error.
    #[arg(long)]
    quiet: bool,
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    use mfa_audit::verify::output::{JsonOutput, TextOutput};
    let key_bytes = std::fs::read(&args.keys)
        .with_context(|| format!("cannot read the key file {}", args.keys.display()))?;
    let keys = shared::audit::PublicKeys::from_json(&key_bytes)
        .with_context(|| format!("cannot use the key file {}", args.keys.display()))?;
    let mut options = mfa_audit::verify::Options::new(keys);
    options.window = std::time::Duration::from_secs(args.window_mins.max(1) * 60);
    options.recent = std::time::Duration::from_secs(args.recent_mins * 60);
    options.open_tail = std::time::Duration::from_secs(args.open_tail_secs);
    options.max_attempts = args.max_attempts;
    let mut source = open_source(args.from.as_ref(), &args.kafka, args.quiet)?;
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let summary = if args.json {
        let mut output = JsonOutput::new(stdout);
        let summary = mfa_audit::verify::verify(source.as_mut(), options, &mut output)?;
        output.finish(&summary)?;
        summary
    } else {
        let mut output = TextOutput::new(stdout, !args.no_notes);
        let summary = mfa_audit::verify::verify(source.as_mut(), options, &mut output)?;
        output.finish(&summary)?;
        summary
    };
    Ok(if summary.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Args)]
struct BenchArgs {
    /// How many events to generate.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Logins started per second of event time (about 3.6 events each).
    #[arg(long, default_value_t = 25.0)]
    logins_per_sec: f64,
    /// A checkpoint after every this many events of a producer.
    #[arg(long, default_value_t = 1_000)]
    checkpoint_every: u64,
    /// Where the temporary export goes.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the generated export at this path (and its key file at <path>.keys.json).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Hold the export in memory instead of a file (its bytes then count in the peak).
    #[arg(long, conflicts_with = "keep")]
    in_memory: bool,
}

fn bench_verify(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let mut config = mfa_audit::synth::SynthConfig::new(args.events);
    config.logins_per_sec = args.logins_per_sec;
    config.checkpoint_every = args.checkpoint_every.max(1);
    let report = if args.in_memory {
        mfa_audit::bench::run_in_memory(config)?
    } else {
        mfa_audit::bench::run(config, &args.dir, args.keep.as_deref())?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} events ({} records, {} checkpoints, {:.0} MB export) generated in {:.1} s",
            report.events,
            report.records,
            report.checkpoints,
            report.export_bytes as f64 / 1e6,
            report.generate_secs
        );
        println!(
            "verified in {:.2} s: {:.0} events/s on one thread; peak RSS while verifying {}",
            report.verify_secs,
            report.events_per_sec,
            report
                .peak_rss_kib
                .map_or("unknown".to_owned(), |kib| format!(
                    "{:.1} MiB",
                    kib as f64 / 1024.0
                ))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A source named on the command line: an export file, or the broker.
fn open_source(
    from: Option<&PathBuf>,
    kafka: &KafkaArgs,
    quiet: bool,
) -> anyhow::Result<Box<dyn RecordSource>> {
    Ok(match from {
        Some(path) => Box::new(ExportSource::open(path)?.with_progress(quiet)),
        None => Box::new(kafka.connect(quiet)?),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Export(args) => export(args),
        Command::Verify(args) => verify(args),
        Command::BenchVerify(args) => bench_verify(args),
        Command::Timeline(args) => story_commands::timeline(args),
        Command::Report(args) => story_commands::report(args),
        Command::Recheck(args) => story_commands::recheck(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "mfa-audit: {error:#}");
            // 2, not 1: the log could not be read, which is not the same as "unclean".
            ExitCode::from(2)
        }
    }
}
