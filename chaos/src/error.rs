/// What stops a run before its checks: a server that would not start, a tool that is
/// missing. A check that fails is not an error: it is a violation in the audit's report.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{what}: {detail}")]
    Setup { what: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A blocking step (locating the tools, starting a cluster, reading the log) panicked.
    #[error("{what} did not finish: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The auditor's tool could not read the log (not a finding: findings are violations).
    #[error("reading the log for its proofs")]
    AuditSource(#[from] mfa_audit::source::SourceError),
    /// A proxy, port or topic read of the shared test kit.
    #[error(transparent)]
    Testkit(#[from] mfa_testkit::TestkitError),
}

impl HarnessError {
    pub fn setup(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Setup {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub fn task(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |source| Self::Task { what, source }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
