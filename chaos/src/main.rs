//! `chaos`: the soak. Runs the chaos scenarios against real processes for as long as asked
//! and prints the counts after each; exits 1 if any check failed. `scripts/chaos` builds
//! the service binaries first and runs this.

use std::time::Duration;

use anyhow::{bail, Context};
use chaos::scenario::{run, RunOptions, Scenario};

const USAGE: &str =
    "usage: chaos [--scenario NAME]... [--rounds N] [--calm-secs S] [--users N] [--keep-logs]
  scenarios: kill-each, rolling-restart, replicas, broker-restart, database-restart,
             broker-storage-restart, smtp-outage (default: all, in that order)
  --rounds N      repeat the scenarios N times on one system (default 3)
  --calm-secs S   seconds of load before and after each fault (default 20)
  --users N       users logging in at once (default 8)
  --keep-logs     keep the run's logs even when every check passed";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut options = RunOptions {
        rounds: 3,
        calm: Duration::from_secs(20),
        settle: Duration::from_secs(120),
        ..RunOptions::short(Scenario::KillEach)
    };
    options.scenarios.clear();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--scenario" => {
                let name = value()?;
                options.scenarios.push(
                    Scenario::parse(&name)
                        .with_context(|| format!("unknown scenario {name:?}\n{USAGE}"))?,
                );
            }
            "--rounds" => options.rounds = value()?.parse().context("--rounds")?,
            "--calm-secs" => {
                options.calm = Duration::from_secs(value()?.parse().context("--calm-secs")?)
            }
            "--users" => options.load.users = value()?.parse().context("--users")?,
            "--keep-logs" => options.keep_logs = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios = Scenario::ALL.to_vec();
    }
    // On Ctrl-C or SIGTERM the run is dropped, which stops its servers and removes their
    // data (the PostgreSQL clusters are daemons: nothing else would stop them).
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = tokio::select! {
        outcome = run("soak", &options) => outcome?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    };
    if !outcome.passed() {
        std::process::exit(1);
    }
    Ok(())
}
