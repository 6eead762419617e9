use std::sync::Arc;
use std::time::Duration;

use mfa_store::housekeeping::{self, Sweep};
use sqlx::PgPool;

use mfa_bus::kafka::{ensure_topics, DeadLetters, KafkaConsumer, KafkaError, KafkaPublisher};
use mfa_bus::DecodingHandler;
use mfa_runtime::shutdown::Shutdown;
use mfa_store::outbox::OutboxRelay;

use crate::config::Config;
use crate::consumer::RiskHandler;
use crate::store::RiskStore;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("configuration: {0}")]
    Config(#[from] mfa_runtime::config::ConfigError),
}

pub struct Worker {
    consumer: KafkaConsumer,
    housekeeping: (PgPool, Vec<Sweep>, Duration),
    handler: RiskHandler,
    dead_letters: DeadLetters,
    publisher: Arc<KafkaPublisher>,
}

impl Worker {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        // Reading the databases (tens of MB of CSV) is blocking work: not on an async worker.
        let geoip = config.model.geoip.clone();
        let geo = Arc::new(
            tokio::task::spawn_blocking(move || geoip.open())
                .await
                .expect("opening the GeoIP databases does not panic")?,
        );
        if geo.is_empty() {
            tracing::warn!(
                "no GeoIP database configured: deciding without ASN, country and travel"
            );
        }
        let pool = mfa_store::db::connect(&config.infra.database_url, 10).await?;
        mfa_store::db::migrate(&pool).await?;
        let kafka = &config.infra.kafka;
        ensure_topics(kafka).await?;
        let topics = Arc::new(kafka.topics());
        let publisher = Arc::new(KafkaPublisher::new(kafka)?);
        let consumer = KafkaConsumer::new(
            kafka,
            &kafka.group_id("risk-worker"),
            &[
                &topics.login_attempts,
                &topics.verifications,
                &topics.challenges,
                &topics.accounts,
            ],
        )?;
        Ok(Self {
            consumer,
            housekeeping: (
                pool.clone(),
                crate::housekeeping::sweeps(&config.model.policy),
                config.infra.housekeeping_interval,
            ),
            dead_letters: DeadLetters::new(publisher.clone(), topics.dead_letters.clone()),
            handler: RiskHandler {
                store: RiskStore::new(pool.clone()),
                topics,
                policy: config.model.policy,
                geo,
            },
            publisher,
        })
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), StartupError> {
        tracing::info!("risk-worker consuming");
        let (pool, sweeps, interval) = self.housekeeping;
        let housekeeping = tokio::spawn(housekeeping::run(
            pool.clone(),
            sweeps,
            interval,
            shutdown.clone(),
        ));
        // The relay stops after the consumer: the last decisions still leave.
        let (relay_stop, relay_shutdown) = Shutdown::new();
        let relay = tokio::spawn(
            OutboxRelay {
                pool,
                publisher: self.publisher.clone(),
                producer: crate::consumer::PRODUCER,
            }
            .run(relay_shutdown),
        );
        self.consumer
            .run(DecodingHandler(self.handler), self.dead_letters, shutdown)
            .await;
        relay_stop.fire();
        let _ = tokio::join!(housekeeping, relay);
        self.publisher.flush(Duration::from_secs(5)).await;
        Ok(())
    }
}
