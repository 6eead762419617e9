//! The scenarios of issue 5, each a sequence of faults injected while the logins go on, and
//! the run that starts a system, drives the load through one scenario after another and
//! audits after each.

use std::time::Duration;

use mfa_testkit::proxy::Mode;

use crate::audit::{audit, Report};
use crate::load::{create_users, Load, LoadOptions, LoginRecord};
use crate::system::{ServiceKind, System};
use crate::HarnessError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// SIGKILL each service in turn, and start it again.
    KillEach,
    /// Two replicas of the risk worker and of the code worker; one of each is killed, the
    /// other takes its partitions over; then it comes back.
    Replicas,
    /// SIGTERM each service in turn, as a rolling deployment does, and start it again: each
    /// must hand its work back and exit within its shutdown timeout (10 s).
    RollingRestart,
    /// SIGKILL the broker and start it again on its PostgreSQL storage.
    BrokerRestart,
    /// The services' PostgreSQL crashes and starts again.
    DatabaseRestart,
    /// The broker's own PostgreSQL crashes and starts again, under the running broker.
    BrokerStorageRestart,
    /// The SMTP server refuses connections for a while, then hangs for a while.
    SmtpOutage,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::KillEach,
        Scenario::RollingRestart,
        Scenario::Replicas,
        Scenario::BrokerRestart,
        Scenario::DatabaseRestart,
        Scenario::BrokerStorageRestart,
        Scenario::SmtpOutage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillEach => "kill-each",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::Replicas => "replicas",
            Scenario::BrokerRestart => "broker-restart",
            Scenario::DatabaseRestart => "database-restart",
            Scenario::BrokerStorageRestart => "broker-storage-restart",
            Scenario::SmtpOutage => "smtp-outage",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Injects the scenario's faults, with `calm` of load before and after each.
    async fn inject(self, system: &mut System, calm: Duration) -> Result<(), HarnessError> {
        system.wait(calm).await?;
        match self {
            Scenario::KillEach => {
                for kind in ServiceKind::ALL {
                    system.kill(kind, 0);
                    system.wait(Duration::from_secs(1)).await?;
                    system.restart(kind, 0).await?;
                    system.wait(calm).await?;
                }
            }
            Scenario::RollingRestart => {
                for kind in ServiceKind::ALL {
                    system.terminate(kind, 0).await;
                    system.restart(kind, 0).await?;
                    system.wait(calm).await?;
                }
            }
            Scenario::Replicas => {
                for kind in [ServiceKind::RiskWorker, ServiceKind::CodeWorker] {
                    if system.replicas(kind) < 2 {
                        system.add_replica(kind).await?;
                    }
                }
                // The group takes both members in before one goes.
                system.wait(calm).await?;
                system.kill(ServiceKind::RiskWorker, 0);
                system.kill(ServiceKind::CodeWorker, 0);
                system.wait(calm.max(Duration::from_secs(10))).await?;
                system.restart(ServiceKind::RiskWorker, 0).await?;
                system.restart(ServiceKind::CodeWorker, 0).await?;
                system.wait(calm).await?;
            }
            Scenario::BrokerRestart => {
                let spare = crate::load::create_users(system, 1).await?;
                system.kill_broker();
                // An admin change at the moment of the outage: it commits (the announcement
                // waits in the outbox) and is published once the broker is back.
                for user in spare {
                    system.delete_user_in_outage(user.user_id).await?;
                }
                system.wait(Duration::from_secs(3)).await?;
                system.restart_broker().await?;
                system.wait(calm).await?;
            }
            Scenario::DatabaseRestart => {
                system.crash_database().await?;
                system.wait(Duration::from_secs(3)).await?;
                system.restart_database().await?;
                system.wait(calm).await?;
            }
            Scenario::BrokerStorageRestart => {
                system.crash_broker_storage().await?;
                system.wait(Duration::from_secs(3)).await?;
                system.restart_broker_storage().await?;
                system.wait(calm).await?;
            }
            Scenario::SmtpOutage => {
                system.smtp(Mode::Refuse);
                system.wait(calm).await?;
                system.smtp(Mode::Forward);
                system.wait(Duration::from_secs(2)).await?;
                system.smtp(Mode::Hang);
                system.wait(calm).await?;
                system.smtp(Mode::Forward);
                system.wait(calm).await?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenarios: Vec<Scenario>,
    pub rounds: usize,
    /// Load before and after each fault.
    pub calm: Duration,
    /// How long the audit waits for the last events before it reports what is missing.
    pub settle: Duration,
    pub load: LoadOptions,
    /// Keep the run's folder of logs even when every check passed.
    pub keep_logs: bool,
}

impl RunOptions {
    /// The short version for the test suite: a few seconds of load around each fault.
    pub fn short(scenario: Scenario) -> Self {
        Self {
            scenarios: vec![scenario],
            rounds: 1,
            calm: Duration::from_secs(5),
            settle: Duration::from_secs(60),
            load: LoadOptions::default(),
            keep_logs: false,
        }
    }
}

/// What a run came to: a report after each scenario (counts cumulative over the run), and
/// where its logs are if they were kept.
pub struct Run {
    pub reports: Vec<Report>,
    pub logs: Option<std::path::PathBuf>,
}

impl Run {
    pub fn passed(&self) -> bool {
        self.reports.iter().all(Report::passed)
    }
}

/// One system for the whole run; the scenarios follow each other, `rounds` times, each with
/// the load running through it and an audit of everything so far after it.
pub async fn run(label: &str, options: &RunOptions) -> Result<Run, HarnessError> {
    let mut system = System::start(label).await?;
    let users = create_users(&system, options.load.users).await?;
    let mut records: Vec<LoginRecord> = Vec::new();
    let mut reports = Vec::new();
    for _ in 0..options.rounds {
        for scenario in &options.scenarios {
            let load = Load::start(&system, &users, &options.load)?;
            let injected = scenario.inject(&mut system, options.calm).await;
            let latest = load.stop().await;
            records.extend(latest.iter().cloned());
            injected?;
            let report = audit(scenario.name(), &system, &records, &latest, options.settle).await?;
            println!("{report}");
            reports.push(report);
        }
    }
    let passed = reports.iter().all(Report::passed);
    // A service that exited by itself is not a violation (it was started again, as an
    // orchestrator would), but its log says why.
    let exits = !system.unplanned_exits.is_empty();
    let logs = system.finish(options.keep_logs || !passed || exits);
    if let Some(folder) = &logs {
        println!("logs of every server and service: {}", folder.display());
    }
    Ok(Run { reports, logs })
}
