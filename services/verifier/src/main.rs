use clap::Parser;
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::InjectedFault;
use verifier::{config::Config, startup::Application};

/// Checks the code the user typed over HTTP and closes the loop: MfaSucceeded and the final
/// LoginApproved, or MfaFailed.
#[derive(Parser)]
#[command(
    name = "verifier",
    version,
    after_help = concat!(
        "Configuration: environment variables.
  verifier: MFA_CODE_HMAC_SECRET (required, at least 32 bytes), MFA_AUDIT_SIGNING_KEY (required:
  <key id>:<base64 Ed25519 seed>, signs the audit checkpoints), MFA_CODE_HMAC_PREVIOUS_SECRET,
  MFA_VERIFIER_ADDR, MFA_CODE_MAX_ATTEMPTS, MFA_FAILED_CODES_PER_DAY, MFA_METRICS_ADDR (GET
  /metrics on a listener of its own; unset: on MFA_VERIFIER_ADDR).
",
        mfa_runtime::service_help_footer!()
    )
)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    // Kept to the end of main: dropping it sends the last spans.
    let _telemetry = mfa_runtime::telemetry::init("verifier")?;
    let config = Config::from_env()?;
    let fault = InjectedFault::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let app = Application::build(config).await?.inject_fault(fault);
    tracing::info!(address = %app.address(), "verifier listening");
    app.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}
