use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mfa_store::housekeeping::{self, Sweep};
use sqlx::PgPool;

use mfa_bus::kafka::{ensure_topics, DeadLetters, KafkaConsumer, KafkaError, KafkaPublisher};
use mfa_bus::metrics::BusMetrics;
use mfa_bus::DecodingHandler;
use mfa_metrics::{MetricsListener, Registry, SharedRegistry};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::{InjectedFault, Supervisor, TaskFailure};
use mfa_store::outbox::{OutboxMetrics, OutboxRelay};
use mfa_store::pool_metrics::PoolMetrics;

use crate::config::Config;
use crate::consumer::RiskHandler;
use crate::metrics::RiskMetrics;
use crate::store::RiskStore;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka")]
    Kafka(#[from] KafkaError),
    #[error("configuration")]
    Config(#[from] mfa_runtime::config::ConfigError),
    #[error("a task stopped the service")]
    Task(#[from] TaskFailure),
    #[error("opening the GeoIP databases panicked")]
    GeoIpPanicked(#[source] tokio::task::JoinError),
    #[error(transparent)]
    MetricsListener(#[from] mfa_metrics::BindError),
}

pub struct Worker {
    consumer: KafkaConsumer,
    housekeeping: (PgPool, Vec<Sweep>, Duration),
    handler: RiskHandler,
    dead_letters: DeadLetters,
    publisher: Arc<KafkaPublisher>,
    outbox_metrics: OutboxMetrics,
    audit_signer: shared::audit::AuditSigner,
    checkpoints_topic: String,
    pool_metrics: PoolMetrics,
    metrics: (MetricsListener, SharedRegistry),
    shutdown_timeout: Duration,
    fault: Option<InjectedFault>,
}

impl Worker {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        // Reading the databases (tens of MB of CSV) is blocking work: not on an async worker.
        let geoip = config.model.geoip.clone();
        let geo = Arc::new(
            tokio::task::spawn_blocking(move || geoip.open())
                .await
                .map_err(StartupError::GeoIpPanicked)??,
        );
        if geo.is_empty() {
            tracing::warn!(
                "no GeoIP database configured: deciding without ASN, country and travel"
            );
        }
        // Bound first: a port taken by another process fails the start, not a task later.
        let metrics_listener = MetricsListener::bind(config.metrics_addr).await?;
        let mut registry = Registry::default();
        let bus = BusMetrics::register(&mut registry);
        let pool_metrics = PoolMetrics::register(&mut registry);
        let outbox_metrics = OutboxMetrics::register(&mut registry);
        let risk_metrics = RiskMetrics::register(&mut registry);
        let pool = mfa_store::db::connect(&config.infra.database_url, 10).await?;
        mfa_store::db::migrate(&pool).await?;
        let kafka = &config.infra.kafka;
        ensure_topics(kafka).await?;
        let topics = Arc::new(kafka.topics());
        let publisher = Arc::new(KafkaPublisher::new(kafka, &bus)?);
        let consumer = KafkaConsumer::new(
            kafka,
            &kafka.group_id("risk-worker"),
            &[
                &topics.login_attempts,
                &topics.verifications,
                &topics.challenges,
                &topics.accounts,
            ],
            &bus,
        )?;
        Ok(Self {
            consumer,
            housekeeping: (
                pool.clone(),
                crate::housekeeping::sweeps(&config.model.policy),
                config.infra.housekeeping_interval,
            ),
            dead_letters: DeadLetters::new(publisher.clone(), topics.dead_letters.clone()),
            checkpoints_topic: topics.audit_checkpoints.clone(),
            audit_signer: config.audit_signer,
            handler: RiskHandler {
                store: RiskStore::new(
                    pool.clone(),
                    config.infra.data_protection.pseudonym_key.clone(),
                ),
                topics,
                policy: config.model.policy,
                geo,
                metrics: risk_metrics,
                pseudonyms: config.infra.data_protection.pseudonym_key.clone(),
                data_keys: mfa_store::data_keys::DataKeys::new(
                    pool.clone(),
                    config.infra.data_protection.master_keys.clone(),
                ),
            },
            publisher,
            outbox_metrics,
            pool_metrics,
            metrics: (metrics_listener, Arc::new(registry)),
            shutdown_timeout: config.infra.shutdown_timeout,
            fault: None,
        })
    }

    /// Where `GET /metrics` answers (the bound port, when the configured one was 0).
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics.0.address()
    }

    /// Makes the task `fault` names fail, for tests of the supervision (`MFA_TEST_FAIL_TASK`).
    pub fn inject_fault(mut self, fault: Option<InjectedFault>) -> Self {
        self.fault = fault;
        self
    }

    /// Consumes until `shutdown`, or until one of its tasks ends on its own: then the others
    /// are stopped too and that task's failure is returned.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), StartupError> {
        tracing::info!("risk-worker consuming");
        let mut tasks = Supervisor::new(shutdown, self.shutdown_timeout).inject(self.fault);
        let (pool, sweeps, interval) = self.housekeeping;
        let (listener, registry) = self.metrics;
        tasks.spawn("metrics-server", |mut stop| {
            listener.serve(registry, async move { stop.wait().await })
        });
        let (probed, pool_metrics) = (pool.clone(), self.pool_metrics);
        tasks.spawn("db-pool-metrics", |stop| pool_metrics.run(probed, stop));
        let sweeping = pool.clone();
        tasks.spawn("housekeeping", |stop| {
            housekeeping::run(sweeping, sweeps, interval, stop)
        });
        // The worker opens an unknown email's login under its group's key: kept in memory as
        // a known account's is, so that neither decides faster (see `DataKeys`).
        let data_keys = self.handler.data_keys.clone();
        tasks.spawn("unknown-account-keys", |stop| {
            data_keys.keep_unknown_account_keys_ready(stop)
        });
        let (consumer, handler, dead_letters) = (self.consumer, self.handler, self.dead_letters);
        tasks.spawn("consumer", |stop| {
            consumer.run(DecodingHandler(handler), dead_letters, stop)
        });
        // The relay stops after the consumer: the last decisions still leave.
        let relay = OutboxRelay {
            pool,
            publisher: self.publisher.clone(),
            producer: crate::consumer::PRODUCER,
            signer: self.audit_signer,
            checkpoints_topic: self.checkpoints_topic,
            metrics: self.outbox_metrics,
        };
        tasks.spawn_drain("outbox-relay", |stop| relay.run(stop));
        let outcome = tasks.run().await;
        self.publisher.flush(Duration::from_secs(5)).await;
        Ok(outcome?)
    }
}
