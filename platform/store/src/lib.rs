//! PostgreSQL: the connection pool and the one migration history every service runs at
//! start-up ([`db`], `migrations/`), the transactional outbox that publishes events written
//! with their change and seals them into the producer's audit chain ([`outbox`],
//! [`audit_chain`]), the data keys that seal personal fields ([`data_keys`]), the pool's figures ([`pool_metrics`]), and the scheduled pruning of short-lived rows
//! ([`housekeeping`]).

pub mod audit_chain;
pub mod data_keys;
pub mod db;
pub mod housekeeping;
pub mod outbox;
pub mod pool_metrics;
