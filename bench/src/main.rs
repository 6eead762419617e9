//! `mfa-bench argon2` and `mfa-bench load`: see `BENCHMARKS.md`.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mfa_bench::argon2_rate::{self, KEYCLOAK_COST};
use mfa_bench::load::{self, LoadConfig, Mix, Pace, Target};

#[derive(Parser)]
#[command(about = "The load generator and the argon2id baseline it is measured against")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Raw argon2id verifications per second with login-intake's parameters (the ceiling of
    /// password logins here), and with Keycloak's (m = 7 MiB, t = 5) for comparison
    Argon2 {
        /// Hashing threads; login-intake's default is the number of cores
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// One JSON line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Creates users, enrols them, then drives logins through the running services
    Load {
        #[arg(long, env = "MFA_INTAKE_URL", default_value = "http://127.0.0.1:8080")]
        intake: String,
        #[arg(
            long,
            env = "MFA_VERIFIER_URL",
            default_value = "http://127.0.0.1:8081"
        )]
        verifier: String,
        /// maildev's web address (its REST API at /email)
        #[arg(long, env = "MFA_MAILDEV_URL")]
        maildev: String,
        #[arg(long, env = "MFA_ADMIN_API_KEY", default_value = "dev-admin-key")]
        admin_key: String,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Open loop: logins started per second
        #[arg(long, conflicts_with = "concurrency")]
        rate: Option<f64>,
        /// Closed loop: logins in flight
        #[arg(long)]
        concurrency: Option<usize>,
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        /// Weights of the mix: known device, new device (MFA), wrong password, SSO
        #[arg(long, value_parser = parse_mix, default_value = "70,10,10,10")]
        mix: Mix,
        /// A login without a decision within this many seconds is lost
        #[arg(long, default_value_t = 30.0)]
        decision_timeout: f64,
        #[arg(long, default_value_t = 16)]
        setup_concurrency: usize,
        /// One JSON line instead of text
        #[arg(long)]
        json: bool,
    },
}

fn parse_mix(text: &str) -> Result<Mix, String> {
    let weights: Vec<u32> = text
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<u32>()
                .map_err(|_| format!("{w:?} is not a weight"))
        })
        .collect::<Result<_, _>>()?;
    match weights.as_slice() {
        [known, new_device, wrong_password, sso] if weights.iter().sum::<u32>() > 0 => Ok(Mix {
            known: *known,
            new_device: *new_device,
            wrong_password: *wrong_password,
            sso: *sso,
        }),
        _ => Err("four weights, not all zero: known,new_device,wrong_password,sso".into()),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Argon2 {
            threads,
            seconds,
            json,
        } => {
            let threads = threads.unwrap_or_else(cores);
            let duration = Duration::from_secs_f64(seconds);
            let ours = argon2_rate::measure(login_intake::password::OWASP_COST, threads, duration)?;
            let keycloak = argon2_rate::measure(KEYCLOAK_COST, threads, duration)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "login_intake": ours, "keycloak_cost": keycloak })
                );
            } else {
                for (name, rate) in [
                    ("login-intake's cost", &ours),
                    ("Keycloak's cost", &keycloak),
                ] {
                    println!(
                        "{name} (m = {} KiB, t = {}), {} threads: {:.1} verifications/s, {:.1} per core, {:.1} ms each",
                        rate.memory_kib, rate.passes, rate.threads, rate.per_sec, rate.per_sec_per_thread, rate.ms_each
                    );
                }
            }
        }
        Command::Load {
            intake,
            verifier,
            maildev,
            admin_key,
            users,
            rate,
            concurrency,
            seconds,
            mix,
            decision_timeout,
            setup_concurrency,
            json,
        } => {
            let pace = match (rate, concurrency) {
                (Some(per_sec), _) => Pace::Open { per_sec },
                (None, Some(concurrency)) => Pace::Closed { concurrency },
                (None, None) => {
                    anyhow::bail!("give --rate (open loop) or --concurrency (closed loop)")
                }
            };
            let report = load::run(LoadConfig {
                target: Target {
                    intake,
                    verifier,
                    maildev: maildev.trim_end_matches('/').to_owned(),
                    admin_key,
                },
                users,
                mix,
                pace,
                duration: Duration::from_secs_f64(seconds),
                decision_timeout: Duration::from_secs_f64(decision_timeout),
                progress: true,
                setup_concurrency,
            })
            .await
            .context("the load run")?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{:?}: {} users, {:.1} s: started {}, decided {}, lost {}; {:.1} decisions/s ({:.1} password logins/s)",
                    report.pace, report.users, report.seconds, report.started, report.decided,
                    report.lost, report.decisions_per_sec, report.password_logins_per_sec
                );
                println!(
                    "{:<16} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    "decision (ms)", "n", "p50", "p90", "p99", "p99.9", "max"
                );
                let rows = report
                    .decision_ms
                    .iter()
                    .map(|(kind, p)| (kind.as_str(), p))
                    .chain(std::iter::once((
                        "mfa round trip",
                        &report.mfa_round_trip_ms,
                    )));
                for (kind, p) in rows {
                    println!(
                        "{kind:<16} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                        p.count, p.p50, p.p90, p.p99, p.p999, p.max
                    );
                }
                println!("outcomes: {:?}", report.outcomes);
                println!("errors: {:?}", report.errors);
            }
            if report.lost > 0 {
                anyhow::bail!("{} logins got no decision", report.lost);
            }
        }
    }
    Ok(())
}
