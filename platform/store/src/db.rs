//! The PostgreSQL pool and the migrations every service runs at start-up.
//!
//! One database, one migration history; each table belongs to one service (see the comments
//! in `shared/migrations`). A service reads another's table only where its code says so.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connects lazily with short timeouts: a request fails fast while the database is down, and
/// the service recovers by itself when it is back.
pub async fn connect(
    database_url: &SecretString,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(2))
        // No ping before each use: a round trip saved on every query of a login's path
        // (about 0.2-0.7 ms each, BENCHMARKS.md). sqlx still pings a connection when it
        // goes back to the pool and drops a dead one; a connection that died idle (the
        // database restarted) fails its first query, which is retried as any dependency
        // failure is (a consumer's back-off; a 503 the client repeats).
        .test_before_acquire(false)
        .connect(database_url.expose_secret())
        .await
}

/// Applies pending migrations. Safe to run from every service at once: sqlx serialises the
/// runs with an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
