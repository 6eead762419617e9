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

/// A source named on the command line: an export file, or the broker.
#[allow(dead_code)]
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
