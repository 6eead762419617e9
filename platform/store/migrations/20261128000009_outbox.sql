-- Transactional outbox: a service writes the events of a state change in the same
-- transaction as the change; its relay publishes them to Kafka and marks them. At least
-- once: a relay that dies between the broker's acknowledgement and the mark publishes the
-- row again, with the same event id, which consumers recognise.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    -- The service whose relay publishes the row.
    producer     TEXT NOT NULL,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    -- The envelope exactly as it goes on the wire.
    payload      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (producer, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
