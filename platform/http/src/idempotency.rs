//! `Idempotency-Key` for the POST endpoints: a retry with the same key and the same body gets
//! the first answer again (marked `Idempotent-Replayed: true`) and repeats no effect: no second
//! login attempt, no second email, no extra code try. A `5xx` answer is not kept, because it
//! means the request was not accepted: a retry with the same key then runs afresh.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::api_keys::ClientKey;
use crate::{error_response, MAX_BODY_BYTES};
use mfa_store::housekeeping::Sweep;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MAX_KEY_LEN: usize = 255;

/// How long a key is remembered.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct IdempotencyStore {
    pool: PgPool,
    /// The service's name, the first part of every scope it writes.
    service: &'static str,
    /// A request still marked in flight after this long is taken as abandoned (its process
    /// died), so a retry with its key runs instead of answering `409` until the key expires.
    /// Longer than the endpoint's longest legitimate request; the shorter it is, the sooner a
    /// client gets through after a crash.
    abandoned_after: std::time::Duration,
}

enum Begin {
    /// This request runs; its answer will be stored.
    Run,
    Replay {
        status: u16,
        body: Vec<u8>,
    },
    InFlight,
    /// The key was used with another body.
    Mismatch,
}

impl IdempotencyStore {
    pub fn new(pool: PgPool, service: &'static str, abandoned_after: std::time::Duration) -> Self {
        Self {
            pool,
            service,
            abandoned_after,
        }
    }

    async fn begin(&self, scope: &str, key: &str, digest: &[u8]) -> Result<Begin, sqlx::Error> {
        let claimed: Option<(i32,)> = sqlx::query_as(
            "INSERT INTO idempotency_keys (scope, idempotency_key, request_digest)
             VALUES ($1, $2, $3)
             ON CONFLICT (scope, idempotency_key) DO UPDATE
               SET request_digest = EXCLUDED.request_digest, created_at = now()
               WHERE idempotency_keys.status_code IS NULL
                 AND idempotency_keys.created_at < now() - make_interval(secs => $4)
             RETURNING 1",
        )
        .bind(scope)
        .bind(key)
        .bind(digest)
        .bind(self.abandoned_after.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        if claimed.is_some() {
            return Ok(Begin::Run);
        }
        let (stored_digest, status, body): (Vec<u8>, Option<i16>, Option<Vec<u8>>) =
            sqlx::query_as(
                "SELECT request_digest, status_code, response_body FROM idempotency_keys
             WHERE scope = $1 AND idempotency_key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(match (stored_digest == digest, status, body) {
            (false, _, _) => Begin::Mismatch,
            (true, Some(status), Some(body)) => Begin::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            },
            _ => Begin::InFlight,
        })
    }

    async fn finish(
        &self,
        scope: &str,
        key: &str,
        status: StatusCode,
        body: &[u8],
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = $3, response_body = $4
             WHERE scope = $1 AND idempotency_key = $2",
        )
        .bind(scope)
        .bind(key)
        .bind(status.as_u16() as i16)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn forget(&self, scope: &str, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2")
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The sweep that forgets a service's keys after [`RETENTION`].
pub fn sweep(delete: &'static str) -> Sweep {
    Sweep {
        table: "idempotency_keys",
        delete,
        keep: RETENTION,
    }
}

fn unavailable() -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        "the service is temporarily unavailable; retry shortly",
    )
}

/// Middleware for a client endpoint (after `require_client_key`). Requests without the header
/// pass straight through.
pub async fn idempotent(
    State(store): State<IdempotencyStore>,
    request: Request,
    next: Next,
) -> Response {
    let Some(raw_key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let key = match raw_key.to_str() {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_KEY_LEN
                && key.chars().all(|c| c.is_ascii_graphic()) =>
        {
            key.to_owned()
        }
        _ => {
            return error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
            )
        }
    };
    let Some(client) = request.extensions().get::<ClientKey>().cloned() else {
        return next.run(request).await;
    };
    let scope = format!(
        "{}:{}:{} {}",
        store.service,
        client.key_id,
        request.method(),
        request.uri().path()
    );
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        );
    };
    let digest = Sha256::digest(&bytes).to_vec();
    match store.begin(&scope, &key, &digest).await {
        Err(error) => {
            tracing::error!(%error, "idempotency store");
            unavailable()
        }
        Ok(Begin::Mismatch) => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        ),
        Ok(Begin::InFlight) => error_response(
            StatusCode::CONFLICT,
            "request_in_progress",
            "a request with this Idempotency-Key is still being handled; retry shortly",
        ),
        Ok(Begin::Replay { status, body }) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            response
                .headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            response
        }
        Ok(Begin::Run) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (parts, body) = response.into_parts();
            let Ok(body) = to_bytes(body, usize::MAX).await else {
                let _ = store.forget(&scope, &key).await;
                return unavailable();
            };
            let kept = if parts.status.is_server_error() {
                store.forget(&scope, &key).await
            } else {
                store.finish(&scope, &key, parts.status, &body).await
            };
            if let Err(error) = kept {
                tracing::error!(%error, "idempotency store");
            }
            Response::from_parts(parts, Body::from(body))
        }
    }
}
