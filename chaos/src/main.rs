//! `chaos`: the soak. Runs the chaos scenarios against real processes for as long as asked
//! and prints the counts after each; exits 1 if any check failed. `scripts/chaos` builds
//! the service binaries first and runs this.

use std::time::Duration;

use anyhow::bail;
use chaos::scenario::{run, RunOptions, Scenario};
use clap::Parser;

/// The chaos soak: the four services as real processes against their own broker, PostgreSQL
/// and SMTP server, under a steady stream of logins, while the scenarios kill and restart
/// things; after each scenario the audit checks that nothing was lost, doubled or approved
/// without its cause. Exits 1 if any check failed (the run's logs are then kept).
#[derive(Debug, Parser)]
#[command(name = "chaos", version)]
struct Args {
    /// A scenario to run; repeat for several, in the order given. Default: all of them, in
    /// the order kill-each, rolling-restart, replicas, broker-restart, database-restart,
    /// broker-storage-restart, smtp-outage.
    #[arg(long = "scenario", value_name = "NAME", value_parser = scenario_named)]
    scenarios: Vec<Scenario>,
    /// Repeat the scenarios N times on one system.
    #[arg(long, value_name = "N", default_value_t = 3)]
    rounds: usize,
    /// Seconds of load before and after each fault.
    #[arg(long, value_name = "S", default_value_t = 20)]
    calm_secs: u64,
    /// Users logging in at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    users: usize,
    /// Keep the run's logs even when every check passed.
    #[arg(long)]
    keep_logs: bool,
}

/// A scenario by its name; the error lists the names there are.
fn scenario_named(name: &str) -> Result<Scenario, String> {
    Scenario::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scenario (one of: {})", names.join(", "))
    })
}

impl Args {
    fn run_options(self) -> RunOptions {
        let mut options = RunOptions {
            rounds: self.rounds,
            calm: Duration::from_secs(self.calm_secs),
            settle: Duration::from_secs(120),
            keep_logs: self.keep_logs,
            ..RunOptions::short(Scenario::KillEach)
        };
        options.load.users = self.users;
        options.scenarios = if self.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.scenarios
        };
        options
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let options = Args::parse().run_options();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_every_scenario_three_rounds_twenty_seconds_eight_users() {
        let options = Args::try_parse_from(["chaos"]).unwrap().run_options();
        assert_eq!(options.scenarios, Scenario::ALL.to_vec());
        assert_eq!(options.rounds, 3);
        assert_eq!(options.calm, Duration::from_secs(20));
        assert_eq!(options.settle, Duration::from_secs(120));
        assert_eq!(options.load.users, 8);
        assert!(!options.keep_logs);
    }

    #[test]
    fn every_option_is_read() {
        let options = Args::try_parse_from([
            "chaos",
            "--scenario",
            "broker-restart",
            "--scenario",
            "kill-each",
            "--rounds",
            "10",
            "--calm-secs",
            "30",
            "--users",
            "16",
            "--keep-logs",
        ])
        .unwrap()
        .run_options();
        assert_eq!(
            options.scenarios,
            vec![Scenario::BrokerRestart, Scenario::KillEach]
        );
        assert_eq!(options.rounds, 10);
        assert_eq!(options.calm, Duration::from_secs(30));
        assert_eq!(options.load.users, 16);
        assert!(options.keep_logs);
    }

    #[test]
    fn a_bad_argument_is_named_in_the_error() {
        let unknown = Args::try_parse_from(["chaos", "--scenario", "meteor"]).unwrap_err();
        let message = unknown.to_string();
        assert!(message.contains("--scenario"), "{message}");
        assert!(message.contains("meteor"), "{message}");
        assert!(message.contains("kill-each"), "{message}");
        let not_a_number = Args::try_parse_from(["chaos", "--rounds", "many"]).unwrap_err();
        assert!(
            not_a_number.to_string().contains("--rounds"),
            "{not_a_number}"
        );
        let unknown_option = Args::try_parse_from(["chaos", "--fast"]).unwrap_err();
        assert!(
            unknown_option.to_string().contains("--fast"),
            "{unknown_option}"
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
