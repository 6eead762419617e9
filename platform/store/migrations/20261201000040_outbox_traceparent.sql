-- The W3C trace context of the span that wrote the row: the relay publishes the event with
-- it as the `traceparent` record header, so the consumer's span joins the login's trace.
-- Null for rows written outside a traced span (and for rows older than this column).
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
