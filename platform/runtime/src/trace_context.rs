//! The W3C trace context (`traceparent`) that carries one login's trace from service to
//! service: written into Kafka record headers and outbox rows where a service hands work on,
//! read back where the next one takes it up ([`continue_trace`]).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (Kafka) and field name of the context.
pub const TRACEPARENT: &str = "traceparent";

/// The current span's context as a `traceparent` value; None when no span is being traced
/// (no subscriber with the OpenTelemetry layer, as in unit tests).
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the span `traceparent` names. Must run before `span` is first
/// entered; a missing or malformed value leaves `span` the root of a trace of its own.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "span not attached to its trace");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_tracing_subscriber_there_is_no_context_to_pass_on() {
        assert_eq!(current_traceparent(), None);
        // And continuing from one is harmless.
        continue_trace(
            &tracing::Span::current(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
    }
}
