use std::sync::Arc;
use std::time::Duration;

use mfa_store::housekeeping;
use sqlx::PgPool;

use mfa_bus::kafka::{ensure_topics, DeadLetters, KafkaConsumer, KafkaError, KafkaPublisher};
use mfa_bus::DecodingHandler;
use mfa_code_hash::{CodeHasher, WeakSecret};
use mfa_runtime::shutdown::Shutdown;

use crate::challenges::ChallengeStore;
use crate::config::Config;
use crate::consumer::CodeHandler;
use crate::email::{EmailError, Mailer};
use crate::sender::EmailSender;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("smtp: {0}")]
    Smtp(#[from] EmailError),
    #[error(transparent)]
    Secret(#[from] WeakSecret),
}

pub struct Worker {
    consumer: KafkaConsumer,
    sender: Arc<EmailSender>,
    housekeeping: (PgPool, Duration),
    handler: CodeHandler,
    dead_letters: DeadLetters,
    publisher: Arc<KafkaPublisher>,
}

impl Worker {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let hasher = CodeHasher::new(config.code_hmac_secret)?;
        let mailer = Mailer::new(&config.smtp)?;
        let pool = mfa_store::db::connect(&config.infra.database_url, 10).await?;
        mfa_store::db::migrate(&pool).await?;
        let kafka = &config.infra.kafka;
        ensure_topics(kafka).await?;
        let topics = Arc::new(kafka.topics());
        let publisher = Arc::new(KafkaPublisher::new(kafka)?);
        let consumer = KafkaConsumer::new(
            kafka,
            &kafka.group_id("code-worker"),
            &[&topics.risk_decisions, &topics.accounts],
        )?;
        let store = ChallengeStore::new(pool.clone());
        let wake = Arc::new(Notify::new());
        let sender = Arc::new(EmailSender {
            store: store.clone(),
            hasher: hasher.clone(),
            mailer,
            publisher: publisher.clone(),
            topics: topics.clone(),
            retry: config.email_retry,
            wake: wake.clone(),
        });
        Ok(Self {
            consumer,
            sender,
            housekeeping: (pool.clone(), config.infra.housekeeping_interval),
            dead_letters: DeadLetters::new(publisher.clone(), topics.dead_letters.clone()),
            handler: CodeHandler {
                store,
                hasher,
                publisher: publisher.clone(),
                topics,
                retry: config.email_retry,
                wake_sender: wake,
            },
            publisher,
        })
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), StartupError> {
        tracing::info!("code-worker consuming");
        let (pool, interval) = self.housekeeping;
        let housekeeping = tokio::spawn(housekeeping::run(
            pool,
            crate::housekeeping::sweeps(),
            interval,
            shutdown.clone(),
        ));
        let sender = tokio::spawn(self.sender.run(shutdown.clone()));
        self.consumer
            .run(DecodingHandler(self.handler), self.dead_letters, shutdown)
            .await;
        let _ = tokio::join!(housekeeping, sender);
        self.publisher.flush(Duration::from_secs(5)).await;
        Ok(())
    }
}
