//! The whole benchmark of issue 12 (`mfa-bench suite`, which `scripts/bench` runs): the
//! argon2id baseline, the four release services started on a fresh database and topic
//! namespace, the closed-loop throughput, the latency at half of it, the SSO path, a sweep of
//! open-loop rates for the chart, the risk worker alone, and each service's memory. It ends
//! with one line of JSON: the headline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::argon2_rate::{self, Argon2Rate, Argon2RateError, KEYCLOAK_COST};
use crate::chart::{Chart, SweepPoint};
use crate::headline::{self, Headline, Measured};
use crate::hops::{self, Hops};
use crate::load::{self, Drive, LoadError, LoadReport, Mix, Pace, Percentiles, SetUp, Target};
use crate::risk_worker::{RiskBench, RiskBenchError, RiskWorkerReport};
use crate::system::{Deployment, ServiceMemory, Stack, System, SystemError, ADMIN_KEY};

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("the argon2id baseline")]
    Argon2(#[from] Argon2RateError),
    #[error("the argon2id baseline's thread")]
    Argon2Thread(#[source] tokio::task::JoinError),
    #[error(transparent)]
    System(#[from] SystemError),
    #[error("setting up the users")]
    Load(#[from] LoadError),
    #[error("the risk worker alone")]
    RiskWorker(#[from] RiskBenchError),
    #[error("reading {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", .path.display())]
    Results { path: PathBuf, reason: String },
    #[error("the idle CPU time")]
    Cpu(#[from] crate::cpu::CpuError),
    #[error("writing {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The folder with the release binaries.
    pub binaries: PathBuf,
    /// The services' logs and the run's full results go here.
    pub folder: PathBuf,
    /// Where the chart is written.
    pub chart: PathBuf,
    pub users: usize,
    /// Each closed-loop level and each point of the sweep.
    pub step: Duration,
    /// The half-load and SSO runs.
    pub latency_run: Duration,
    pub concurrency_levels: Vec<usize>,
    pub sso_rate: f64,
    /// The sweep's rates, as fractions of the argon2 ceiling.
    pub sweep: Vec<f64>,
    pub risk_users: usize,
    pub risk_events: usize,
    pub idle_settle: Duration,
    /// The broker's process, to measure its idle CPU beside the services' (scripts/bench
    /// passes the stack's Tansu).
    pub broker_pid: Option<u32>,
}

/// One closed-loop level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: usize,
    pub password_logins_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
    pub errors: u64,
}

/// Everything the run measured; written next to the logs as `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// The chart's line under its title: the machine and the day.
    pub subtitle: String,
    pub cores: usize,
    /// The higher of the two measurements of the ceiling.
    pub argon2_ceiling: Argon2Rate,
    /// Verifications per second before the services started and after the closed loop.
    pub argon2_ceiling_measurements: [f64; 2],
    pub argon2_one_thread: Argon2Rate,
    pub keycloak_cost: Argon2Rate,
    pub idle: Vec<ServiceMemory>,
    /// CPU while idle after start-up: each service's, and the broker's when its pid is known.
    pub idle_cpu: Vec<crate::cpu::CpuShare>,
    pub closed_loop: Vec<Level>,
    pub saturating_concurrency: usize,
    pub sustained_per_s: f64,
    pub half_load: LoadReport,
    pub sso: LoadReport,
    pub realistic_mix: LoadReport,
    /// Where the half-load password logins' time went.
    pub hops: Hops,
    pub sweep: Vec<SweepPoint>,
    /// Peak memory after the runs at or under the sustained rate (before the sweep).
    pub peak_before_sweep: Vec<ServiceMemory>,
    /// Peak memory at the end, the sweep's overload included.
    pub peak: Vec<ServiceMemory>,
    pub risk_worker: RiskWorkerReport,
    pub headline: Headline,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

const KNOWN_ONLY: Mix = Mix {
    known: 1,
    new_device: 0,
    wrong_password: 0,
    sso: 0,
};
const SSO_ONLY: Mix = Mix {
    known: 0,
    new_device: 0,
    wrong_password: 0,
    sso: 1,
};

fn say(line: &str) {
    eprintln!("[bench] {line}");
}

/// The machine's 1-minute load average: other work on the cores shows in every figure, so
/// each run's line says how busy they were.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

async fn measure_argon2(
    cost: login_intake::password::Argon2Cost,
    threads: usize,
    seconds: f64,
) -> Result<Argon2Rate, SuiteError> {
    tokio::task::spawn_blocking(move || {
        argon2_rate::measure(cost, threads, Duration::from_secs_f64(seconds))
    })
    .await
    .map_err(SuiteError::Argon2Thread)?
    .map_err(SuiteError::from)
}

fn known_percentiles(report: &LoadReport) -> Percentiles {
    report.decision_ms.get("known").cloned().unwrap_or_default()
}

fn print_run(what: &str, report: &LoadReport) {
    let all = report.decision_ms.get("all").cloned().unwrap_or_default();
    println!(
        "{what}: {:.1} decisions/s ({:.1} password logins/s), started {}, decided {}, lost {}, \
         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms; errors {:?}; \
         load average {}",
        report.decisions_per_sec,
        report.password_logins_per_sec,
        report.started,
        report.decided,
        report.lost,
        all.p50,
        all.p90,
        all.p99,
        all.p999,
        all.max,
        report.errors,
        load_average()
    );
}

fn print_memory(when: &str, memory: &[ServiceMemory]) {
    for service in memory {
        println!(
            "memory {when}: {:<13} resident {:>6.1} MiB, peak {:>6.1} MiB",
            service.service,
            service.memory.rss_mib(),
            service.memory.peak_mib()
        );
    }
}

/// The hops of the half-load run's logins, from the system's event log (empty when it
/// cannot be read: the figures stand without it).
async fn half_load_hops(system: &System, half_load: &LoadReport) -> Hops {
    let kafka = system.deployment.kafka();
    let topics = kafka.topics();
    let read = |topic: String| {
        let brokers = kafka.brokers.clone();
        let partitions = kafka.partitions;
        tokio::task::spawn_blocking(move || {
            hops::read_times(&brokers, &topic, partitions, Duration::from_secs(3))
        })
    };
    let (attempts, decisions) = (
        read(topics.login_attempts.clone()).await,
        read(topics.risk_decisions.clone()).await,
    );
    match (attempts, decisions) {
        (Ok(Ok(attempts)), Ok(Ok(decisions))) => {
            hops::hops(&half_load.timings, &attempts, &decisions)
        }
        _ => {
            say("could not read the event log for the hops");
            Hops::default()
        }
    }
}

fn print_hops(hops: &Hops) {
    println!(
        "where the half-load logins' time goes ({} logins; p50 / p90 / p99 ms; broker timestamps in whole ms):",
        hops.logins
    );
    for (name, hop) in [
        (
            "client -> LoginAttempted stamped (HTTP, argon2)",
            &hops.intake,
        ),
        (
            "-> its broker record (commit, outbox relay)",
            &hops.intake_to_broker,
        ),
        (
            "-> risk worker's decision stamped (broker, fetch)",
            &hops.broker_to_risk,
        ),
        (
            "-> its broker record (reads, model, commit, relay)",
            &hops.risk,
        ),
        (
            "-> client has the decision (broker, intake, HTTP)",
            &hops.back_to_client,
        ),
        ("total", &hops.total),
    ] {
        println!(
            "  {name:<52} {:>7.1} {:>7.1} {:>7.1}",
            hop.p50_ms, hop.p90_ms, hop.p99_ms
        );
    }
}

pub async fn run(config: SuiteConfig) -> Result<SuiteReport, SuiteError> {
    let stack = Stack::from_env()?;
    println!(
        "the services' fetch.wait.max.ms: {} (MFA_KAFKA_FETCH_WAIT_MS)",
        stack.fetch_wait_ms
    );
    let cores = cores();

    // a. The ceiling, before the services start, so nothing else of the benchmark competes.
    say("argon2id baseline");
    let cost = login_intake::password::OWASP_COST;
    let ceiling = measure_argon2(cost, cores, 5.0).await?;
    let one_thread = measure_argon2(cost, 1, 3.0).await?;
    let keycloak = measure_argon2(KEYCLOAK_COST, cores, 5.0).await?;
    println!(
        "argon2id, login-intake's cost (m = {} KiB, t = {}), {} threads: {:.1} verifications/s \
         (the ceiling); one thread: {:.2} ms each",
        ceiling.memory_kib, ceiling.passes, ceiling.threads, ceiling.per_sec, one_thread.ms_each
    );
    println!(
        "argon2id, Keycloak's cost (m = {} KiB, t = {}): {:.1} verifications/s per core \
         (Keycloak's sizing: 15 password logins/s per vCPU)",
        keycloak.memory_kib, keycloak.passes, keycloak.per_sec_per_thread
    );
    let argon2_ms = one_thread.ms_each;

    // The four services, on a fresh database and namespace.
    say("starting the four release services");
    let deployment = Deployment::fresh(
        &stack,
        "system",
        2,
        &config.binaries,
        &config.folder.join("system"),
    )
    .await?;
    let mut system = System::start(deployment).await?;
    // The idle settle is when the idle CPU is measured: the consumers' fetch loops, the
    // relays' polls, the broker answering them.
    let mut watched: Vec<(String, u32)> = system
        .services
        .iter()
        .map(|service| (service.name().to_owned(), service.pid()))
        .collect();
    if let Some(pid) = config.broker_pid {
        watched.push(("broker".to_owned(), pid));
    }
    let idle_cpu = crate::cpu::share_over(&watched, config.idle_settle).await?;
    let idle = system.memory()?;
    print_memory("idle", &idle);
    println!(
        "CPU idle (% of one core, over {:.0} s): {}",
        config.idle_settle.as_secs_f64(),
        idle_cpu
            .iter()
            .map(|share| format!("{} {:.1}", share.name, share.percent_of_a_core))
            .collect::<Vec<_>>()
            .join(", ")
    );

    say(&format!("creating and enrolling {} users", config.users));
    let prepared = load::prepare(SetUp {
        target: Target {
            intake: system.intake_url.clone(),
            verifier: system.verifier_url.clone(),
            maildev: stack.maildev_url.clone(),
            admin_key: ADMIN_KEY.to_owned(),
        },
        users: config.users,
        setup_concurrency: 16,
        progress: true,
    })
    .await?;
    let drive = |mix, pace, duration| Drive {
        mix,
        pace,
        duration,
        decision_timeout: Duration::from_secs(30),
        progress: true,
    };
    let mut lost = 0;

    // b. Closed loop, known-device password logins, until the rate stops growing.
    let mut levels: Vec<Level> = Vec::new();
    for &concurrency in &config.concurrency_levels {
        say(&format!("closed loop, {concurrency} in flight"));
        let report = prepared
            .drive(drive(KNOWN_ONLY, Pace::Closed { concurrency }, config.step))
            .await;
        system.check_running()?;
        print_run(&format!("closed loop, {concurrency} in flight"), &report);
        lost += report.lost;
        let known = known_percentiles(&report);
        levels.push(Level {
            concurrency,
            password_logins_per_s: report.password_logins_per_sec,
            p50_ms: known.p50,
            p99_ms: known.p99,
            lost: report.lost,
            errors: report.errors.values().sum(),
        });
        let rates: Vec<f64> = levels.iter().map(|l| l.password_logins_per_s).collect();
        // Two levels in a row that add less than 5%: the plateau is found.
        if let [.., a, b, c] = rates.as_slice() {
            if headline::stopped_growing(*a, *b) && headline::stopped_growing(a.max(*b), *c) {
                break;
            }
        }
    }
    let (saturating, sustained) = headline::saturation(
        &levels
            .iter()
            .map(|l| (l.concurrency, l.password_logins_per_s))
            .collect::<Vec<_>>(),
    )
    .unwrap_or((0, 0.0));
    // The ceiling once more, right after the closed loop (the services idle): other work on
    // the machine comes and goes, and the ratio is taken against the higher of the two, so a
    // busy moment at the start does not flatter it.
    let ceiling_again = measure_argon2(cost, cores, 5.0).await?;
    println!(
        "argon2id ceiling again, after the closed loop: {:.1} verifications/s",
        ceiling_again.per_sec
    );
    let ceiling_measurements = [ceiling.per_sec, ceiling_again.per_sec];
    let ceiling = if ceiling_again.per_sec > ceiling.per_sec {
        ceiling_again
    } else {
        ceiling
    };
    println!(
        "sustained: {sustained:.1} password logins/s (saturates at {saturating} in flight), \
         {:.3} of the argon2 ceiling ({:.1}/s, the higher of the two)",
        sustained / ceiling.per_sec.max(f64::MIN_POSITIVE),
        ceiling.per_sec
    );

    // c. Open loop at half the sustained rate; the SSO path alone; the realistic mix.
    let half_rate = (sustained / 2.0).max(1.0);
    say(&format!("open loop at half load, {half_rate:.1}/s"));
    let half_load = prepared
        .drive(drive(
            KNOWN_ONLY,
            Pace::Open { per_sec: half_rate },
            config.latency_run,
        ))
        .await;
    print_run(
        &format!("open loop at half load ({half_rate:.1}/s)"),
        &half_load,
    );
    lost += half_load.lost;
    say(&format!("SSO only, {:.1}/s", config.sso_rate));
    let sso = prepared
        .drive(drive(
            SSO_ONLY,
            Pace::Open {
                per_sec: config.sso_rate,
            },
            config.latency_run,
        ))
        .await;
    print_run(&format!("SSO only ({:.1}/s)", config.sso_rate), &sso);
    lost += sso.lost;
    say("the realistic mix at half load");
    let realistic_mix = prepared
        .drive(drive(
            Mix::default(),
            Pace::Open { per_sec: half_rate },
            config.latency_run,
        ))
        .await;
    print_run(
        &format!("mix 70/10/10/10 at {half_rate:.1}/s"),
        &realistic_mix,
    );
    println!(
        "  mix by kind: {}; MFA round trip p50 {:.1} ms, p99 {:.1} ms",
        realistic_mix
            .decision_ms
            .iter()
            .map(|(kind, p)| format!("{kind} p50 {:.1} / p99 {:.1} ms", p.p50, p.p99))
            .collect::<Vec<_>>()
            .join(", "),
        realistic_mix.mfa_round_trip_ms.p50,
        realistic_mix.mfa_round_trip_ms.p99
    );
    lost += realistic_mix.lost;
    system.check_running()?;

    let peak_before_sweep = system.memory()?;
    print_memory("before the sweep", &peak_before_sweep);
    let hops = half_load_hops(&system, &half_load).await;
    print_hops(&hops);

    // d. The sweep, for the chart. Past the ceiling logins queue: lost ones are named on the
    // chart, and not in the headline's count (no deployment runs past its ceiling).
    let mut sweep = Vec::new();
    for fraction in &config.sweep {
        let rate = (ceiling.per_sec * fraction).max(0.5);
        say(&format!(
            "sweep: {rate:.1}/s ({:.0}% of the ceiling)",
            fraction * 100.0
        ));
        let report = prepared
            .drive(Drive {
                decision_timeout: Duration::from_secs(10),
                ..drive(KNOWN_ONLY, Pace::Open { per_sec: rate }, config.step)
            })
            .await;
        print_run(&format!("sweep {rate:.1}/s"), &report);
        let known = known_percentiles(&report);
        sweep.push(SweepPoint {
            offered_per_s: rate,
            decided_per_s: report.password_logins_per_sec,
            p50_ms: known.p50,
            p90_ms: known.p90,
            p99_ms: known.p99,
            lost: report.lost,
        });
    }

    // f. Peak memory, before the services stop.
    let peak = system.memory()?;
    print_memory("at the end", &peak);
    system.stop().await?;

    // e. The risk worker alone.
    say(&format!(
        "the risk worker alone: {} users' history, then {} LoginAttempted, one replica and two",
        config.risk_users, config.risk_events
    ));
    let risk_deployment = Deployment::fresh(
        &stack,
        "risk",
        2,
        &config.binaries,
        &config.folder.join("risk-worker"),
    )
    .await?;
    let risk_database = risk_deployment.database_name.clone();
    let risk_worker = RiskBench {
        deployment: risk_deployment,
        users: config.risk_users,
        events: config.risk_events,
    }
    .run(&[1, 2])
    .await?;
    // The rows are not needed again; a failed drop leaves a database behind, not a wrong figure.
    if let Err(error) = stack.drop_database(&risk_database).await {
        say(&format!("could not drop {risk_database}: {error}"));
    }
    println!(
        "risk worker history: {} users, {} of their second logins approved from it, {:.1} s",
        risk_worker.users, risk_worker.approved_from_history, risk_worker.history_seconds
    );
    for run in &risk_worker.runs {
        println!(
            "risk worker, {} replica(s), {} partitions: {} LoginAttempted decided and published in \
             {:.1} s: {:.0}/s ({:.1} s from the start; published in {:.1} s); decisions {:?}; \
             missing {}; peak RSS {:?}",
            run.replicas,
            risk_worker.partitions,
            run.events,
            run.seconds,
            run.events_per_s,
            run.seconds_from_start,
            run.publish_seconds,
            run.decisions,
            run.missing,
            run.peak_rss_mib
        );
        lost += run.missing as u64;
    }
    let risk_worker_events_per_s = risk_worker
        .runs
        .iter()
        .find(|run| run.replicas == 1)
        .map_or(0.0, |run| run.events_per_s);

    let half_known = known_percentiles(&half_load);
    let sso_all = sso.decision_ms.get("sso").cloned().unwrap_or_default();
    let idle_mib: Vec<f64> = idle.iter().map(|s| s.memory.rss_mib()).collect();
    let peak_mib: Vec<f64> = peak.iter().map(|s| s.memory.peak_mib()).collect();
    let headline = Headline::of(&Measured {
        ceiling_per_s: ceiling.per_sec,
        argon2_ms,
        sustained_per_s: sustained,
        half_load: &half_known,
        sso: &sso_all,
        risk_worker_events_per_s,
        idle_rss_mib: &idle_mib,
        peak_rss_mib: &peak_mib,
        lost,
    });

    let subtitle = format!(
        "{cores} cores, release build, {} users; argon2id m = {} KiB, t = {}; {}",
        config.users,
        ceiling.memory_kib,
        ceiling.passes,
        chrono::Utc::now().format("%Y-%m-%d")
    );
    let svg = Chart {
        points: &sweep,
        ceiling_per_s: ceiling.per_sec,
        sustained_per_s: sustained,
        argon2_ms,
        subtitle: &subtitle,
    }
    .svg();
    write(&config.chart, svg.as_bytes())?;
    println!("chart: {}", config.chart.display());

    let report = SuiteReport {
        subtitle,
        cores,
        argon2_ceiling: ceiling,
        argon2_ceiling_measurements: ceiling_measurements,
        argon2_one_thread: one_thread,
        keycloak_cost: keycloak,
        idle,
        idle_cpu,
        closed_loop: levels,
        saturating_concurrency: saturating,
        sustained_per_s: sustained,
        half_load,
        sso,
        realistic_mix,
        hops,
        sweep,
        peak_before_sweep,
        peak,
        risk_worker,
        headline,
    };
    let results = config.folder.join("results.json");
    write(
        &results,
        &serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )?;
    println!("all figures: {}", results.display());
    Ok(report)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SuiteError> {
    std::fs::write(path, bytes).map_err(|source| SuiteError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The chart drawn again from a run's `results.json` (`mfa-bench chart`): the figures of that
/// run, the drawing of this build.
pub fn redraw(results: &Path, chart: &Path) -> Result<(), SuiteError> {
    let text = std::fs::read(results).map_err(|source| SuiteError::Read {
        path: results.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| SuiteError::Results {
        path: results.to_path_buf(),
        reason,
    };
    let report: serde_json::Value =
        serde_json::from_slice(&text).map_err(|error| bad(error.to_string()))?;
    let number = |pointer: &str| {
        report
            .pointer(pointer)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| bad(format!("no number at {pointer}")))
    };
    let sweep: Vec<SweepPoint> = serde_json::from_value(report["sweep"].clone())
        .map_err(|error| bad(format!("sweep: {error}")))?;
    let subtitle = match report["subtitle"].as_str() {
        Some(subtitle) => subtitle.to_owned(),
        None => format!(
            "{} cores, release build; argon2id m = {} KiB, t = {}",
            number("/cores")?,
            number("/argon2_ceiling/memory_kib")?,
            number("/argon2_ceiling/passes")?
        ),
    };
    let svg = Chart {
        points: &sweep,
        ceiling_per_s: number("/argon2_ceiling/per_sec")?,
        sustained_per_s: number("/sustained_per_s")?,
        argon2_ms: number("/argon2_one_thread/ms_each")?,
        subtitle: &subtitle,
    }
    .svg();
    write(chart, svg.as_bytes())
}
