//! What every HTTP service shares: the `{error, message}` error body, a JSON extractor whose
//! rejections use it, admin-key authentication, and the 404 fallback (this module); client
//! API keys, stored in the database ([`api_keys`]); `Idempotency-Key` ([`idempotency`]); the
//! request deadline while a dependency hangs ([`deadline`]); `/healthz` and `/readyz`
//! ([`health`]); the request id, refusal logging and JSON envelope every answer goes through
//! ([`edge`]); the server loop, with hyper's header limits raised ([`serve`]); cursor
//! pagination ([`page`]); each request's span and figures ([`observe`]); what the OpenAPI documents share ([`openapi`]).

pub mod api_keys;
pub mod deadline;
pub mod edge;
pub mod health;
pub mod idempotency;
pub mod observe;
pub mod openapi;
pub mod page;
pub mod serve;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
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

/// A strictly parsed JSON body: syntax errors, unknown or missing fields, values of the wrong
/// type, invalid values and oversized bodies each become a 4xx `ErrorBody`.
///
/// Valid JSON that does not fit the request (`"platform": null`, `"platform": 1`) is a `422
/// invalid_request` naming the field, never `malformed_json`: serde_json files some of those
/// under syntax errors (an enum expects an identifier), so the body is checked for being JSON
/// at all before an error is called malformed.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&request) {
            return Err(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    error_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    error_response(rejection.status(), "invalid_request", rejection.body_text())
                }
            })?;
        parse_json_body(&bytes)
            .map(JsonBody)
            .map_err(BodyError::into_response)
    }
}

/// `application/json`, or any `application/*+json`, parameters aside.
fn has_json_content_type(request: &Request) -> bool {
    let Some(value) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// What is wrong with a body; never a copy of it.
enum BodyError {
    /// Not one JSON document.
    Malformed,
    /// JSON, but not the request: the message names the field.
    Invalid(String),
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        match self {
            BodyError::Malformed => error_response(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body is not valid JSON",
            ),
            BodyError::Invalid(message) => {
                error_response(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
            }
        }
    }
}

fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => match deserializer.end() {
            Ok(()) => return Ok(value),
            // Trailing characters after the value: not one JSON document.
            Err(_) => return Err(BodyError::Malformed),
        },
        Err(error) => error,
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(BodyError::Malformed);
    }
    // serde's message (e.g. "unknown field `x`", "missing field `email`", "unknown variant
    // `tv`"), after the path of the field it is about; without the line and column.
    let path = error.path().to_string();
    let inner = error.into_inner();
    let message = match inner.classify() {
        serde_json::error::Category::Data => strip_position(&inner.to_string()).to_owned(),
        _ => "a value of the wrong type".to_owned(),
    };
    Err(BodyError::Invalid(if path == "." {
        message
    } else {
        format!("{path}: {message}")
    }))
}

/// serde_json's messages end with " at line L column C": not the caller's concern.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
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
        .and_then(|value| {
            // The scheme is case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` too.
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
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

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "the fields are only parsed")]
    struct Login {
        email: String,
        platform: shared::domain::Platform,
    }

    async fn answer(
        content_type: Option<&str>,
        body: &'static str,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = axum::http::Request::builder().method("POST").uri("/");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(axum::body::Body::from(body)).unwrap();
        let response = match JsonBody::<Login>::from_request(request, &()).await {
            Ok(_) => return (StatusCode::OK, serde_json::Value::Null),
            Err(response) => response,
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn valid_json_of_the_wrong_shape_is_a_422_naming_the_field() {
        for body in [
            r#"{"email":"a@example.com","platform":null}"#,
            r#"{"email":"a@example.com","platform":1}"#,
            r#"{"email":"a@example.com","platform":["ios"]}"#,
        ] {
            let (status, error) = answer(Some("application/json"), body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(error["error"], "invalid_request", "{body}");
            let message = error["message"].as_str().unwrap();
            assert!(message.starts_with("platform: "), "{body}: {message}");
        }
        let (status, error) =
            answer(Some("application/json"), r#"{"email":1,"platform":"ios"}"#).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
        );
        assert_eq!(
            error["message"],
            "email: invalid type: integer `1`, expected a string"
        );
        let (_, error) = answer(
            Some("application/json"),
            r#"{"email":"a@example.com","platform":"tv"}"#,
        )
        .await;
        assert!(error["message"]
            .as_str()
            .unwrap()
            .starts_with("platform: unknown variant `tv`"));
        let (_, error) = answer(Some("application/json"), r#"{"email":"a@example.com"}"#).await;
        assert_eq!(error["message"], "missing field `platform`");
    }

    #[tokio::test]
    async fn only_what_is_not_json_is_malformed() {
        for body in [
            r#"{"email":"#,
            r#"{"email":"a@example.com","platform":"ios"} x"#,
            "",
            "nul",
        ] {
            let (status, error) = answer(Some("application/json"), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
            assert_eq!(error["error"], "malformed_json", "{body:?}");
        }
        let good = r#"{"email":"a@example.com","platform":"ios"}"#;
        for content_type in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
        ] {
            assert_eq!(
                answer(Some(content_type), good).await.0,
                StatusCode::OK,
                "{content_type}"
            );
        }
        for content_type in [None, Some("text/plain"), Some("json")] {
            let (status, error) = answer(content_type, good).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert_eq!(error["error"], "unsupported_media_type");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let with = |value: &str| {
            axum::http::Request::builder()
                .header(header::AUTHORIZATION, value)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        for value in ["Bearer k-1", "bearer k-1", "BEARER k-1", "bEaReR  k-1 "] {
            assert_eq!(bearer_token(&with(value)), Some("k-1"), "{value}");
        }
        for value in ["Basic k-1", "Bearerk-1", "k-1"] {
            assert_eq!(bearer_token(&with(value)), None, "{value}");
        }
    }
}
