//! The PostgreSQL pool's figures: connections in use and idle, the size limit, and the time
//! to get a connection. sqlx does not time the acquisitions of the service's own queries, so
//! a probe acquires (and returns at once) one connection a second: when the pool is
//! exhausted the probe waits like every request does, and the histogram shows it.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sqlx::PgPool;

use mfa_runtime::shutdown::Shutdown;

const PROBE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone)]
pub struct PoolMetrics {
    connections: Family<StateLabels, Gauge>,
    max_connections: Gauge,
    acquire: Histogram,
}

impl PoolMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            connections: Family::default(),
            max_connections: Gauge::default(),
            acquire: mfa_metrics::buckets::latency(),
        };
        mfa_metrics::register(
            registry,
            "mfa_db_pool_connections",
            "The PostgreSQL pool's connections, in use or idle",
            metrics.connections.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_db_pool_max_connections",
            "The pool's size limit",
            metrics.max_connections.clone(),
        );
        mfa_metrics::register_with_unit(
            registry,
            "mfa_db_pool_acquire_duration",
            "Time to get a connection, probed once a second: above a few ms the pool is exhausted",
            Unit::Seconds,
            metrics.acquire.clone(),
        );
        metrics
    }

    /// Samples `pool` until `shutdown` (a service task).
    pub async fn run(self, pool: PgPool, mut shutdown: Shutdown) {
        self.max_connections
            .set(i64::from(pool.options().get_max_connections()));
        loop {
            let started = Instant::now();
            // A failed acquisition (database down) is timed too: that is the wait requests see.
            let probe = pool.acquire().await;
            self.acquire.observe(started.elapsed().as_secs_f64());
            drop(probe);
            let size = i64::from(pool.size());
            let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
            self.connections
                .get_or_create(&StateLabels { state: "idle" })
                .set(idle);
            self.connections
                .get_or_create(&StateLabels { state: "in_use" })
                .set((size - idle).max(0));
            tokio::select! {
                () = tokio::time::sleep(PROBE_EVERY) => {}
                () = shutdown.wait() => return,
            }
        }
    }
}
