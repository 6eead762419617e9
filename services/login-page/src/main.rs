use clap::Parser;
use login_page::{config::Config, startup::Application};
use mfa_runtime::shutdown::Shutdown;

/// The hosted sign-in page: a client backend of login-intake and the verifier, serving the
/// sign-in and code forms as HTML.
#[derive(Parser)]
#[command(
    name = "login-page",
    version,
    after_help = "Configuration: environment variables.
  MFA_LOGIN_PAGE_API_KEY (required: a client API key of the company), MFA_LOGIN_PAGE_CSRF_SECRET
  (required, at least 32 bytes), MFA_LOGIN_PAGE_RETURN_URL (required: where a signed-in user
  goes, with ?attempt_id=), MFA_LOGIN_PAGE_ADDR, MFA_LOGIN_PAGE_INTAKE_URL,
  MFA_LOGIN_PAGE_VERIFIER_URL, MFA_LOGIN_PAGE_PLATFORM, MFA_LOGIN_PAGE_COMPANY_NAME,
  MFA_LOGIN_PAGE_TRUSTED_PROXIES, MFA_LOGIN_PAGE_API_TIMEOUT_SECS,
  MFA_LOGIN_PAGE_DECISION_POLL_SECS, RUST_LOG, MFA_LOG_FORMAT.
  Every variable, its default and meaning: README.md, section Sign-in page.

Exit status: 0 after SIGTERM or Ctrl-C; 1 when a setting is bad or the address can't be bound;
2 on a bad command-line argument."
)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    // Kept to the end of main: dropping it sends the last spans.
    let _telemetry = mfa_runtime::telemetry::init("login-page")?;
    let config = Config::from_env()?;
    let app = Application::build(config).await?;
    tracing::info!(address = %app.address(), "login-page listening");
    app.run(Shutdown::on_signals(std::time::Duration::from_secs(10)))
        .await?;
    Ok(())
}
