//! Wiring: database, broker, routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Json, Router};
use mfa_code_hash::{CodeHasher, WeakSecret};
use mfa_http::api_keys::{require_client_key, ApiKeyStore};
use mfa_http::health::{self, Readiness};
use mfa_http::idempotency::{self, idempotent, IdempotencyStore};
use mfa_http::{not_found, MAX_BODY_BYTES};
use mfa_store::housekeeping;

/// When a verify request still marked in flight is taken as abandoned.
const VERIFY_ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(10);
use mfa_bus::kafka::{ensure_topics, KafkaError, KafkaPublisher};
use mfa_runtime::shutdown::Shutdown;
use mfa_store::outbox::{self, OutboxRelay};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::config::Config;
use crate::verify::VerifyState;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Secret(#[from] WeakSecret),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    publisher: Arc<KafkaPublisher>,
    pool: PgPool,
    housekeeping_interval: Duration,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let hasher = CodeHasher::rotating(
            config.code_hmac_secret.clone(),
            config.code_hmac_previous_secret.clone(),
        )?;
        let pool = mfa_store::db::connect(&config.infra.database_url, 20).await?;
        mfa_store::db::migrate(&pool).await?;
        ensure_topics(&config.infra.kafka).await?;
        let publisher = Arc::new(KafkaPublisher::new(&config.infra.kafka)?);
        let state = VerifyState {
            pool: pool.clone(),
            hasher,
            topics: Arc::new(config.infra.kafka.topics()),
            code_limits: config.code_limits,
        };
        let api = Router::new()
            .route(
                "/v1/challenges/{challenge_id}/verify",
                post(crate::verify::verify).layer(from_fn_with_state(
                    // A try is one transaction that locks its challenge: even a try taken
                    // for abandoned while it still runs can't use a code twice.
                    IdempotencyStore::new(pool.clone(), "verifier", VERIFY_ABANDONED_AFTER),
                    idempotent,
                )),
            )
            .route_layer(from_fn_with_state(
                ApiKeyStore::new(pool.clone()),
                require_client_key,
            ))
            .with_state(state);
        let router = Router::new()
            .merge(api)
            .route(
                "/openapi.json",
                get(|| async { Json(crate::openapi::ApiDoc::openapi()) }),
            )
            .merge(health::routes(Readiness {
                pool: pool.clone(),
                publisher: publisher.clone(),
            }))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(TraceLayer::new_for_http());
        let listener = TcpListener::bind(config.addr).await?;
        Ok(Self {
            listener,
            router,
            publisher,
            pool,
            housekeeping_interval: config.infra.housekeeping_interval,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), StartupError> {
        let housekeeping = tokio::spawn(housekeeping::run(
            self.pool.clone(),
            vec![
                idempotency::sweep(
                    "DELETE FROM idempotency_keys WHERE scope LIKE 'verifier:%' AND created_at < $1",
                ),
                outbox::sweep(),
            ],
            self.housekeeping_interval,
            shutdown.clone(),
        ));
        let relay = OutboxRelay {
            pool: self.pool,
            publisher: self.publisher.clone(),
            producer: crate::verify::PRODUCER,
        };
        // The relay stops after the server: the last tries' events still leave.
        let (relay_stop, relay_shutdown) = Shutdown::new();
        let relay = tokio::spawn(relay.run(relay_shutdown));
        let mut stop = shutdown;
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await?;
        relay_stop.fire();
        let _ = tokio::join!(housekeeping, relay);
        self.publisher.flush(Duration::from_secs(5)).await;
        Ok(())
    }
}
