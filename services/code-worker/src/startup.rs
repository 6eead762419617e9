use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mfa_store::housekeeping;
use sqlx::PgPool;

use mfa_bus::kafka::{ensure_topics, DeadLetters, KafkaConsumer, KafkaError, KafkaPublisher};
use mfa_bus::metrics::BusMetrics;
use mfa_bus::DecodingHandler;
use mfa_code_hash::{CodeHasher, WeakSecret};
use mfa_metrics::{MetricsListener, Registry, SharedRegistry};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::{InjectedFault, Supervisor, TaskFailure};
use mfa_store::outbox::{OutboxMetrics, OutboxRelay};
use mfa_store::pool_metrics::PoolMetrics;

use crate::challenges::ChallengeStore;
use crate::config::Config;
use crate::consumer::CodeHandler;
use crate::email::{EmailError, Mailer};
use crate::metrics::CodeMetrics;
use crate::notices::{NoticeConfig, NoticeStore, Notifier};
use crate::sender::EmailSender;
use mfa_code_hash::feedback_link::LinkSigner;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka")]
    Kafka(#[from] KafkaError),
    #[error("smtp")]
    Smtp(#[from] EmailError),
    #[error(transparent)]
    Secret(#[from] WeakSecret),
    #[error(transparent)]
    LinkSecret(#[from] mfa_code_hash::feedback_link::WeakLinkSecret),
    #[error("a task stopped the service")]
    Task(#[from] TaskFailure),
    #[error(transparent)]
    MetricsListener(#[from] mfa_metrics::BindError),
    #[error("GeoIP databases")]
    GeoIp(#[from] mfa_runtime::config::ConfigError),
    #[error("the GeoIP loader panicked")]
    GeoIpPanicked(#[source] tokio::task::JoinError),
}

pub struct Worker {
    consumer: KafkaConsumer,
    sender: Arc<EmailSender>,
    notifier: Arc<Notifier>,
    housekeeping: (PgPool, Duration),
    handler: CodeHandler,
    dead_letters: DeadLetters,
    publisher: Arc<KafkaPublisher>,
    relay: OutboxRelay,
    pool_metrics: PoolMetrics,
    metrics: (MetricsListener, SharedRegistry),
    shutdown_timeout: Duration,
    fault: Option<InjectedFault>,
}

impl Worker {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let link_signer = match &config.feedback_links.secret {
            Some(secret) => LinkSigner::new(secret.clone())?,
            None => LinkSigner::derived_from(&config.code_hmac_secret)?,
        };
        let hasher = CodeHasher::new(config.code_hmac_secret)?;
        let mailer = Mailer::new(&config.smtp)?;
        // Bound first: a port taken by another process fails the start, not a task later.
        let metrics_listener = MetricsListener::bind(config.metrics_addr).await?;
        let mut registry = Registry::default();
        let bus = BusMetrics::register(&mut registry);
        let pool_metrics = PoolMetrics::register(&mut registry);
        let code_metrics = CodeMetrics::register(&mut registry);
        let outbox_metrics = OutboxMetrics::register(&mut registry);
        let pool = mfa_store::db::connect(&config.infra.database_url, 10).await?;
        mfa_store::db::migrate(&pool).await?;
        let kafka = &config.infra.kafka;
        ensure_topics(kafka).await?;
        let topics = Arc::new(kafka.topics());
        let publisher = Arc::new(KafkaPublisher::new(kafka, &bus)?);
        let consumer = KafkaConsumer::new(
            kafka,
            &kafka.group_id("code-worker"),
            &[&topics.risk_decisions, &topics.accounts],
            &bus,
        )?;
        let store = ChallengeStore::new(pool.clone());
        // Outcomes a code worker recorded before they went through the outbox.
        let handed = store
            .hand_unpublished_outcomes_to_outbox(&topics.challenges)
            .await?;
        if handed > 0 {
            tracing::info!(
                outcomes = handed,
                "unpublished email outcomes handed to the outbox"
            );
        }
        let wake = Arc::new(Notify::new());
        // Reading the databases' index is file IO: not on an async worker.
        let geoip = config.geoip.clone();
        let geo = Arc::new(
            tokio::task::spawn_blocking(move || geoip.open())
                .await
                .map_err(StartupError::GeoIpPanicked)??,
        );
        if geo.is_empty() {
            tracing::info!("no GeoIP database configured: notifications name no place");
        }
        let notifier = Arc::new(Notifier {
            store: NoticeStore::new(pool.clone()),
            mailer: mailer.clone(),
            config: NoticeConfig {
                signer: link_signer,
                link_base_url: config.feedback_links.base_url.clone(),
                link_ttl: config.feedback_links.ttl,
                geo,
            },
            retry: config.email_retry,
        });
        let sender = Arc::new(EmailSender {
            store: store.clone(),
            hasher: hasher.clone(),
            mailer,
            topics: topics.clone(),
            retry: config.email_retry,
            wake: wake.clone(),
            metrics: code_metrics,
        });
        let relay = OutboxRelay {
            pool: pool.clone(),
            publisher: publisher.clone(),
            producer: crate::consumer::PRODUCER,
            signer: config.audit_signer,
            checkpoints_topic: topics.audit_checkpoints.clone(),
            metrics: outbox_metrics,
        };
        Ok(Self {
            consumer,
            sender,
            notifier,
            housekeeping: (pool.clone(), config.infra.housekeeping_interval),
            dead_letters: DeadLetters::new(publisher.clone(), topics.dead_letters.clone()),
            handler: CodeHandler {
                store,
                hasher,
                topics,
                retry: config.email_retry,
                wake_sender: wake,
                data_keys: mfa_store::data_keys::DataKeys::new(
                    pool.clone(),
                    config.infra.data_protection.master_keys.clone(),
                ),
            },
            publisher,
            relay,
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

    /// Consumes and sends until `shutdown`, or until one of its tasks ends on its own: then
    /// the others are stopped too and that task's failure is returned.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), StartupError> {
        tracing::info!("code-worker consuming");
        let mut tasks = Supervisor::new(shutdown, self.shutdown_timeout).inject(self.fault);
        let (pool, interval) = self.housekeeping;
        let (listener, registry) = self.metrics;
        tasks.spawn("metrics-server", |mut stop| {
            listener.serve(registry, async move { stop.wait().await })
        });
        let (probed, pool_metrics) = (pool.clone(), self.pool_metrics);
        tasks.spawn("db-pool-metrics", |stop| pool_metrics.run(probed, stop));
        tasks.spawn("housekeeping", |stop| {
            housekeeping::run(pool, crate::housekeeping::sweeps(), interval, stop)
        });
        let sender = self.sender;
        tasks.spawn("email-sender", |stop| sender.run(stop));
        let notifier = self.notifier;
        tasks.spawn("login-notices", |stop| notifier.run(stop));
        let (consumer, handler, dead_letters) = (self.consumer, self.handler, self.dead_letters);
        tasks.spawn("consumer", |stop| {
            consumer.run(DecodingHandler(handler), dead_letters, stop)
        });
        // The relay stops after the consumer and the sender: the last outcomes still leave.
        let relay = self.relay;
        tasks.spawn_drain("outbox-relay", |stop| relay.run(stop));
        let outcome = tasks.run().await;
        self.publisher.flush(Duration::from_secs(5)).await;
        Ok(outcome?)
    }
}
