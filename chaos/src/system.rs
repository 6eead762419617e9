//! One run's system: the services' PostgreSQL cluster, the broker (on a PostgreSQL cluster of
//! its own), the SMTP server behind a proxy, and the services as processes, with the faults
//! a scenario can inject. The harness is also the services' supervisor: one that exits by
//! itself is started again (and counted), as an orchestrator would.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mfa_testkit::audit_keys::AuditKeys;
use mfa_testkit::net::{free_port, wait_for_port};
use mfa_testkit::proxy::{Mode, TcpProxy};
use mfa_testkit::stack::DataProtectionKeys;
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::broker::Broker;
use crate::mailbox::Mailbox;
use crate::postgres::PrivateCluster;
use crate::process::{run_folder, Process};
use crate::tools::Tools;
use crate::HarnessError;

pub const ADMIN_KEY: &str = "chaos-admin-key-0123456789";
pub const HMAC_SECRET: &str = "chaos-hmac-secret-that-is-at-least-32-bytes";
pub const NAMESPACE: &str = "chaos";
pub const PARTITIONS: i32 = 3;

pub use mfa_testkit::services::ServiceKind;

struct Service {
    kind: ServiceKind,
    replica: usize,
    /// The HTTP port, kept across restarts so clients find it again.
    port: Option<u16>,
    process: Option<Process>,
}

/// A fault the scenario injected, and when (seconds since the system started).
#[derive(Debug, Clone)]
pub struct Fault {
    pub at_secs: f64,
    pub what: String,
}

pub struct System {
    // Fields drop in order: the services stop before the servers they use.
    services: Vec<Service>,
    /// Logs of every server and service of the run.
    pub folder: PathBuf,
    tools: Tools,
    database: PrivateCluster,
    database_url: String,
    broker: Broker,
    pub mailbox: Mailbox,
    smtp_proxy: TcpProxy,
    pub intake_url: String,
    pub verifier_url: String,
    /// A client API key of company `acme`.
    pub api_key: String,
    /// The services' database, for the audit (it reconnects after a restart).
    pub pool: PgPool,
    pub faults: Vec<Fault>,
    /// Services that exited without being told to, started again by [`System::tend`].
    pub unplanned_exits: Vec<String>,
    /// Each SIGTERM's service and how long it took to exit (None: killed after 15 s).
    pub graceful_stops: Vec<(String, Option<Duration>)>,
    /// Accounts deleted through the admin API while the broker was down; the audit checks
    /// that each was announced after all.
    pub deleted_in_outages: Vec<uuid::Uuid>,
    /// The services' signing keys (one per service, its replicas share it); the auditor's
    /// key file is written to `audit-public-keys.json` in the run's folder.
    pub audit_keys: AuditKeys,
    /// The personal-data keys every service of the system shares.
    pub data_keys: DataProtectionKeys,
    started: Instant,
}

impl System {
    pub async fn start(label: &str) -> Result<Self, HarnessError> {
        let started = Instant::now();
        // It runs scripts/install-tools: off the async workers.
        let tools = tokio::task::spawn_blocking(Tools::locate)
            .await
            .map_err(HarnessError::task("locating the tools"))??;
        let folder = run_folder(label)?;
        let audit_keys = AuditKeys::generate();
        std::fs::write(
            folder.join("audit-public-keys.json"),
            audit_keys.key_file_json(),
        )
        .map_err(HarnessError::io("writing the audit key file"))?;
        let database = PrivateCluster::launch(&tools.pg_bin, &folder, "services-postgres").await?;
        database.create_database("adaptive_mfa").await?;
        let database_url = database.url("adaptive_mfa");
        let broker = Broker::start(&tools.tansu, &tools.pg_bin, &folder).await?;
        let mailbox = Mailbox::start(&tools.maildev, &folder).await?;
        let smtp_proxy = TcpProxy::start(([127, 0, 0, 1], mailbox.smtp_port).into()).await?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(&database_url)?;
        let mut system = Self {
            folder,
            tools,
            database,
            database_url,
            broker,
            mailbox,
            smtp_proxy,
            services: Vec::new(),
            intake_url: String::new(),
            verifier_url: String::new(),
            api_key: String::new(),
            pool,
            faults: Vec::new(),
            unplanned_exits: Vec::new(),
            graceful_stops: Vec::new(),
            deleted_in_outages: Vec::new(),
            audit_keys,
            data_keys: DataProtectionKeys::generate(),
            started,
        };
        // login-intake first: its migrations create the tables the others use.
        for kind in ServiceKind::ALL {
            let replica = system.add_replica(kind).await?;
            debug_assert_eq!(replica, 0);
        }
        system.api_key = system.create_api_key().await?;
        Ok(system)
    }

    /// Starts one more process of `kind`; its replica number.
    pub async fn add_replica(&mut self, kind: ServiceKind) -> Result<usize, HarnessError> {
        let replica = self.services.iter().filter(|s| s.kind == kind).count();
        let port = kind.serves_http().then(free_port).transpose()?;
        if let Some(port) = port {
            let url = format!("http://127.0.0.1:{port}");
            match kind {
                ServiceKind::LoginIntake => self.intake_url = url,
                _ => self.verifier_url = url,
            }
        }
        self.services.push(Service {
            kind,
            replica,
            port,
            process: None,
        });
        let index = self.services.len() - 1;
        self.start_service(index).await?;
        Ok(replica)
    }

    #[expect(
        clippy::panic,
        reason = "a scenario names only replicas it started: another is a bug in the scenario"
    )]
    fn index_of(&self, kind: ServiceKind, replica: usize) -> usize {
        self.services
            .iter()
            .position(|s| s.kind == kind && s.replica == replica)
            .unwrap_or_else(|| panic!("no replica {replica} of {kind:?}"))
    }

    /// Starts the service and waits until it listens (when it serves HTTP).
    async fn start_service(&mut self, index: usize) -> Result<(), HarnessError> {
        let name = self.spawn_service(index)?;
        if let Some(port) = self.services[index].port {
            // Migrations and the broker's metadata come first; on a restarted database or
            // broker that can take a while.
            wait_for_port(port, Duration::from_secs(60), &name).await?;
        }
        Ok(())
    }

    /// Starts the service's process without waiting for it; its name.
    fn spawn_service(&mut self, index: usize) -> Result<String, HarnessError> {
        let (kind, replica, port) = {
            let service = &self.services[index];
            (service.kind, service.replica, service.port)
        };
        let env = self.service_env(kind, port);
        let name = format!("{}-{replica}", kind.binary());
        let process = Process::spawn(
            &name,
            &self.tools.service_binary(kind.binary()),
            &[],
            &env,
            &self.folder.join(format!("{name}.log")),
        )?;
        self.services[index].process = Some(process);
        Ok(name)
    }

    fn service_env(&self, kind: ServiceKind, port: Option<u16>) -> Vec<(String, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("MFA_DATABASE_URL", self.database_url.clone()),
            ("MFA_KAFKA_BROKERS", self.broker.address()),
            ("MFA_TOPIC_NAMESPACE", NAMESPACE.into()),
            ("MFA_TOPIC_PARTITIONS", PARTITIONS.to_string()),
            ("MFA_KAFKA_FETCH_WAIT_MS", "5".into()),
            ("RUST_LOG", "info".into()),
            (
                "MFA_AUDIT_SIGNING_KEY",
                self.audit_keys.configured(kind.binary()),
            ),
            // Replicas of a worker side by side: each its own free port for /metrics (the
            // HTTP services answer it on their API port).
            (
                "MFA_METRICS_ADDR",
                match kind {
                    ServiceKind::RiskWorker | ServiceKind::CodeWorker => "127.0.0.1:0".into(),
                    _ => String::new(),
                },
            ),
        ];
        env.extend(self.data_keys.env());
        let address = port.map(|port| format!("127.0.0.1:{port}"));
        let unlimited = "1000000/60".to_owned();
        match kind {
            ServiceKind::LoginIntake => env.extend([
                ("MFA_INTAKE_ADDR", address.unwrap_or_default()),
                ("MFA_ADMIN_API_KEY", ADMIN_KEY.into()),
                ("MFA_RATE_LIMIT_PER_IP", unlimited.clone()),
                ("MFA_RATE_LIMIT_PER_ACCOUNT_AND_IP", unlimited.clone()),
                ("MFA_RATE_LIMIT_PER_ACCOUNT", unlimited.clone()),
                ("MFA_RATE_LIMIT_PER_API_KEY", unlimited),
            ]),
            ServiceKind::Verifier => env.extend([
                ("MFA_VERIFIER_ADDR", address.unwrap_or_default()),
                ("MFA_CODE_HMAC_SECRET", HMAC_SECRET.into()),
                ("MFA_FAILED_CODES_PER_DAY", "100000".into()),
            ]),
            // Every login of the run is one of a few users: the caps that protect a real
            // inbox would stop the load, so they are lifted.
            ServiceKind::RiskWorker => env.extend([
                ("MFA_CODE_EMAILS_PER_HOUR", "100000".into()),
                ("MFA_CODE_EMAIL_MIN_GAP_SECS", "0".into()),
                ("MFA_FAILED_CODES_PER_DAY", "100000".into()),
            ]),
            ServiceKind::CodeWorker => env.extend([
                ("MFA_CODE_HMAC_SECRET", HMAC_SECRET.into()),
                ("MFA_SMTP_HOST", "127.0.0.1".into()),
                ("MFA_SMTP_PORT", self.smtp_proxy.addr.port().to_string()),
                ("MFA_SMTP_TLS", "none".into()),
                (
                    "MFA_SMTP_FROM",
                    "Adaptive MFA <no-reply@adaptive-mfa.test>".into(),
                ),
            ]),
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    async fn create_api_key(&self) -> Result<String, HarnessError> {
        let response: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/admin/api-keys", self.intake_url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({ "company_id": "acme", "name": "chaos", "platforms": null }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        response["api_key"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| HarnessError::setup("create an API key", response))
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn record(&mut self, what: String) {
        self.faults.push(Fault {
            at_secs: self.started.elapsed().as_secs_f64(),
            what,
        });
    }

    /// SIGKILL one replica of a service.
    pub fn kill(&mut self, kind: ServiceKind, replica: usize) {
        let index = self.index_of(kind, replica);
        if let Some(mut process) = self.services[index].process.take() {
            process.kill();
        }
        self.record(format!("SIGKILL {}-{replica}", kind.binary()));
    }

    /// Starts a killed replica again.
    pub async fn restart(&mut self, kind: ServiceKind, replica: usize) -> Result<(), HarnessError> {
        let index = self.index_of(kind, replica);
        self.start_service(index).await
    }

    /// SIGTERM one replica and wait for it to exit (killed after 15 s); the time it took
    /// goes to [`System::graceful_stops`].
    pub async fn terminate(&mut self, kind: ServiceKind, replica: usize) {
        let index = self.index_of(kind, replica);
        self.record(format!("SIGTERM {}-{replica}", kind.binary()));
        if let Some(mut process) = self.services[index].process.take() {
            let stopping =
                tokio::task::spawn_blocking(move || process.terminate(Duration::from_secs(15)));
            #[expect(
                clippy::expect_used,
                reason = "terminate only sends signals and polls: a panic there is a bug to see"
            )]
            let took = stopping
                .await
                .expect("waiting for a process does not panic");
            self.graceful_stops
                .push((format!("{}-{replica}", kind.binary()), took));
        }
    }

    /// Deletes an account through the admin API; it must commit although the broker is down.
    pub async fn delete_user_in_outage(&mut self, user_id: uuid::Uuid) -> Result<(), HarnessError> {
        let response = reqwest::Client::new()
            .delete(format!("{}/v1/admin/users/{user_id}", self.intake_url))
            .bearer_auth(ADMIN_KEY)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::NO_CONTENT {
            let status = response.status();
            return Err(HarnessError::setup(
                "delete a user while the broker is down",
                format!(
                    "answered {status}: {}",
                    response.text().await.unwrap_or_default()
                ),
            ));
        }
        self.deleted_in_outages.push(user_id);
        Ok(())
    }

    pub fn kill_broker(&mut self) {
        self.broker.kill();
        self.record("SIGKILL the broker".into());
    }

    pub async fn restart_broker(&mut self) -> Result<(), HarnessError> {
        self.broker.start_again().await
    }

    /// The services' PostgreSQL stops at once (`-m immediate`), connections cut.
    pub async fn crash_database(&mut self) -> Result<(), HarnessError> {
        self.record("crash the services' PostgreSQL".into());
        blocking(&self.database, PrivateCluster::crash).await
    }

    pub async fn restart_database(&mut self) -> Result<(), HarnessError> {
        blocking(&self.database, PrivateCluster::start_server).await
    }

    /// The broker's own PostgreSQL stops at once, under a running broker.
    pub async fn crash_broker_storage(&mut self) -> Result<(), HarnessError> {
        self.record("crash the broker's PostgreSQL".into());
        blocking(self.broker.storage(), PrivateCluster::crash).await
    }

    pub async fn restart_broker_storage(&mut self) -> Result<(), HarnessError> {
        blocking(self.broker.storage(), PrivateCluster::start_server).await
    }

    /// The SMTP server refuses connections (down) or hangs (frozen), or comes back.
    pub fn smtp(&mut self, mode: Mode) {
        self.smtp_proxy.set(mode);
        if mode != Mode::Forward {
            self.record(format!("SMTP server {mode:?}"));
        }
    }

    /// Starts again any service that exited without being told to, and says which. It does
    /// not wait for the new process to listen: a service that died in an outage comes back
    /// only once the outage ends, and waiting for it here would hold back the scenario step
    /// that ends the outage (the client's retries ride out the gap, as they would under an
    /// orchestrator).
    pub async fn tend(&mut self) -> Result<(), HarnessError> {
        for index in 0..self.services.len() {
            let exited = self.services[index].process.as_mut().and_then(|process| {
                process
                    .exit_status()
                    .map(|status| (process.name().to_owned(), status))
            });
            if let Some((name, status)) = exited {
                self.services[index].process = None;
                self.unplanned_exits.push(format!(
                    "{name} at {:.1} s ({status})",
                    self.started.elapsed().as_secs_f64()
                ));
                self.spawn_service(index)?;
            }
        }
        Ok(())
    }

    /// Waits, tending the services meanwhile.
    pub async fn wait(&mut self, duration: Duration) -> Result<(), HarnessError> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(250).min(until - Instant::now())).await;
            self.tend().await?;
        }
        Ok(())
    }

    pub fn replicas(&self, kind: ServiceKind) -> usize {
        self.services.iter().filter(|s| s.kind == kind).count()
    }

    pub fn brokers(&self) -> String {
        self.broker.address()
    }

    /// Stops everything and removes the run's folder, unless its logs are wanted.
    pub fn finish(self, keep_logs: bool) -> Option<PathBuf> {
        let folder = self.folder.clone();
        drop(self);
        if keep_logs {
            Some(folder)
        } else {
            let _ = std::fs::remove_dir_all(&folder);
            None
        }
    }
}

/// Runs a cluster command (pg_ctl: it blocks for a second or two) off the async workers.
async fn blocking(
    cluster: &PrivateCluster,
    action: fn(&PrivateCluster) -> Result<(), HarnessError>,
) -> Result<(), HarnessError> {
    tokio::task::block_in_place(|| action(cluster))
}
