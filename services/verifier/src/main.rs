use mfa_runtime::shutdown::Shutdown;
use verifier::{config::Config, startup::Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mfa_runtime::telemetry::init("verifier");
    let config = Config::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let app = Application::build(config).await?;
    tracing::info!(address = %app.address(), "verifier listening");
    app.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}
