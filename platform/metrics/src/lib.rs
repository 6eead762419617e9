//! A service's Prometheus metrics. Each service builds one [`Registry`] at start-up; the
//! platform crates (`mfa-bus`, `mfa-store`, `mfa-http`) and the service's own domain register
//! their families in it, and [`endpoint`] or [`serve`] answer `GET /metrics` from it.
//!
//! The registry is the service's own, passed down, never a global: the end-to-end tests run
//! the four services in one process, and each must show its own figures.
//!
//! Labels are bounded sets only (platforms, decisions, reason codes, routes, topics): never a
//! user id, an email or an address, which would make a series per user.

use std::future::Future;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
pub use prometheus_client;
pub use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// What Prometheus is told it reads: OpenMetrics text, which `prometheus_client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A finished registry, shared by whoever answers `/metrics`.
pub type SharedRegistry = Arc<Registry>;

/// The registry's current figures in the exposition format.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

async fn scrape(registry: SharedRegistry) -> Response {
    match render(&registry) {
        Ok(text) => ([(CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded").into_response(),
    }
}

/// `GET /metrics`, to merge into a service's router.
pub fn endpoint<S: Clone + Send + Sync + 'static>(registry: SharedRegistry) -> Router<S> {
    Router::new().route("/metrics", get(move || scrape(registry.clone())))
}

/// A listener of its own that answers `GET /metrics` (and 404 otherwise) until `shutdown`:
/// the workers, which have no HTTP API, and the HTTP services when `MFA_METRICS_ADDR` moves
/// their metrics off the API port.
pub async fn serve(
    listener: TcpListener,
    registry: SharedRegistry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, endpoint::<()>(registry))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bucket layouts shared by the services' histograms, in seconds.
pub mod buckets {
    use prometheus_client::metrics::histogram::Histogram;

    /// 0.5 ms to about 33 s, doubling: one layout for every latency, from a PostgreSQL round
    /// trip to a code email retried for half a minute.
    pub fn latency() -> Histogram {
        Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.0005, 2.0, 17,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn a_counter_renders_with_its_total_suffix_and_the_document_ends() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("mfa_example", "An example.", counter.clone());
        counter.inc();
        let text = render(&registry).unwrap();
        assert!(text.contains("# TYPE mfa_example counter"), "{text}");
        assert!(text.contains("mfa_example_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
