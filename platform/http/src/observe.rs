//! What each request leaves behind: its span, named after the matched route (inside the
//! edge's span, which continues the caller's `traceparent`), with the login's `attempt_id` once a handler
//! knows it; and the request counters and latency histogram, by route template, method and
//! status (bounded label sets: the template, never the path with its ids).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(mfa_metrics::buckets::latency),
        };
        mfa_metrics::register(
            registry,
            "mfa_http_requests",
            "HTTP requests answered, by route template, method and status",
            metrics.requests.clone(),
        );
        mfa_metrics::register_with_unit(
            registry,
            "mfa_http_request_duration",
            "HTTP requests' latency, by route template and method",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        metrics
    }
}

/// The route template a request matched; `unmatched` for the 404 fallback.
fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// A method as a label: the standard ones by name, anything else (any token is a valid
/// method) as `other`, so a client cannot make series at will.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware (`from_fn_with_state`, as a `Router::layer`, where the route is known).
pub async fn record(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let route = route_of(&request);
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method,
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The span of one routed request (`TraceLayer::make_span_with`), named
/// `METHOD /route/{template}`, inside the edge's span (`edge`, which continues the caller's
/// trace). Handlers record `attempt_id` on it.
pub fn request_span(request: &Request) -> tracing::Span {
    let route = route_of(request);
    let method = method_label(request.method());
    tracing::info_span!(
        "route",
        otel.name = %format!("{method} {route}"),
        http.request.method = method,
        http.route = %route,
        attempt_id = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
