//! `mfa-bench argon2`, `mfa-bench load`, `mfa-bench suite` (the whole benchmark, which
//! `scripts/bench` runs) and `mfa-bench growth` (how cost grows with users and history): see
//! `BENCHMARKS.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mfa_bench::argon2_rate::{self, KEYCLOAK_COST};
use mfa_bench::growth::{self, GrowthConfig, HistoryShape};
use mfa_bench::load::{self, LoadConfig, Mix, Pace, Target};
use mfa_bench::suite::{self, SuiteConfig};

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
    /// The whole benchmark: starts the release services itself on a fresh database and
    /// topic namespace of the stack (`MFA_DATABASE_URL`, `MFA_KAFKA_BROKERS`, the SMTP
    /// server and maildev, as `.stack/stack.env` exports them), measures, draws the chart,
    /// and ends with one line of JSON, the headline
    Suite {
        /// The folder of the release binaries of the four services
        #[arg(long, default_value = "target/release")]
        binaries: PathBuf,
        /// The services' logs and results.json (default: a new folder under /tmp)
        #[arg(long)]
        folder: Option<PathBuf>,
        /// Where the SVG chart is written
        #[arg(long, default_value = "bench/latency.svg")]
        chart: PathBuf,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Seconds of each closed-loop level and of each point of the sweep
        #[arg(long, default_value_t = 10.0)]
        step_seconds: f64,
        /// Seconds of the half-load, SSO and mixed runs
        #[arg(long, default_value_t = 30.0)]
        latency_seconds: f64,
        /// Closed-loop concurrencies tried, in order, until the rate stops growing
        #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,6,8,12,16,24,32")]
        concurrency: Vec<usize>,
        /// The SSO-only run's rate (logins per second)
        #[arg(long, default_value_t = 20.0)]
        sso_rate: f64,
        /// The sweep's open-loop rates, as fractions of the argon2 ceiling
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.5,0.7,1.0"
        )]
        sweep: Vec<f64>,
        /// Users of the risk worker's own run
        #[arg(long, default_value_t = 3000)]
        risk_users: usize,
        /// LoginAttempted published for each of its runs (one replica, then two)
        #[arg(long, default_value_t = 50_000)]
        risk_events: usize,
        /// Seconds the services idle after start-up before their idle memory is read (their
        /// idle CPU is measured over them)
        #[arg(long, default_value_t = 10.0)]
        idle_settle_seconds: f64,
        /// The broker's process id, to measure its idle CPU too (scripts/bench gives the
        /// stack's Tansu)
        #[arg(long, env = "MFA_BROKER_PID")]
        broker_pid: Option<u32>,
    },
    /// How cost grows with users and history: for each population size, a fresh database
    /// and namespace, the users and their approved logins generated straight into PostgreSQL
    /// (COPY), the release services started on it, then known-device logins of those users:
    /// closed loop (throughput) and open loop at half of it (latency), the risk worker's time
    /// per login, peak memory and the database's size per user. Measured here (2 cores, 180
    /// days at 3 logins a week): 51.2 KiB of database a user, 100,000 users generated in
    /// 101 s; so 1,000,000 need about 50 GiB of disk and 17 minutes or more of generation
    /// (the history's indexes are built at the end); the benchmark holds the global counts
    /// in memory meanwhile, about 5 distinct values a user
    Growth {
        /// The folder of the release binaries of the four services
        #[arg(long, default_value = "target/release")]
        binaries: PathBuf,
        /// The services' logs and results.json (default: a new folder under /tmp)
        #[arg(long)]
        folder: Option<PathBuf>,
        /// Population sizes, in order
        #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
        users: Vec<usize>,
        /// Days of approved logins before now, per user
        #[arg(long, default_value_t = 180)]
        days: u32,
        /// Each user's logins a week (a day has a login with probability this / 7; a fifth
        /// of them from a second device on a second network)
        #[arg(long, default_value_t = 3.0)]
        logins_per_week: f64,
        /// Closed-loop concurrencies tried, in order, until the rate stops growing
        #[arg(long, value_delimiter = ',', default_value = "2,4,8,12,16")]
        concurrency: Vec<usize>,
        /// Seconds of each closed-loop level
        #[arg(long, default_value_t = 10.0)]
        step_seconds: f64,
        /// Seconds of the open-loop run at half the sustained rate
        #[arg(long, default_value_t = 20.0)]
        latency_seconds: f64,
    },
    /// Draws the chart again from a suite run's results.json
    Chart {
        /// The run's results.json (in the folder `suite` printed)
        results: PathBuf,
        #[arg(long, default_value = "bench/latency.svg")]
        chart: PathBuf,
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
        Command::Suite {
            binaries,
            folder,
            chart,
            users,
            step_seconds,
            latency_seconds,
            concurrency,
            sso_rate,
            sweep,
            risk_users,
            risk_events,
            idle_settle_seconds,
            broker_pid,
        } => {
            let seconds = |name: &str, value: f64| {
                if value.is_finite() && value > 0.0 {
                    Ok(Duration::from_secs_f64(value))
                } else {
                    Err(anyhow::anyhow!(
                        "--{name} must be a positive number of seconds"
                    ))
                }
            };
            if sweep.iter().any(|f| !f.is_finite() || *f <= 0.0) {
                anyhow::bail!("--sweep takes positive fractions of the ceiling, e.g. 0.1,0.5,1");
            }
            if concurrency.is_empty() || concurrency.contains(&0) {
                anyhow::bail!("--concurrency takes positive numbers, e.g. 1,2,4,8");
            }
            if users < concurrency.iter().copied().max().unwrap_or(1) {
                anyhow::bail!("--users must be at least the largest --concurrency");
            }
            let folder = folder.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "/tmp/mfa-bench-{}",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S")
                ))
            });
            let report = suite::run(SuiteConfig {
                binaries,
                folder,
                chart,
                users,
                step: seconds("step-seconds", step_seconds)?,
                latency_run: seconds("latency-seconds", latency_seconds)?,
                concurrency_levels: concurrency,
                sso_rate,
                sweep,
                risk_users,
                risk_events,
                idle_settle: seconds("idle-settle-seconds", idle_settle_seconds)?,
                broker_pid,
            })
            .await
            .context("the benchmark")?;
            // The last line: the headline, and nothing after it.
            println!("{}", report.headline.json_line());
        }
        Command::Growth {
            binaries,
            folder,
            users,
            days,
            logins_per_week,
            concurrency,
            step_seconds,
            latency_seconds,
        } => {
            let positive = |name: &str, value: f64| {
                if value.is_finite() && value > 0.0 {
                    Ok(Duration::from_secs_f64(value))
                } else {
                    Err(anyhow::anyhow!(
                        "--{name} must be a positive number of seconds"
                    ))
                }
            };
            if users.is_empty() || users.contains(&0) {
                anyhow::bail!("--users takes positive population sizes, e.g. 1000,100000");
            }
            if concurrency.is_empty() || concurrency.contains(&0) {
                anyhow::bail!("--concurrency takes positive numbers, e.g. 2,4,8");
            }
            if users.iter().min() < concurrency.iter().max() {
                anyhow::bail!("--users must be at least the largest --concurrency");
            }
            if !(logins_per_week > 0.0 && logins_per_week <= 7.0) || days == 0 {
                anyhow::bail!(
                    "--logins-per-week takes 0 to 7 (at most one a day), --days at least 1"
                );
            }
            let folder = folder.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "/tmp/mfa-growth-{}",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S")
                ))
            });
            let report = growth::run(GrowthConfig {
                binaries,
                folder,
                sizes: users,
                history: HistoryShape {
                    days,
                    logins_per_week,
                },
                concurrency_levels: concurrency,
                step: positive("step-seconds", step_seconds)?,
                latency_run: positive("latency-seconds", latency_seconds)?,
            })
            .await
            .context("the growth benchmark")?;
            println!("{}", report.json_line());
        }
        Command::Chart { results, chart } => {
            suite::redraw(&results, &chart).context("drawing the chart")?;
            println!("chart: {}", chart.display());
        }
    }
    Ok(())
}
