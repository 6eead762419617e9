use std::io::{BufWriter, IsTerminal};
use std::sync::Arc;

use anyhow::Context;
use mfa_runtime::shutdown::Shutdown;
use risk_worker::config::{Config, ModelConfig};
use risk_worker::model::assess::ModelKind;
use risk_worker::replay::Replay;
use risk_worker::startup::Worker;

const USAGE: &str = "usage: risk-worker [replay [--model full|freeman-plain]]
  (no arguments)  consume LoginAttempted from Kafka and decide (settings from MFA_* variables)
  replay          read events as JSON lines on stdin, write one decision line per
                  LoginAttempted on stdout; the same model settings, no database or broker";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => serve(),
        Some("replay") => replay(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn serve() -> anyhow::Result<()> {
    mfa_runtime::telemetry::init("risk-worker");
    let config = Config::from_env()?;
    let shutdown_timeout = config.infra.shutdown_timeout;
    let worker = Worker::build(config).await?;
    worker.run(Shutdown::on_signals(shutdown_timeout)).await?;
    Ok(())
}

fn replay(args: &[String]) -> anyhow::Result<()> {
    let mut config = ModelConfig::from_env()?;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--model" => {
                let name = args.next().context("--model needs a value")?;
                config.policy.risk.model = ModelKind::parse(name)
                    .with_context(|| format!("unknown model {name:?}: full or freeman-plain"))?;
            }
            other => {
                eprintln!("unknown option {other:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
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
    let stats = Replay::new(config.policy, geo).run(stdin.lock(), stdout)?;
    eprintln!(
        "replay: {} events, {} decisions, {} of unknown types skipped",
        stats.events, stats.decisions, stats.skipped
    );
    Ok(())
}
