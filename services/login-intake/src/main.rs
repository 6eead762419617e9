use login_intake::{config::Config, startup::Application};
use mfa_runtime::shutdown::Shutdown;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mfa_runtime::telemetry::init("login-intake");
    let config = Config::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let app = Application::build(config).await?;
    tracing::info!(address = %app.address(), "login-intake listening");
    app.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}
