use code_worker::{config::Config, startup::Worker};
use mfa_runtime::shutdown::Shutdown;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mfa_runtime::telemetry::init("code-worker");
    let config = Config::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let worker = Worker::build(config).await?;
    worker.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}
