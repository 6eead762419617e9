//! The bus's figures: what each consumer handled, retried and dead-lettered, how long a
//! message took, how far each partition lags, and what the producer published or failed to.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub group: String,
    pub topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub group: String,
    pub topic: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

/// How a consumer finished with a message (its offset then stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Handled,
    /// Of a type this consumer does not handle.
    Skipped,
    /// Unprocessable: sent to the dead-letter topic.
    DeadLettered,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Handled => "handled",
            Outcome::Skipped => "skipped",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

/// One per service, shared by its consumers and its producer (the families are handles).
#[derive(Clone)]
pub struct BusMetrics {
    messages: Family<OutcomeLabels, Counter>,
    retries: Family<ConsumerLabels, Counter>,
    handle_duration: Family<ConsumerLabels, Histogram, fn() -> Histogram>,
    lag: Family<PartitionLabels, Gauge>,
    produced: Family<TopicLabels, Counter>,
    produce_errors: Family<TopicLabels, Counter>,
}

impl BusMetrics {
    /// Families counted nowhere: for a consumer or producer outside a service (a test's).
    pub fn unregistered() -> Self {
        Self {
            messages: Family::default(),
            retries: Family::default(),
            handle_duration: Family::new_with_constructor(mfa_metrics::buckets::latency),
            lag: Family::default(),
            produced: Family::default(),
            produce_errors: Family::default(),
        }
    }

    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        mfa_metrics::register(
            registry,
            "mfa_consumer_messages",
            "Messages a consumer finished with (offset stored), by outcome",
            metrics.messages.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_consumer_retries",
            "Failed tries of a message that is tried again (a dependency failing)",
            metrics.retries.clone(),
        );
        mfa_metrics::register_with_unit(
            registry,
            "mfa_consumer_handle_duration",
            "One message, from receipt to its offset stored, retries included",
            Unit::Seconds,
            metrics.handle_duration.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_consumer_lag_messages",
            "Messages behind the end of the partition, measured every 5 s",
            metrics.lag.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_producer_messages",
            "Messages the broker acknowledged",
            metrics.produced.clone(),
        );
        mfa_metrics::register(
            registry,
            "mfa_producer_errors",
            "Publishes that failed (the caller retries, or answers 503)",
            metrics.produce_errors.clone(),
        );
        metrics
    }

    pub(crate) fn finished(&self, group: &str, topic: &str, outcome: Outcome, seconds: f64) {
        self.messages
            .get_or_create(&OutcomeLabels {
                group: group.to_owned(),
                topic: topic.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
        self.handle_duration
            .get_or_create(&ConsumerLabels {
                group: group.to_owned(),
                topic: topic.to_owned(),
            })
            .observe(seconds);
    }

    pub(crate) fn retried(&self, group: &str, topic: &str) {
        self.retries
            .get_or_create(&ConsumerLabels {
                group: group.to_owned(),
                topic: topic.to_owned(),
            })
            .inc();
    }

    /// A partition this member holds has a lag (>= 0); one it gave up is passed -1, and its
    /// series is removed rather than left stale.
    pub(crate) fn lag(&self, group: &str, topic: &str, partition: i32, lag: i64) {
        let labels = PartitionLabels {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        };
        if lag >= 0 {
            self.lag.get_or_create(&labels).set(lag);
        } else {
            self.lag.remove(&labels);
        }
    }

    pub(crate) fn published(&self, topic: &str, ok: bool) {
        let family = if ok {
            &self.produced
        } else {
            &self.produce_errors
        };
        family
            .get_or_create(&TopicLabels {
                topic: topic.to_owned(),
            })
            .inc();
    }
}
