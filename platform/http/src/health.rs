//! `GET /healthz` (the process is alive) and `GET /readyz` (its database and broker answer).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;

use crate::error_response;
use mfa_bus::kafka::KafkaPublisher;

/// Both checks run at once, so `/readyz` answers within this even when both hang.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone)]
pub struct Readiness {
    pub pool: PgPool,
    pub publisher: Arc<KafkaPublisher>,
}

/// The two health routes, ready to be merged into a service's router.
pub fn routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let (database, broker) = tokio::join!(
        tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&readiness.pool),
        ),
        readiness.publisher.check_broker(CHECK_TIMEOUT),
    );
    if !matches!(database, Ok(Ok(1))) {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database does not answer",
        );
    }
    if broker.is_err() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the Kafka broker does not answer",
        );
    }
    Json(serde_json::json!({ "status": "ready" })).into_response()
}
