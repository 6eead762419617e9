use std::sync::Arc;
use std::time::Duration;

use mfa_store::housekeeping;
use sqlx::PgPool;

use mfa_bus::kafka::{ensure_topics, DeadLetters, KafkaConsumer, KafkaError, KafkaPublisher};
use mfa_bus::DecodingHandler;
use mfa_code_hash::{CodeHasher, WeakSecret};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::{InjectedFault, Supervisor, TaskFailure};

use crate::challenges::ChallengeStore;
use crate::config::Config;
use crate::consumer::CodeHandler;
use crate::email::{EmailError, Mailer};
use crate::sender::EmailSender;
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
    #[error("a task stopped the service")]
    Task(#[from] TaskFailure),
}

pub struct Worker {
    consumer: KafkaConsumer,
    sender: Arc<EmailSender>,
    housekeeping: (PgPool, Duration),
    handler: CodeHandler,
    dead_letters: DeadLetters,
    publisher: Arc<KafkaPublisher>,
    shutdown_timeout: Duration,
    fault: Option<InjectedFault>,
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
            shutdown_timeout: config.infra.shutdown_timeout,
            fault: None,
        })
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
        tasks.spawn("housekeeping", |stop| {
            housekeeping::run(pool, crate::housekeeping::sweeps(), interval, stop)
        });
        let sender = self.sender;
        tasks.spawn("email-sender", |stop| sender.run(stop));
        let (consumer, handler, dead_letters) = (self.consumer, self.handler, self.dead_letters);
        tasks.spawn("consumer", |stop| {
            consumer.run(DecodingHandler(handler), dead_letters, stop)
        });
        let outcome = tasks.run().await;
        self.publisher.flush(Duration::from_secs(5)).await;
        Ok(outcome?)
    }
}
