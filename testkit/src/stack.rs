//! The native stack of `scripts/stack up`, for tests that run a service as a process: its
//! settings, and a database of a test's own on its PostgreSQL server.

// Test set-up: without the stack a test cannot run, and says so.
#![allow(clippy::panic, clippy::expect_used)]

/// A stack setting (`MFA_DATABASE_URL`, `MFA_KAFKA_BROKERS`...): from the environment, or
/// from `.stack/stack.env`, which `scripts/stack up` writes.
pub fn setting(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.stack/stack.env");
    std::env::var(name).ok().unwrap_or_else(|| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().trim_start_matches("export ").split_once('='))
            .find(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim().trim_matches(['"', '\'']).to_owned())
            .unwrap_or_else(|| panic!("{name} is not set: run `scripts/stack up` first"))
    })
}

/// A new, empty database on the stack's server; its URL (the service migrates it).
pub async fn create_database() -> String {
    use sqlx::{Connection, Executor};
    let server_url = setting("MFA_DATABASE_URL");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(&server_url)
        .await
        .expect("stack PostgreSQL answers");
    connection
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create test database");
    let (base, _) = server_url.rsplit_once('/').expect("URL has a path");
    format!("{base}/{name}")
}
