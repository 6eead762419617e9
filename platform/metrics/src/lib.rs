//! A service's Prometheus metrics. Each service builds one [`Registry`] at start-up; the
//! platform crates (`mfa-bus`, `mfa-store`, `mfa-http`) and the service's own domain register
//! their families in it, and [`endpoint`] or a [`MetricsListener`] answer `GET /metrics` from it.
//!
//! The registry is the service's own, passed down, never a global: the end-to-end tests run
//! the four services in one process, and each must show its own figures.
//!
//! Labels are bounded sets only (platforms, decisions, reason codes, routes, topics): never a
//! user id, an email or an address, which would make a series per user.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
pub use prometheus_client;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Metric;
pub use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

/// What Prometheus is told it reads: OpenMetrics text, which `prometheus_client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A family described (`# HELP`, `# TYPE`) from the start, before its first sample:
/// `prometheus_client` leaves empty families out, and a dashboard or an alert rule naming a
/// family nobody has counted yet would look like a typo.
#[derive(Debug)]
struct Described<M>(M);

impl<M: EncodeMetric> EncodeMetric for Described<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// Registers `metric` (a handle: keep a clone to count with), described even while empty.
pub fn register(registry: &mut Registry, name: &str, help: &str, metric: impl Metric) {
    registry.register(name, help, Described(metric));
}

/// [`register`] with a unit, which becomes the name's suffix (`_seconds`).
pub fn register_with_unit(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Unit,
    metric: impl Metric,
) {
    registry.register_with_unit(name, help, unit, Described(metric));
}

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
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded",
        )
            .into_response(),
    }
}

/// `GET /metrics`, to merge into a service's router.
pub fn endpoint<S: Clone + Send + Sync + 'static>(registry: SharedRegistry) -> Router<S> {
    Router::new().route("/metrics", get(move || scrape(registry.clone())))
}

/// A listener of its own that answers `GET /metrics` (and 404 otherwise): the workers, which
/// have no HTTP API, and the HTTP services when `MFA_METRICS_ADDR` moves their metrics off the
/// API port. Bound at start-up, so an address in use stops the service there, not a task later.
pub struct MetricsListener {
    listener: TcpListener,
    address: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
#[error("listening for metrics on {addr}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

impl MetricsListener {
    pub async fn bind(addr: SocketAddr) -> Result<Self, BindError> {
        let bound = async {
            let listener = TcpListener::bind(addr).await?;
            let address = listener.local_addr()?;
            Ok(Self { listener, address })
        };
        bound.await.map_err(|source| BindError { addr, source })
    }

    /// The bound address (the port chosen, when the configured one was 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Answers until `shutdown`.
    pub async fn serve(
        self,
        registry: SharedRegistry,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, endpoint::<()>(registry))
            .with_graceful_shutdown(shutdown)
            .await
    }
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
    use prometheus_client::metrics::family::Family;

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

    #[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
    struct Labels {
        reason: &'static str,
    }

    #[test]
    fn a_family_is_described_before_its_first_sample() {
        let mut registry = Registry::default();
        let family = Family::<Labels, Counter>::default();
        register(&mut registry, "mfa_refusals", "Refusals.", family.clone());
        let text = render(&registry).unwrap();
        assert!(text.contains("# TYPE mfa_refusals counter"), "{text}");
        family.get_or_create(&Labels { reason: "x" }).inc();
        assert!(render(&registry)
            .unwrap()
            .contains("mfa_refusals_total{reason=\"x\"} 1"));
    }
}
