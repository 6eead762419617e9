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
        .connect(database_url.expose_secret())
        .await
}

/// Applies pending migrations. Safe to run from every service at once: sqlx serialises the
/// runs with an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
