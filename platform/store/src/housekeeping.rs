//! Pruning on a schedule, so that tables of short-lived rows (rate-limit windows, failures,
//! challenges, stored decisions) stay bounded. Each service lists its own sweeps: a DELETE of
//! rows older than a cutoff, where the cutoff is `now - keep`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use mfa_runtime::shutdown::Shutdown;

/// One table's pruning: `delete` takes the cutoff as `$1` and removes rows older than it.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub table: &'static str,
    pub delete: &'static str,
    /// How long a row must be kept: the longest any reader of the table looks back.
    pub keep: Duration,
}

impl Sweep {
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        shared::time::saturating_sub(now, self.keep)
    }
}

/// Runs every sweep once; returns the rows each removed.
pub async fn sweep_once(
    pool: &PgPool,
    sweeps: &[Sweep],
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, u64)>, sqlx::Error> {
    let mut removed = Vec::with_capacity(sweeps.len());
    for sweep in sweeps {
        let rows = sqlx::query(sweep.delete)
            .bind(sweep.cutoff(now))
            .execute(pool)
            .await?
            .rows_affected();
        removed.push((sweep.table, rows));
    }
    Ok(removed)
}

/// Sweeps every `interval` until shutdown. A failed sweep is logged and tried again at the
/// next tick: pruning late is harmless.
pub async fn run(pool: PgPool, sweeps: Vec<Sweep>, interval: Duration, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match sweep_once(&pool, &sweeps, Utc::now()).await {
            Ok(removed) => {
                for (table, rows) in removed.into_iter().filter(|(_, rows)| *rows > 0) {
                    tracing::info!(table, rows, "pruned");
                }
            }
            Err(error) => tracing::warn!(%error, "housekeeping failed; will retry"),
        }
    }
}
