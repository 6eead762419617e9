use clap::Parser;
use login_intake::{config::Config, startup::Application};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::InjectedFault;

/// Takes logins from client backends over HTTP (and SSO requests over Kafka), checks
/// passwords with argon2id, publishes LoginAttempted and answers with the risk decision.
#[derive(Parser)]
#[command(
    name = "login-intake",
    version,
    after_help = concat!(
        "Configuration: environment variables.
  login-intake: MFA_ADMIN_API_KEY (required), MFA_AUDIT_SIGNING_KEY (required: <key id>:<base64
  Ed25519 seed>, signs the audit checkpoints), MFA_INTAKE_ADDR, MFA_DECISION_WAIT_MS,
  MFA_DEPENDENCY_DEADLINE_MS, MFA_ARGON2_THREADS, MFA_ARGON2_QUEUE, MFA_RATE_LIMIT_PER_IP,
  MFA_RATE_LIMIT_PER_ACCOUNT_AND_IP, MFA_RATE_LIMIT_PER_ACCOUNT, MFA_RATE_LIMIT_PER_API_KEY,
  MFA_METRICS_ADDR (GET /metrics on a listener of its own; unset: on MFA_INTAKE_ADDR).
",
        mfa_runtime::service_help_footer!()
    )
)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    // Kept to the end of main: dropping it sends the last spans.
    let _telemetry = mfa_runtime::telemetry::init("login-intake")?;
    let config = Config::from_env()?;
    let fault = InjectedFault::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let app = Application::build(config).await?.inject_fault(fault);
    tracing::info!(address = %app.address(), "login-intake listening");
    app.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}
