-- Tamper evidence (issue 13, shared::audit): each producer's events form one hash chain,
-- advanced by its outbox relay under the relay's advisory lock, so replicas share the chain
-- and a restart continues it. A row's seal (its chain and seq) is committed before the row is
-- sent: a republish after a crash sends the same bytes under the same seal.
CREATE TABLE audit_chains (
    -- The service whose events the chain holds (outbox.producer).
    producer         TEXT PRIMARY KEY,
    chain_id         UUID NOT NULL UNIQUE,
    -- Entries sealed so far (0: none) and the head after the last of them.
    seq              BIGINT NOT NULL CHECK (seq >= 0),
    head             BYTEA NOT NULL CHECK (length(head) = 32),
    -- The last signed checkpoint sent: the seq it covered and when it was signed.
    checkpointed_seq BIGINT NOT NULL DEFAULT 0 CHECK (checkpointed_seq >= 0),
    checkpointed_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE outbox
    ADD COLUMN seal_chain UUID,
    ADD COLUMN seal_seq   BIGINT,
    ADD CONSTRAINT outbox_sealed_whole CHECK ((seal_chain IS NULL) = (seal_seq IS NULL));
-- A seq names one entry of its chain.
CREATE UNIQUE INDEX outbox_seal ON outbox (seal_chain, seal_seq) WHERE seal_seq IS NOT NULL;
-- What the relay seals next (in insertion order), and what it sends next (in seq order).
CREATE INDEX outbox_unsealed ON outbox (producer, id)
    WHERE published_at IS NULL AND seal_seq IS NULL;
CREATE INDEX outbox_sealed_unpublished ON outbox (producer, seal_seq)
    WHERE published_at IS NULL AND seal_seq IS NOT NULL;

-- The code worker's email outcomes now go through the outbox like every other event: it
-- enqueues each in the transaction that records it, and sets `challenges.outcome_published_at`
-- there (from now on: "handed to the outbox"). Outcomes an older code worker recorded and
-- did not publish are handed over by the code worker at start-up (it knows the topic).
