use risk_worker::{config::Config, startup::Worker};
use shared::shutdown::Shutdown;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init("risk-worker");
    let config = Config::from_env()?;
    let worker = Worker::build(config).await?;
    worker.run(Shutdown::on_signals()).await?;
    Ok(())
}
