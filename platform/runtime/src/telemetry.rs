//! Logging and tracing set-up.
//!
//! - Log lines: `RUST_LOG` filters (default `info`); `MFA_LOG_FORMAT=json` writes one JSON
//!   object a line for machines, with the fields of the spans a line is in (the login's
//!   `attempt_id` among them). Colours only when standard output is a terminal, so the
//!   files under `.stack/logs` hold plain text.
//! - Traces: every span is an OpenTelemetry span, and its context travels to the next
//!   service in a W3C `traceparent` ([`crate::trace_context`]), so one login is one trace
//!   across the services. They leave the process over OTLP (HTTP/protobuf) only when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; without
//!   it the spans still get their ids, for the `traceparent` headers, and nothing is sent.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Where spans and log lines go.
#[derive(Debug, Clone, Default)]
pub struct TraceExport {
    /// An OTLP/HTTP collector's traces URL (`http://host:4318/v1/traces`). None: nothing
    /// leaves the process.
    pub otlp_endpoint: Option<String>,
    /// Log lines through the test harness's capture instead of straight to standard
    /// output: for a test that installs the subscriber.
    pub captured_log_lines: bool,
}

impl TraceExport {
    /// From `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (the base URL), as every OpenTelemetry SDK reads them.
    pub fn from_env() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        let otlp_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        });
        Self {
            otlp_endpoint,
            captured_log_lines: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the OTLP exporter could not be built")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// Keeps the tracer provider; dropping it sends the spans still buffered (at exit).
#[must_use = "the spans buffered when it is dropped are sent then: keep it until exit"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans buffered so far (a test, before it looks at the collector).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            if let Err(error) = provider.force_flush() {
                tracing::warn!(%error, "sending the buffered spans failed");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("sending the last spans failed: {error}");
            }
        }
    }
}

/// Installs the global subscriber for `service`, with the export the environment names.
/// Later calls (e.g. from tests) install nothing and return an empty guard.
pub fn init(service: &str) -> Result<Telemetry, TelemetryError> {
    init_with(service, TraceExport::from_env())
}

pub fn init_with(service: &str, export: TraceExport) -> Result<Telemetry, TelemetryError> {
    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(
                std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned()),
            )
            .build(),
    );
    if let Some(endpoint) = &export.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(TelemetryError::Exporter)?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer("adaptive-mfa");

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("MFA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = std::io::stdout().is_terminal();
    let lines = match (json, export.captured_log_lines) {
        (_, true) => fmt::layer().with_test_writer().with_ansi(ansi).boxed(),
        (true, false) => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
        (false, false) => fmt::layer().with_ansi(ansi).boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .is_ok();
    if !installed {
        return Ok(Telemetry { provider: None });
    }
    tracing::info!(
        service,
        otlp_endpoint = export.otlp_endpoint.as_deref().unwrap_or("none"),
        "tracing initialised"
    );
    Ok(Telemetry {
        provider: Some(provider),
    })
}
