//! What every HTTP service shares: the `{error, message}` error body, a JSON extractor whose
//! rejections use it, admin-key authentication, and the 404 fallback (this module); client
//! API keys, stored in the database ([`api_keys`]); `Idempotency-Key` ([`idempotency`]); the
//! request deadline while a dependency hangs ([`deadline`]); `/healthz` and `/readyz`
//! ([`health`]).

pub mod api_keys;
pub mod deadline;
pub mod health;
pub mod idempotency;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Largest JSON body any endpoint takes; larger ones get `413 payload_too_large`.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Every error response: a stable machine-readable `error` code and a human `message`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `invalid_request`, `invalid_code`, `expired_code`.
    pub error: String,
    pub message: String,
}

/// Builds an error response; the single place where errors become HTTP.
pub fn error_response(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: error.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}

/// A strictly parsed JSON body: syntax errors, unknown or missing fields, invalid values and
/// oversized bodies each become a 4xx `ErrorBody`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection_response(rejection)),
        }
    }
}

fn json_rejection_response(rejection: JsonRejection) -> Response {
    let status = rejection.status();
    let (code, message) = match &rejection {
        JsonRejection::JsonDataError(e) => ("invalid_request", data_error_message(e)),
        JsonRejection::JsonSyntaxError(_) => {
            ("malformed_json", "the body is not valid JSON".into())
        }
        JsonRejection::MissingJsonContentType(_) => (
            "unsupported_media_type",
            "send the body as Content-Type: application/json".into(),
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ),
        _ => ("invalid_request", rejection.body_text()),
    };
    // Every data error is a client error; axum says 422 for those, which we keep.
    error_response(status, code, message)
}

/// serde's message (e.g. "unknown field `x`", "missing field `email`", "unknown variant
/// `tv`"), without axum's prefix. Never echoes the body itself.
fn data_error_message(error: &axum::extract::rejection::JsonDataError) -> String {
    use std::error::Error;
    error
        .source()
        .map(ToString::to_string)
        .unwrap_or_else(|| error.body_text())
}

/// The admin credential, from configuration. Held as a SHA-256 digest and compared in
/// constant time, so neither memory dumps nor response times give it away.
#[derive(Clone)]
pub struct AdminKey {
    digest: [u8; 32],
}

impl AdminKey {
    pub fn new(key: &SecretString) -> Self {
        Self {
            digest: Sha256::digest(key.expose_secret().as_bytes()).into(),
        }
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&presented).into()
    }
}

/// The key in `Authorization: Bearer <key>`, if the request carries one.
pub fn bearer_token(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Middleware: the request must carry `Authorization: Bearer <admin key>`.
pub async fn require_admin_key(
    State(key): State<AdminKey>,
    request: Request,
    next: Next,
) -> Response {
    match bearer_token(&request) {
        None => error_response(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "send the admin key as Authorization: Bearer <key>",
        ),
        Some(presented) if !key.accepts(presented) => error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the admin key is not valid",
        ),
        Some(_) => next.run(request).await,
    }
}

/// The answer to a path no route matches.
pub async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Adds the `api_key` bearer scheme to an OpenAPI document.
pub struct BearerApiKey;

impl utoipa::Modify for BearerApiKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_key_accepts_only_itself() {
        let key = AdminKey::new(&SecretString::from("the-admin-key"));
        assert!(key.accepts("the-admin-key"));
        assert!(!key.accepts("the-admin-ke"));
        assert!(!key.accepts(""));
    }
}
