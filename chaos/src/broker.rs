//! The Kafka-API broker, Tansu, on PostgreSQL storage in a cluster of its own: it can be
//! killed and started again on the same port with its topics, messages and committed
//! offsets, and it fails independently of the services' database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::postgres::PrivateCluster;
use mfa_testkit::net::{free_port, wait_for_port};

use crate::process::Process;
use crate::HarnessError;

/// Our schema for Tansu 0.6.0's PostgreSQL storage engine, which does not create its own.
const SCHEMA: &str = include_str!("../../scripts/tansu-postgres-schema.sql");

pub struct Broker {
    tansu: PathBuf,
    pub port: u16,
    storage_url: String,
    log: PathBuf,
    process: Option<Process>,
    storage: PrivateCluster,
}

impl Broker {
    pub async fn start(tansu: &Path, pg_bin: &Path, folder: &Path) -> Result<Self, HarnessError> {
        let storage = PrivateCluster::launch(pg_bin, folder, "broker-postgres").await?;
        storage.create_database("tansu").await?;
        let storage_url = storage.url("tansu");
        let mut connection = PgConnection::connect(&storage_url).await?;
        sqlx::raw_sql(SCHEMA).execute(&mut connection).await?;
        let mut broker = Self {
            tansu: tansu.to_path_buf(),
            port: free_port()?,
            storage_url,
            log: folder.join("tansu.log"),
            process: None,
            storage,
        };
        broker.start_again().await?;
        Ok(broker)
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let args: Vec<String> = [
            "broker",
            "--cluster-id",
            "adaptive-mfa-chaos",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            &self.storage_url,
        ]
        .map(str::to_owned)
        .into();
        let env = [
            // CHAOS_TANSU_LOG, e.g. `warn,tansu_broker::coordinator=debug` to follow the
            // consumer groups.
            (
                "RUST_LOG".to_owned(),
                std::env::var("CHAOS_TANSU_LOG").unwrap_or_else(|_| "warn".to_owned()),
            ),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        self.process = Some(Process::spawn(
            "tansu",
            &self.tansu,
            &args,
            &env,
            &self.log,
        )?);
        Ok(wait_for_port(self.port, Duration::from_secs(30), "tansu").await?)
    }

    /// SIGKILL: the broker dies with requests in flight.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// The PostgreSQL cluster the broker stores into.
    pub fn storage(&self) -> &PrivateCluster {
        &self.storage
    }
}
