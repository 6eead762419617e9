use clap::Parser;
use code_worker::{config::Config, startup::Worker};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::InjectedFault;

/// Consumes MfaRequired, stores the challenge and emails the 6-digit code (retrying a
/// failing SMTP server until the code expires).
#[derive(Parser)]
#[command(
    name = "code-worker",
    version,
    after_help = concat!(
        "Configuration: environment variables.
  code-worker: MFA_CODE_HMAC_SECRET (required, at least 32 bytes), MFA_SMTP_HOST (required),
  MFA_AUDIT_SIGNING_KEY (required: <key id>:<base64 Ed25519 seed>, signs the audit checkpoints),
  MFA_SMTP_PORT, MFA_SMTP_TLS, MFA_SMTP_USERNAME, MFA_SMTP_PASSWORD, MFA_SMTP_FROM,
  MFA_SMTP_TIMEOUT_SECS, MFA_EMAIL_RETRY_WINDOW_SECS, MFA_METRICS_ADDR (GET /metrics,
  default 127.0.0.1:9182).
",
        mfa_runtime::service_help_footer!()
    )
)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    // Kept to the end of main: dropping it sends the last spans.
    let _telemetry = mfa_runtime::telemetry::init("code-worker")?;
    let config = Config::from_env()?;
    let fault = InjectedFault::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let worker = Worker::build(config).await?.inject_fault(fault);
    worker.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}
