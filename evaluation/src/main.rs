//! `risk-eval`: generate scenarios, inspect them, and score the risk engine on them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use risk_evaluation::feedback::ReportRate;
use risk_evaluation::generator::{self, Scenario};
use risk_evaluation::geoip_files::{default_fetch_script, GeoIpFiles};
use risk_evaluation::harness::{self, ReplayCommand};
use risk_evaluation::population::ScenarioConfig;
use risk_evaluation::report;
use risk_evaluation::stats::Stats;

#[derive(Parser)]
#[command(
    name = "risk-eval",
    version,
    about = "Evaluation benchmark of the adaptive-MFA risk engine",
    after_help = "Reads MFA_GEOIP_CITY_DB and MFA_GEOIP_ASN_DB (else runs --fetch-geoip); the replay it
drives inherits the environment, so the model's MFA_RISK_* and deny-list variables apply to it.
scripts/risk-benchmark runs the benchmark of BENCHMARKS.md; README.md, sections Configuration
and Replay, lists the variables."
)]
struct Cli {
    /// Script printing MFA_GEOIP_CITY_DB / MFA_GEOIP_ASN_DB, used when they are not set.
    #[arg(long, global = true)]
    fetch_geoip: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Population {
    #[arg(long, default_value_t = 2000)]
    users: u32,
    #[arg(long, default_value_t = 60)]
    days: i64,
    /// First day of the simulated period (UTC).
    #[arg(long, default_value = "2025-10-01")]
    start: NaiveDate,
    #[arg(long, default_value_t = 40)]
    companies: usize,
}

impl Population {
    fn config(&self, seed: u64) -> ScenarioConfig {
        let start: DateTime<Utc> = self.start.and_time(chrono::NaiveTime::MIN).and_utc();
        ScenarioConfig {
            seed,
            users: self.users,
            days: self.days,
            start,
            companies: self.companies.max(1),
        }
    }
}

#[derive(Args, Clone)]
struct Replay {
    /// The risk worker binary (run as `<bin> replay [--model NAME]`).
    #[arg(long, default_value = "target/release/risk-worker")]
    replay_bin: PathBuf,
    /// Passed to the replay as `--model`.
    #[arg(long)]
    model: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Write the LoginAttempted stream of one seed as JSON lines.
    Generate {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        population: Population,
        #[arg(long)]
        out: PathBuf,
        /// Also write each login's label (JSON lines, same order, keyed by attempt_id).
        #[arg(long)]
        labels: Option<PathBuf>,
    },
    /// Print the population and label rates of one or more seeds.
    Stats {
        #[arg(long, value_delimiter = ',', default_value = "1")]
        seeds: Vec<u64>,
        #[command(flatten)]
        population: Population,
    },
    /// Drive the scenarios through the replay and print the scores.
    Run {
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        seeds: Vec<u64>,
        #[command(flatten)]
        population: Population,
        #[command(flatten)]
        replay: Replay,
        /// Write exactly what was sent to the replay (MFA events included) to
        /// DIR/seed-<N>.jsonl, for `throughput`.
        #[arg(long)]
        record_dir: Option<PathBuf>,
        /// Send but do not score the logins of the first N days: the users' enrolment, in
        /// which each uses the devices they own (a deployment that has run for a while).
        /// 0 scores the cold start too, where every device's first login looks new.
        #[arg(long, default_value_t = 14)]
        warmup_days: i64,
        /// Leave out the breakdown tables.
        #[arg(long)]
        summary_only: bool,
        /// Issue 17: each seed is run again with victims reporting "wasn't me" for this
        /// share of attackers' emailed codes (an assumption, see evaluation/src/feedback.rs),
        /// and the attackers' repeats after a report are scored both ways. 0: no second run.
        #[arg(long, default_value_t = ReportRate::default())]
        feedback_rate: ReportRate,
    },
    /// Seal a recorded file's personal fields as the services do (data keys made in
    /// MFA_DATABASE_URL under MFA_MASTER_KEYS, unknown accounts by MFA_PSEUDONYM_KEY), for
    /// `throughput` with the same settings; print the cost of sealing and opening a login.
    Seal {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Time the replay reading a recorded file from stdin; print decisions per second.
    Throughput {
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        replay: Replay,
        /// Runs; the best is reported with the others.
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
}

fn geoip(cli_script: &Option<PathBuf>) -> Result<GeoIpFiles> {
    let script = cli_script.clone().unwrap_or_else(default_fetch_script);
    GeoIpFiles::locate(&script).context(
        "GeoIP data not found: set MFA_GEOIP_CITY_DB and MFA_GEOIP_ASN_DB, or run scripts/fetch-geoip",
    )
}

fn generate(seed: u64, population: &Population, geo: &GeoIpFiles) -> Result<Scenario> {
    let started = std::time::Instant::now();
    let scenario = generator::generate(population.config(seed), geo)?;
    eprintln!(
        "[risk-eval] seed {seed}: {} logins generated in {:.1}s",
        scenario.logins.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(scenario)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Seal { input, output } => {
            let protection = mfa_runtime::config::DataProtection::from_env()?;
            let database_url = mfa_runtime::config::Env::secret("MFA_DATABASE_URL")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(async {
                let pool = mfa_store::db::connect(&database_url, 4).await?;
                mfa_store::db::migrate(&pool).await?;
                let keys = mfa_store::data_keys::DataKeys::new(pool, protection.master_keys);
                let input = std::io::BufReader::new(
                    File::open(&input).with_context(|| format!("opening {}", input.display()))?,
                );
                let output = BufWriter::new(
                    File::create(&output)
                        .with_context(|| format!("creating {}", output.display()))?,
                );
                risk_evaluation::sealing::seal_lines(
                    input,
                    output,
                    &keys,
                    &protection.pseudonym_key,
                )
                .await
            })?;
            println!("{}", report.render());
        }
        Command::Generate {
            seed,
            population,
            out,
            labels,
        } => {
            let geo = geoip(&cli.fetch_geoip)?;
            let scenario = generate(seed, &population, &geo)?;
            let mut file = BufWriter::new(
                File::create(&out).with_context(|| format!("creating {}", out.display()))?,
            );
            generator::write_events(&scenario.logins, &mut file)?;
            if let Some(path) = labels {
                let mut file = BufWriter::new(
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?,
                );
                generator::write_labels(&scenario.logins, &mut file)?;
            }
        }
        Command::Stats { seeds, population } => {
            let geo = geoip(&cli.fetch_geoip)?;
            for seed in seeds {
                let scenario = generate(seed, &population, &geo)?;
                println!("== seed {seed}\n{}", Stats::of(&scenario).render());
            }
        }
        Command::Run {
            seeds,
            population,
            replay,
            record_dir,
            warmup_days,
            summary_only,
            feedback_rate,
        } => {
            let geo = geoip(&cli.fetch_geoip)?;
            let command = ReplayCommand {
                bin: replay.replay_bin.clone(),
                model: replay.model.clone(),
                geoip: Some(geo.clone()),
            };
            let mut reports = Vec::new();
            let mut feedback = Vec::new();
            for seed in seeds {
                let scenario = generate(seed, &population, &geo)?;
                let mut record = match &record_dir {
                    Some(dir) => {
                        std::fs::create_dir_all(dir)?;
                        let path = dir.join(format!("seed-{seed}.jsonl"));
                        Some(BufWriter::new(
                            File::create(&path)
                                .with_context(|| format!("creating {}", path.display()))?,
                        ))
                    }
                    None => None,
                };
                let output = harness::drive(
                    &scenario,
                    &command,
                    None,
                    record.as_mut().map(|w| w as &mut dyn Write),
                )?;
                eprintln!(
                    "[risk-eval] seed {seed}: {} decisions in {:.1}s",
                    output.decisions.len(),
                    output.elapsed.as_secs_f64()
                );
                let scored_from = scenario.config.start + chrono::Duration::days(warmup_days);
                reports.push(report::score(
                    seed,
                    &scenario,
                    &output.decisions,
                    output.elapsed.as_secs_f64(),
                    scored_from,
                ));
                if feedback_rate.get() > 0.0 {
                    let mut record = match &record_dir {
                        Some(dir) => {
                            let path = dir.join(format!("seed-{seed}-feedback.jsonl"));
                            Some(BufWriter::new(
                                File::create(&path)
                                    .with_context(|| format!("creating {}", path.display()))?,
                            ))
                        }
                        None => None,
                    };
                    let with = harness::drive(
                        &scenario,
                        &command,
                        Some(feedback_rate),
                        record.as_mut().map(|w| w as &mut dyn Write),
                    )?;
                    eprintln!(
                        "[risk-eval] seed {seed}, with feedback: {} decisions, {} reports, in {:.1}s",
                        with.decisions.len(),
                        with.reports.len(),
                        with.elapsed.as_secs_f64()
                    );
                    let scored = report::score(
                        seed,
                        &scenario,
                        &with.decisions,
                        with.elapsed.as_secs_f64(),
                        scored_from,
                    );
                    feedback.push(report::score_feedback(
                        scored,
                        &scenario,
                        &with.decisions,
                        &output.decisions,
                        &with.reports,
                        scored_from,
                    ));
                }
            }
            let mut model = replay.model.clone().unwrap_or_else(|| "default".to_owned());
            if warmup_days > 0 {
                model.push_str(&format!(", {warmup_days}-day warm-up"));
            }
            println!("{}", report::render_summary(&reports, &model));
            if !feedback.is_empty() {
                println!(
                    "{}",
                    report::render_feedback_summary(&reports, &feedback, feedback_rate.get())
                );
            }
            if !summary_only {
                println!("{}", report::render_breakdown(&reports));
                if !feedback.is_empty() {
                    println!("{}", report::render_feedback_breakdown(&feedback));
                }
            }
        }
        Command::Throughput {
            input,
            replay,
            runs,
        } => {
            let geo = geoip(&cli.fetch_geoip)?;
            let command = ReplayCommand {
                bin: replay.replay_bin,
                model: replay.model,
                geoip: Some(geo),
            };
            let mut best: Option<f64> = None;
            for run in 1..=runs.max(1) {
                let t = harness::throughput(&command, &input)?;
                let per_wall = t.decisions as f64 / t.wall.as_secs_f64().max(1e-9);
                let per_cpu = t.decisions as f64 / t.cpu.as_secs_f64().max(1e-9);
                println!(
                    "run {run}: {} decisions in {:.3}s wall ({:.3}s CPU): {:.0} decisions/s wall, {:.0}/s per CPU second",
                    t.decisions,
                    t.wall.as_secs_f64(),
                    t.cpu.as_secs_f64(),
                    per_wall,
                    per_cpu
                );
                best = Some(best.map_or(per_wall, |b: f64| b.max(per_wall)));
            }
            if let Some(best) = best {
                println!("best: {best:.0} decisions/s (whole process, start-up and GeoIP loading included; target >= 20000)");
            }
        }
    }
    Ok(())
}
