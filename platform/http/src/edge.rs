//! What every answer of an HTTP service goes through, whatever route (or none) took the
//! request: a request id, the log line of a refused request, and the JSON error envelope.
//!
//! - `X-Request-Id`: the caller's own (echoed, when it is a sane token) or a new UUID; it is
//!   on the answer and on every log line of the request (a `request` span).
//! - Every 4xx and 5xx answer is logged with its status, method and path (never a header or
//!   a body: they may carry keys, passwords and codes).
//! - Answers that axum or its extractors make on their own (`405` for a wrong method, `400`
//!   for a bad query string...) come as `text/plain` or empty: they are rewritten into the
//!   `{error, message}` body every other error has, so a client parses one shape.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, Next};
use axum::response::Response;
use axum::Router;
use tracing::Instrument;

use crate::error_response;

pub const REQUEST_ID: &str = "x-request-id";

/// The longest caller-chosen request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The most headers a request may carry. hyper reads more (`serve::HYPER_MAX_HEADERS`), so
/// the refusal is ours: JSON, and logged.
pub const MAX_HEADERS: usize = 100;

/// The largest header section a request may carry: names, values and a line's punctuation
/// (`": "` and CRLF), as a proxy would count it.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Wraps a service's whole router (routes, fallback and all).
pub fn around(router: Router) -> Router {
    router
        .layer(from_fn(json_error_envelope))
        .layer(from_fn(header_limits))
        .layer(from_fn(request_id_and_log))
}

/// `431` for a header section over the limits, before any route or extractor reads it.
async fn header_limits(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request's headers are too large: at most {MAX_HEADERS} headers and \
                 {MAX_HEADER_BYTES} bytes in all"
            ),
        );
    }
    next.run(request).await
}

async fn request_id_and_log(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // The outermost span of the request, so the root of its trace: a child of the caller's
    // when the request carries a `traceparent`. The route template is not known yet (the
    // router has not run): the span inside it, `observe::request_span`, is named after it.
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("HTTP {}", crate::observe::method_label(&method)),
        otel.kind = "server",
        request_id = %id,
        %method,
        %path,
    );
    let traceparent = request
        .headers()
        .get(mfa_runtime::trace_context::TRACEPARENT)
        .and_then(|value| value.to_str().ok());
    mfa_runtime::trace_context::continue_trace(&span, traceparent);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "answered with a server error");
        } else if status.is_client_error() {
            tracing::info!(status = status.as_u16(), "refused the request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Visible ASCII without separators that could split a log line or a header, bounded.
fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

async fn json_error_envelope(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        // A page a browser is shown (the verifier's feedback links) is a handler's deliberate
        // answer, not one of axum's plain-text refusals.
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's own rejections say what was wrong in a short text (e.g. "Failed to deserialize
    // query string: unknown field `x`"): keep it as the message.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let (code, default_message) = envelope_for(status);
    let message = if text.is_empty() {
        default_message.to_owned()
    } else {
        text
    };
    let mut rewritten = error_response(status, code, message);
    // Keep what the answer means beyond its body (`Allow` on a 405, `Retry-After`...).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

/// The stable code and the default message of an answer axum made without a body of ours.
fn envelope_for(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("invalid_request", "the request is not valid"),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take this method (see the Allow header)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers_too_large", "the request's headers are too large")
        }
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::SERVICE_UNAVAILABLE => (
            "service_unavailable",
            "the service is temporarily unavailable; retry shortly",
        ),
        s if s.is_server_error() => ("internal_error", "the service failed to answer"),
        _ => ("invalid_request", "the request was refused"),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Query;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    fn empty(status: StatusCode) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        response
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only parsed")]
    struct Paging {
        limit: Option<u32>,
    }

    fn app() -> Router {
        around(
            Router::new()
                .route("/things", post(|Query(_): Query<Paging>| async { "made" }))
                .route("/bare", post(|| async { empty(StatusCode::IM_A_TEAPOT) })),
        )
    }

    async fn send(request: axum::http::Request<Body>) -> (Response, serde_json::Value) {
        let response = app().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (Response::from_parts(parts, Body::empty()), json)
    }

    fn request(method: &str, uri: &str) -> axum::http::request::Builder {
        axum::http::Request::builder().method(method).uri(uri)
    }

    #[tokio::test]
    async fn axum_s_own_refusals_get_the_json_envelope() {
        let (response, body) = send(request("GET", "/things").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"], "method_not_allowed");
        assert_eq!(response.headers()[header::ALLOW], "POST");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");

        let (response, body) = send(
            request("POST", "/things?limit=1&page=2")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("unknown field `page`"),
            "{body}"
        );

        let (response, body) = send(request("POST", "/bare").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["message"], "the request was refused");

        // A success is left alone.
        let (response, _) = send(
            request("POST", "/things?limit=1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn every_answer_carries_a_request_id_echoed_when_sane() {
        let (response, _) = send(
            request("POST", "/things")
                .header(REQUEST_ID, "client-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(response.headers()[REQUEST_ID], "client-42");

        for header_value in [None, Some("bad id with spaces"), Some(&*"x".repeat(200))] {
            let mut builder = request("GET", "/things");
            if let Some(value) = header_value {
                builder = builder.header(REQUEST_ID, value);
            }
            let (response, _) = send(builder.body(Body::empty()).unwrap()).await;
            let id = response.headers()[REQUEST_ID].to_str().unwrap();
            assert!(
                uuid::Uuid::parse_str(id).is_ok(),
                "{header_value:?} -> {id}"
            );
        }
    }
}
