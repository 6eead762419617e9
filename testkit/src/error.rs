use std::time::Duration;

/// Why a piece of the test kit could not do its part: a port it could not bind, a broker it
/// could not read, a server that never listened.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Kafka {
        what: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("read {topic}: {read} of {expected} messages within {} s", .within.as_secs())]
    TopicIncomplete {
        topic: String,
        read: usize,
        expected: i64,
        within: Duration,
    },
    #[error("{what}: {source}")]
    Mail {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{to}: {arrived} of {expected} emails within {within:?}")]
    EmailsMissing {
        to: String,
        arrived: usize,
        expected: usize,
        within: Duration,
    },
    #[error("no sign-in code in the email's text {text:?}")]
    NoCode { text: String },
    #[error("{what}: nothing listens on 127.0.0.1:{port} after {within:?}")]
    NotListening {
        what: String,
        port: u16,
        within: Duration,
    },
}

impl TestkitError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    pub(crate) fn mail(what: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let what = what.into();
        move |source| Self::Mail { what, source }
    }

    pub(crate) fn kafka(
        what: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let what = what.into();
        move |source| Self::Kafka { what, source }
    }
}
