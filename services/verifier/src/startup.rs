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
use mfa_http::idempotency::{idempotent, IdempotencyStore};
use mfa_http::{not_found, MAX_BODY_BYTES};
use mfa_store::housekeeping;

/// When a verify request still marked in flight is taken as abandoned.
const VERIFY_ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(10);
use mfa_bus::kafka::{ensure_topics, KafkaError, KafkaPublisher};
use mfa_bus::metrics::BusMetrics;
use mfa_http::observe::HttpMetrics;
use mfa_metrics::{MetricsListener, Registry, SharedRegistry};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::{InjectedFault, Supervisor, TaskFailure};
use mfa_store::outbox::{OutboxMetrics, OutboxRelay};
use mfa_store::pool_metrics::PoolMetrics;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::config::Config;
use crate::metrics::VerifierMetrics;
use crate::verify::VerifyState;
use mfa_code_hash::feedback_link::LinkSigner;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    MetricsListener(#[from] mfa_metrics::BindError),
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka")]
    Kafka(#[from] KafkaError),
    #[error("binding the listen address")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Secret(#[from] WeakSecret),
    #[error(transparent)]
    LinkSecret(#[from] mfa_code_hash::feedback_link::WeakLinkSecret),
    #[error("a task stopped the service")]
    Task(#[from] TaskFailure),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    publisher: Arc<KafkaPublisher>,
    pool: PgPool,
    /// `GET /metrics` on a listener of its own (`MFA_METRICS_ADDR`); None: on the API's.
    metrics_listener: Option<MetricsListener>,
    registry: SharedRegistry,
    pool_metrics: PoolMetrics,
    outbox_metrics: OutboxMetrics,
    audit_signer: shared::audit::AuditSigner,
    checkpoints_topic: String,
    housekeeping_interval: Duration,
    shutdown_timeout: Duration,
    fault: Option<InjectedFault>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let link_signer = match &config.feedback_link_secret {
            Some(secret) => LinkSigner::new(secret.clone())?,
            None => LinkSigner::derived_from(&config.code_hmac_secret)?,
        };
        let hasher = CodeHasher::rotating(
            config.code_hmac_secret.clone(),
            config.code_hmac_previous_secret.clone(),
        )?;
        let pool = mfa_store::db::connect(&config.infra.database_url, 20).await?;
        mfa_store::db::migrate(&pool).await?;
        ensure_topics(&config.infra.kafka).await?;
        // The service's own registry (never a global: the end-to-end tests run every service
        // in one process), complete before it is shared with whoever answers `/metrics`.
        let mut registry = Registry::default();
        let bus_metrics = BusMetrics::register(&mut registry);
        let pool_metrics = PoolMetrics::register(&mut registry);
        let outbox_metrics = OutboxMetrics::register(&mut registry);
        let http_metrics = HttpMetrics::register(&mut registry);
        let metrics = VerifierMetrics::register(&mut registry);
        let registry: SharedRegistry = Arc::new(registry);
        let publisher = Arc::new(KafkaPublisher::new(&config.infra.kafka, &bus_metrics)?);
        let state = VerifyState {
            pool: pool.clone(),
            hasher,
            topics: Arc::new(config.infra.kafka.topics()),
            code_limits: config.code_limits,
            metrics,
        };
        let api = Router::new()
            .route(
                "/v1/challenges/{challenge_id}/verify",
                post(crate::verify::verify)
                    .layer(from_fn_with_state(
                        // A try is one transaction that locks its challenge: even a try taken
                        // for abandoned while it still runs can't use a code twice.
                        IdempotencyStore::new(pool.clone(), "verifier", VERIFY_ABANDONED_AFTER),
                        idempotent,
                    ))
                    // On the method, not the router: a wrong method is `405` before the key
                    // is looked at.
                    .route_layer(from_fn_with_state(
                        ApiKeyStore::new(pool.clone()),
                        require_client_key,
                    )),
            )
            .with_state(state);
        // No API key: the user's browser follows the links of the notification email.
        let feedback_links = Router::new()
            .route(
                "/v1/login-feedback/{token}",
                get(crate::feedback::show).post(crate::feedback::confirm),
            )
            .with_state(crate::feedback::FeedbackState {
                pool: pool.clone(),
                data_keys: mfa_store::data_keys::DataKeys::new(
                    pool.clone(),
                    config.infra.data_protection.master_keys.clone(),
                ),
                signer: link_signer,
                topics: Arc::new(config.infra.kafka.topics()),
            });
        let mut router = Router::new().merge(api).merge(feedback_links);
        if config.metrics_addr.is_none() {
            router = router.merge(mfa_metrics::endpoint(registry.clone()));
        }
        let router = router
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
            // A router layer, not around the router: the matched route is known by then.
            .layer(from_fn_with_state(http_metrics, mfa_http::observe::record))
            .layer(TraceLayer::new_for_http().make_span_with(mfa_http::observe::request_span));
        let router = mfa_http::edge::around(router);
        let listener = TcpListener::bind(config.addr).await?;
        // Bound here, so an address in use stops the service at start-up.
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(MetricsListener::bind(addr).await?),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            publisher,
            pool,
            metrics_listener,
            registry,
            pool_metrics,
            outbox_metrics,
            checkpoints_topic: config.infra.kafka.topics().audit_checkpoints,
            audit_signer: config.audit_signer,
            housekeeping_interval: config.infra.housekeeping_interval,
            shutdown_timeout: config.infra.shutdown_timeout,
            fault: None,
        })
    }

    #[expect(
        clippy::expect_used,
        reason = "the listener was bound in build: a bound socket has an address"
    )]
    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `GET /metrics` answers: the metrics listener's address, or the API's when
    /// `/metrics` is one of its routes.
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_listener
            .as_ref()
            .map_or_else(|| self.address(), MetricsListener::address)
    }

    /// Makes the task `fault` names fail, for tests of the supervision (`MFA_TEST_FAIL_TASK`).
    pub fn inject_fault(mut self, fault: Option<InjectedFault>) -> Self {
        self.fault = fault;
        self
    }

    /// Serves until `shutdown`, or until one of its tasks ends on its own: then the others
    /// are stopped too and that task's failure is returned.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), StartupError> {
        let mut tasks = Supervisor::new(shutdown, self.shutdown_timeout).inject(self.fault);
        let sweeping = self.pool.clone();
        let interval = self.housekeeping_interval;
        tasks.spawn("housekeeping", |stop| {
            housekeeping::run(sweeping, crate::housekeeping::sweeps(), interval, stop)
        });
        let (listener, router) = (self.listener, self.router);
        tasks.spawn("http-server", |mut stop| async move {
            mfa_http::serve::serve(listener, router, async move { stop.wait().await }).await
        });
        if let Some(listener) = self.metrics_listener {
            let registry = self.registry.clone();
            tasks.spawn("metrics-server", |mut stop| async move {
                listener
                    .serve(registry, async move { stop.wait().await })
                    .await
            });
        }
        let (pool, pool_metrics) = (self.pool.clone(), self.pool_metrics);
        tasks.spawn("db-pool-metrics", |stop| pool_metrics.run(pool, stop));
        // The relay stops after the server: the last tries' events still leave.
        let relay = OutboxRelay {
            pool: self.pool,
            publisher: self.publisher.clone(),
            producer: crate::verify::PRODUCER,
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
