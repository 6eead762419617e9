//! What runs a service process: settings from the environment ([`config`]), logging and
//! tracing ([`telemetry`], [`trace_context`]), the shutdown signal ([`shutdown`]) and the supervision of a service's tasks
//! ([`supervise`]).

pub mod config;
pub mod shutdown;
pub mod supervise;
pub mod telemetry;
pub mod trace_context;

/// The end of every service's `--help`: the settings all services share and the exit
/// statuses. A literal, for `concat!` in clap's `after_help` after the service's own settings.
#[macro_export]
macro_rules! service_help_footer {
    () => {
        "  Shared by every service: MFA_DATABASE_URL, MFA_KAFKA_BROKERS, MFA_MASTER_KEYS and
  MFA_PSEUDONYM_KEY (required), MFA_PERSONAL_DATA_RETENTION_DAYS, MFA_TOPIC_NAMESPACE, MFA_TOPIC_PARTITIONS, MFA_TOPIC_REPLICATION_FACTOR,
  MFA_TOPIC_RETENTION_MS, MFA_LOGIN_REQUESTS_RETENTION_MS, MFA_KAFKA_FETCH_WAIT_MS,
  MFA_HOUSEKEEPING_INTERVAL_SECS,
  MFA_SHUTDOWN_TIMEOUT_SECS, RUST_LOG, MFA_LOG_FORMAT.
  Every variable, its default and meaning: README.md, section Configuration.

Exit status: 0 after SIGTERM or Ctrl-C once the work in flight is done; 1 when a setting is
bad, a dependency is unreachable at start-up, or one of the service's tasks ended on its own
(the log names it; the others are stopped first); 2 on a bad command-line argument."
    };
}
