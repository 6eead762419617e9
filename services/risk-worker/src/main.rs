use std::io::{BufWriter, IsTerminal};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mfa_runtime::config::{ConfigError, Env};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::InjectedFault;
use mfa_store::data_keys::BlockingDataKeys;
use risk_worker::config::{Config, ModelConfig};
use risk_worker::model::assess::ModelKind;
use risk_worker::replay::Replay;
use risk_worker::startup::Worker;
use shared::personal::{MasterKeys, PseudonymKey};

/// The model settings, shared by `serve` and `replay`.
macro_rules! model_settings_help {
    () => {
        "  the model: MFA_RISK_MODEL, MFA_RISK_MEDIUM_THRESHOLD, MFA_RISK_HIGH_THRESHOLD,
  MFA_RISK_PRIVILEGED_OFFSET, MFA_RISK_CHALLENGE_LEVELS, MFA_RISK_HISTORY_DAYS,
  MFA_MAX_TRAVEL_SPEED_KMH, MFA_FAILED_ATTEMPTS_THRESHOLD, MFA_FAILED_ATTEMPTS_WINDOW_SECS,
  MFA_IP_FAILURES_THRESHOLD, MFA_IP_FAILED_ACCOUNTS_THRESHOLD, MFA_IP_FAILURES_WINDOW_SECS,
  MFA_GEOIP_CITY_DB, MFA_GEOIP_ASN_DB, MFA_GEOIP_DEFAULT_ACCURACY_KM, MFA_DENYLIST_FILE,
  MFA_DENYLIST_ACTION.
"
    };
}

/// Decides each login: consumes LoginAttempted and publishes LoginApproved, MfaRequired or
/// LoginRejected, with the risk score and its reasons.
#[derive(Parser)]
#[command(
    name = "risk-worker",
    version,
    after_help = concat!(
        "Without a command: serve.

Configuration: environment variables.
",
        model_settings_help!(),
        "  serve only: MFA_AUDIT_SIGNING_KEY (required: <key id>:<base64 Ed25519 seed>, signs the
  audit checkpoints), MFA_CODE_TTL_SECS, MFA_CODE_EMAILS_PER_HOUR, MFA_CODE_EMAIL_MIN_GAP_SECS,
  MFA_FAILED_CODES_PER_DAY, MFA_METRICS_ADDR (GET /metrics, default 127.0.0.1:9181).
",
        mfa_runtime::service_help_footer!()
    )
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume LoginAttempted from Kafka and decide (the default).
    #[command(after_help = concat!(
        "Configuration: environment variables.
",
        model_settings_help!(),
        "  MFA_CODE_TTL_SECS, MFA_CODE_EMAILS_PER_HOUR, MFA_CODE_EMAIL_MIN_GAP_SECS,
  MFA_FAILED_CODES_PER_DAY, MFA_METRICS_ADDR (GET /metrics, default 127.0.0.1:9181).
",
        mfa_runtime::service_help_footer!()
    ))]
    Serve,
    /// Read events as JSON lines on stdin, write one decision line per LoginAttempted on
    /// stdout: the live worker's model settings, no database or broker.
    #[command(after_help = concat!(
        "Input: the envelopes on Kafka (LoginAttempted, MfaSucceeded, the final LoginApproved) in
time order; each event's occurred_at is the clock. README.md, section Replay.

Configuration: environment variables (no broker ones). Sealed personal fields (events of
schema version 7 on) are opened with the deployment's data keys: MFA_DATABASE_URL and
MFA_MASTER_KEYS. A login whose keys were erased gets no decision; with MFA_PSEUDONYM_KEY (the
live worker's) and the risk decisions in the input, it still counts for the others as it did.
",
        model_settings_help!(),
        "
Exit status: 0 at the end of the input, 1 on a bad setting or unreadable input, 2 on a bad
command-line argument."
    ))]
    Replay {
        /// The model to score with, overriding MFA_RISK_MODEL.
        #[arg(long, value_name = "full|freeman-plain", value_parser = model_kind)]
        model: Option<ModelKind>,
    },
}

fn model_kind(name: &str) -> Result<ModelKind, String> {
    ModelKind::parse(name).ok_or_else(|| "the models are full and freeman-plain".to_owned())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Replay { model } => replay(model),
    }
}

#[tokio::main]
async fn serve() -> anyhow::Result<()> {
    // Kept to the end of main: dropping it sends the last spans.
    let _telemetry = mfa_runtime::telemetry::init("risk-worker")?;
    let config = Config::from_env()?;
    let fault = InjectedFault::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let worker = Worker::build(config).await?.inject_fault(fault);
    worker.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}

fn replay(model: Option<ModelKind>) -> anyhow::Result<()> {
    let mut config = ModelConfig::from_env()?;
    if let Some(model) = model {
        config.policy.risk.model = model;
    }
    let geo = Arc::new(config.geoip.open()?);
    if geo.is_empty() {
        eprintln!("replay: no GeoIP database configured; deciding without ASN, country and travel");
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("replay: reading events from the terminal (pipe a JSON-lines file in)");
    }
    let stdout = BufWriter::new(std::io::stdout().lock());
    let mut replay = Replay::new(config.policy, geo);
    // The shared counts hashed as the live worker hashes them, so that logins whose personal
    // data was erased still count (from their recorded decisions).
    if let Some(key) = Env::optional("MFA_PSEUDONYM_KEY") {
        replay = replay.with_pseudonym_key(PseudonymKey::parse(&key).map_err(|e| {
            ConfigError::Invalid {
                name: "MFA_PSEUDONYM_KEY".into(),
                reason: e.to_string(),
            }
        })?);
    }
    // Sealed personal fields open with the deployment's data keys, read from its database.
    if let Some(master) = Env::optional("MFA_MASTER_KEYS") {
        let database_url = Env::secret("MFA_DATABASE_URL")?;
        let master = MasterKeys::parse(&master).map_err(|e| ConfigError::Invalid {
            name: "MFA_MASTER_KEYS".into(),
            reason: e.to_string(),
        })?;
        replay = replay.with_data_keys(BlockingDataKeys::connect(&database_url, Arc::new(master))?);
    }
    let stats = replay.run(stdin.lock(), stdout)?;
    eprintln!(
        "replay: {} events, {} decisions, {} of unknown types skipped, {} erased",
        stats.events, stats.decisions, stats.skipped, stats.erased
    );
    Ok(())
}
