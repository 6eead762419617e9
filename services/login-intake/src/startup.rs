//! Wiring: database, broker, password pool, HTTP routes and the two consumers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use mfa_bus::kafka::KafkaError;
use mfa_bus::kafka::{ensure_topics, DeadLetters, KafkaConsumer, KafkaPublisher};
use mfa_bus::metrics::BusMetrics;
use mfa_bus::DecodingHandler;
use mfa_http::api_keys::{require_client_key, ApiKeyStore};
use mfa_http::deadline::{within_deadline, DependencyDeadline};
use mfa_http::health::{self, Readiness};
use mfa_http::idempotency::{idempotent, IdempotencyStore};
use mfa_http::observe::HttpMetrics;
use mfa_http::{not_found, require_admin_key, AdminKey, MAX_BODY_BYTES};
use mfa_metrics::{MetricsListener, Registry, SharedRegistry};
use mfa_runtime::shutdown::Shutdown;
use mfa_runtime::supervise::{InjectedFault, Supervisor, TaskFailure};
use mfa_store::data_keys::DataKeys;
use mfa_store::outbox::OutboxMetrics;
use mfa_store::pool_metrics::PoolMetrics;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::config::Config;
use crate::decisions::{DecisionRecorder, DecisionWaiters};
use crate::ingress::LoginRequestHandler;
use crate::intake::Intake;
use crate::metrics::{stamp_receipt, IntakeMetrics};
use crate::password::PasswordPool;
use crate::rate_limit::{RateLimiter, RateLimits};
use crate::store::IntakeStore;

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
    #[error("a task stopped the service")]
    Task(#[from] TaskFailure),
}

#[derive(Clone)]
pub struct AppState {
    pub intake: Intake,
    pub limiter: RateLimiter,
    pub rate_limits: RateLimits,
    pub waiters: DecisionWaiters,
    pub decision_wait: Duration,
    pub metrics: IntakeMetrics,
}

pub struct Application {
    config: Config,
    listener: TcpListener,
    router: Router,
    pool: PgPool,
    publisher: Arc<KafkaPublisher>,
    state: AppState,
    /// `GET /metrics` on a listener of its own (`MFA_METRICS_ADDR`); None: on the API's.
    metrics_listener: Option<MetricsListener>,
    registry: SharedRegistry,
    bus_metrics: BusMetrics,
    pool_metrics: PoolMetrics,
    outbox_metrics: OutboxMetrics,
    fault: Option<InjectedFault>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
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
        let metrics = IntakeMetrics::register(&mut registry);
        let registry: SharedRegistry = Arc::new(registry);
        // The outbox relay's (and the dead letters'): no request waits on a publish, since a
        // login's `LoginAttempted` is committed with it and the relay sends it.
        let publisher = Arc::new(KafkaPublisher::new(&config.infra.kafka, &bus_metrics)?);
        let state = AppState {
            intake: Intake {
                store: IntakeStore::new(pool.clone()),
                passwords: PasswordPool::new(
                    config.argon2_threads,
                    config.argon2_queue,
                    metrics.argon2.clone(),
                )?,
                topics: Arc::new(config.infra.kafka.topics()),
                data_keys: DataKeys::new(
                    pool.clone(),
                    config.infra.data_protection.master_keys.clone(),
                ),
                pseudonyms: config.infra.data_protection.pseudonym_key.clone(),
            },
            limiter: RateLimiter::new(pool.clone()),
            rate_limits: config.rate_limits.clone(),
            waiters: DecisionWaiters::default(),
            decision_wait: config.decision_wait,
            metrics,
        };
        let router = router(
            &config,
            state.clone(),
            Readiness {
                pool: pool.clone(),
                publisher: publisher.clone(),
            },
            http_metrics,
            config.metrics_addr.is_none().then(|| registry.clone()),
        );
        let listener = TcpListener::bind(config.addr).await?;
        // Bound here, so an address in use stops the service at start-up.
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(MetricsListener::bind(addr).await?),
            None => None,
        };
        Ok(Self {
            config,
            listener,
            router,
            pool,
            publisher,
            state,
            metrics_listener,
            registry,
            bus_metrics,
            pool_metrics,
            outbox_metrics,
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

    /// Serves until `shutdown`, then stops the consumers and flushes the producer. If one of
    /// the tasks ends first (error, panic, or returning unasked), the others are stopped the
    /// same way and its failure is returned: half a service would accept logins nobody decides.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), StartupError> {
        let kafka = &self.config.infra.kafka;
        let topics = kafka.topics();
        let dead_letters = DeadLetters::new(self.publisher.clone(), topics.dead_letters.clone());
        let decisions = KafkaConsumer::new(
            kafka,
            &kafka.group_id("login-intake"),
            &[&topics.risk_decisions, &topics.verifications],
            &self.bus_metrics,
        )?;
        let ingress = KafkaConsumer::new(
            kafka,
            &kafka.group_id("login-intake-ingress"),
            &[&topics.login_requests],
            &self.bus_metrics,
        )?;
        let mut tasks =
            Supervisor::new(shutdown, self.config.infra.shutdown_timeout).inject(self.fault);

        let waiters = self.state.waiters.clone();
        let pool = self.pool.clone();
        tasks.spawn("decision-listener", |mut stop| async move {
            tokio::select! {
                () = waiters.clone().listen(pool) => {}
                // The requests still waiting answer `pending` at once.
                () = stop.wait() => waiters.stop_waiting(),
            }
        });
        let (pool, sweeps) = (
            self.pool.clone(),
            crate::housekeeping::sweeps(
                &self.config.rate_limits,
                self.config.infra.data_protection.retention_days,
            ),
        );
        let interval = self.config.infra.housekeeping_interval;
        tasks.spawn("housekeeping", |stop| {
            mfa_store::housekeeping::run(pool, sweeps, interval, stop)
        });
        let data_keys = self.state.intake.data_keys.clone();
        tasks.spawn("data-key-rewrap", |stop| {
            data_keys.rewrap_until_stopped(interval, stop)
        });
        let data_keys = self.state.intake.data_keys.clone();
        tasks.spawn("unknown-account-keys", |stop| {
            data_keys.keep_unknown_account_keys_ready(stop)
        });
        let recorder = DecodingHandler(DecisionRecorder {
            pool: self.pool.clone(),
        });
        let decisions_dead_letters = dead_letters.clone();
        tasks.spawn("decisions-consumer", |stop| {
            decisions.run(recorder, decisions_dead_letters, stop)
        });
        let requests = LoginRequestHandler {
            intake: self.state.intake.clone(),
        };
        tasks.spawn("ingress-consumer", |stop| {
            ingress.run(requests, dead_letters, stop)
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
        // The admin API's account changes, written with them into the outbox; a drain task,
        // so the announcements of the last requests still leave.
        let relay = mfa_store::outbox::OutboxRelay {
            pool: self.pool.clone(),
            publisher: self.publisher.clone(),
            producer: crate::intake::PRODUCER,
            signer: self.config.audit_signer.clone(),
            checkpoints_topic: topics.audit_checkpoints.clone(),
            metrics: self.outbox_metrics,
        };
        tasks.spawn_drain("outbox-relay", |stop| relay.run(stop));

        let outcome = tasks.run().await;
        self.publisher.flush(Duration::from_secs(5)).await;
        Ok(outcome?)
    }
}

/// The API; with `registry`, `GET /metrics` too (no `MFA_METRICS_ADDR`).
fn router(
    config: &Config,
    state: AppState,
    readiness: Readiness,
    http_metrics: HttpMetrics,
    registry: Option<SharedRegistry>,
) -> Router {
    let deadline = DependencyDeadline(config.dependency_deadline);
    let client_keys = ApiKeyStore::new(readiness.pool.clone());
    // A login runs at most the dependency deadline until it is accepted, then the decision
    // wait; the margin covers the password-hashing queue.
    let login_abandoned_after =
        config.dependency_deadline + config.decision_wait + Duration::from_secs(5);
    // Keys and deadlines are checked per method, so a wrong method is `405` before any
    // header is looked at (a router-wide layer would answer `401` first).
    let for_clients = |methods: MethodRouter<AppState>| {
        methods
            .route_layer(from_fn_with_state(client_keys.clone(), require_client_key))
            .route_layer(from_fn_with_state(deadline, within_deadline))
    };
    let admin_key = AdminKey::new(&config.admin_api_key);
    let for_admins = |methods: MethodRouter<AppState>| {
        methods
            .route_layer(from_fn_with_state(admin_key.clone(), require_admin_key))
            .route_layer(from_fn_with_state(deadline, within_deadline))
    };
    let client_api = Router::new()
        .route(
            "/v1/logins",
            for_clients(post(crate::logins::create_login).layer(from_fn_with_state(
                IdempotencyStore::new(
                    readiness.pool.clone(),
                    "login-intake",
                    login_abandoned_after,
                ),
                idempotent,
            )))
            // Outermost: a login's decision time starts before its key is even looked up.
            .route_layer(from_fn(stamp_receipt)),
        )
        .route(
            "/v1/logins/{attempt_id}",
            for_clients(get(crate::logins::get_login)),
        )
        .route(
            "/v1/logins/{attempt_id}/feedback",
            for_clients(post(crate::feedback::client_feedback)),
        );
    let admin_api = Router::new()
        .route(
            "/v1/admin/users",
            for_admins(post(crate::admin::create_user).get(crate::admin::list_users)),
        )
        .route(
            "/v1/admin/users/by-email",
            for_admins(get(crate::admin::find_user_by_email)),
        )
        .route(
            "/v1/admin/api-keys",
            for_admins(post(crate::admin::create_api_key).get(crate::admin::list_api_keys)),
        )
        .route(
            "/v1/admin/api-keys/{key_id}",
            for_admins(delete(crate::admin::revoke_api_key)),
        )
        .route(
            "/v1/admin/users/{user_id}",
            for_admins(delete(crate::admin::delete_user).get(crate::admin::get_user)),
        )
        .route(
            "/v1/admin/users/{user_id}/logins",
            for_admins(get(crate::user_logins::list_user_logins)),
        )
        .route(
            "/v1/admin/users/{user_id}/export",
            for_admins(get(crate::user_export::export)),
        )
        .route(
            "/v1/admin/logins/{attempt_id}/feedback",
            for_admins(post(crate::feedback::admin_feedback)),
        )
        .route(
            "/v1/admin/users/{user_id}/disable",
            for_admins(post(crate::admin::disable_user)),
        )
        .route(
            "/v1/admin/users/{user_id}/enable",
            for_admins(post(crate::admin::enable_user)),
        )
        .route(
            "/v1/admin/users/{user_id}/password",
            for_admins(put(crate::admin::change_password)),
        )
        .route(
            "/v1/admin/users/{user_id}/reset-history",
            for_admins(post(crate::admin::reset_history)),
        )
        .route(
            "/v1/admin/users/{user_id}/first-factors",
            for_admins(put(crate::admin::set_user_first_factors)),
        )
        .route(
            "/v1/admin/companies/{company_id}",
            for_admins(put(crate::admin::set_company).get(crate::admin::get_company)),
        )
        .route(
            "/v1/admin/companies/{company_id}/risk-policy",
            for_admins(
                put(crate::risk_policy::set_risk_policy).get(crate::risk_policy::get_risk_policy),
            ),
        );

    let mut router = Router::new()
        .merge(client_api)
        .merge(admin_api)
        .with_state(state);
    if let Some(registry) = registry {
        router = router.merge(mfa_metrics::endpoint(registry));
    }
    let router = router
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::ApiDoc::openapi()) }),
        )
        .merge(health::routes(readiness))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A router layer, not around the router: the matched route is known by then.
        .layer(from_fn_with_state(http_metrics, mfa_http::observe::record))
        .layer(TraceLayer::new_for_http().make_span_with(mfa_http::observe::request_span));
    mfa_http::edge::around(router)
}
