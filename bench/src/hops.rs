//! Where a password login's time goes, hop by hop: the client's send and answer times put
//! next to the events' own times (`occurred_at`, stamped by their producer) and the broker
//! records' timestamps (stamped when the producer's relay hands them to librdkafka).
//!
//! 1. `intake`: from the request sent to login-intake stamping its `LoginAttempted` (HTTP,
//!    the key and rate-limit checks, the account read, the argon2id queue and hash);
//! 2. `intake_to_broker`: from that stamp to the record's timestamp (the login's
//!    transaction, the outbox relay's wake-up, its seal transaction, the produce call);
//! 3. `broker_to_risk`: from there to the risk worker stamping its decision (the broker's
//!    append and fetch wait, the worker's fetch and decode);
//! 4. `risk`: from the decision's stamp to its record's timestamp (the model's reads, the
//!    decision's transaction, the relay);
//! 5. `back_to_client`: from there to the client holding the decision (the broker again,
//!    login-intake's consumer, its transaction and wake-up, the HTTP answer).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::load::AttemptTiming;

/// An event's own time and its record's, µs since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimes {
    pub occurred_us: i64,
    pub record_us: i64,
}

#[derive(Deserialize)]
struct Stamped {
    attempt_id: String,
    occurred_at: chrono::DateTime<chrono::Utc>,
}

/// Every event of `topic` by attempt (its first copy), read from the start until nothing
/// new arrives for `idle`. Blocking: run it on a blocking thread.
pub fn read_times(
    brokers: &str,
    topic: &str,
    partitions: i32,
    idle: Duration,
) -> Result<HashMap<String, EventTimes>, KafkaError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-hops-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("isolation.level", "read_uncommitted")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        // An explicit offset: no ListOffsets, which Tansu on PostgreSQL answers unreliably.
        assignment.add_partition_offset(topic, partition, Offset::Offset(0))?;
    }
    consumer.assign(&assignment)?;
    let mut times = HashMap::new();
    let mut last = Instant::now();
    while last.elapsed() < idle {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        last = Instant::now();
        let (Some(payload), Some(record_ms)) = (message.payload(), message.timestamp().to_millis())
        else {
            continue;
        };
        if let Ok(stamped) = serde_json::from_slice::<Stamped>(payload) {
            times.entry(stamped.attempt_id).or_insert(EventTimes {
                occurred_us: stamped.occurred_at.timestamp_micros(),
                record_us: record_ms.saturating_mul(1000),
            });
        }
    }
    Ok(times)
}

/// Percentiles of one hop, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hop {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hops {
    /// Logins with all four stamps found.
    pub logins: usize,
    pub intake: Hop,
    pub intake_to_broker: Hop,
    pub broker_to_risk: Hop,
    pub risk: Hop,
    pub back_to_client: Hop,
    pub total: Hop,
}

fn hop(mut values: Vec<f64>) -> Hop {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if values.is_empty() {
            return 0.0;
        }
        let index = ((values.len() - 1) as f64 * q).round() as usize;
        values[index.min(values.len() - 1)]
    };
    Hop {
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
    }
}

/// The hops of the logins in `timings` whose `LoginAttempted` (in `attempts`) and decision
/// (in `decisions`) were both found.
pub fn hops(
    timings: &[AttemptTiming],
    attempts: &HashMap<String, EventTimes>,
    decisions: &HashMap<String, EventTimes>,
) -> Hops {
    let ms = |from: i64, to: i64| (to - from) as f64 / 1000.0;
    let mut columns: [Vec<f64>; 6] = Default::default();
    for timing in timings {
        let (Some(attempt), Some(decision)) = (
            attempts.get(&timing.attempt_id),
            decisions.get(&timing.attempt_id),
        ) else {
            continue;
        };
        let stamps = [
            timing.sent_unix_us,
            attempt.occurred_us,
            attempt.record_us,
            decision.occurred_us,
            decision.record_us,
            timing.decided_unix_us,
        ];
        for (column, pair) in columns.iter_mut().zip(stamps.windows(2)) {
            column.push(ms(pair[0], pair[1]));
        }
        columns[5].push(ms(timing.sent_unix_us, timing.decided_unix_us));
    }
    let [intake, intake_to_broker, broker_to_risk, risk, back_to_client, total] = columns;
    Hops {
        logins: total.len(),
        intake: hop(intake),
        intake_to_broker: hop(intake_to_broker),
        broker_to_risk: hop(broker_to_risk),
        risk: hop(risk),
        back_to_client: hop(back_to_client),
        total: hop(total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Kind;

    #[test]
    fn each_hop_is_the_gap_between_consecutive_stamps() {
        let timings: Vec<AttemptTiming> = (0..3)
            .map(|i| AttemptTiming {
                attempt_id: format!("a{i}"),
                kind: Kind::Known,
                sent_unix_us: 1_000_000,
                decided_unix_us: 1_000_000 + 60_000 + i * 1000,
            })
            .chain(std::iter::once(AttemptTiming {
                attempt_id: "no-events".into(),
                kind: Kind::Known,
                sent_unix_us: 0,
                decided_unix_us: 1,
            }))
            .collect();
        let attempts: HashMap<String, EventTimes> = (0..3)
            .map(|i| {
                let times = EventTimes {
                    occurred_us: 1_020_000,
                    record_us: 1_025_000,
                };
                (format!("a{i}"), times)
            })
            .collect();
        let decisions: HashMap<String, EventTimes> = (0..3)
            .map(|i| {
                let times = EventTimes {
                    occurred_us: 1_035_000,
                    record_us: 1_050_000,
                };
                (format!("a{i}"), times)
            })
            .collect();
        let hops = hops(&timings, &attempts, &decisions);
        assert_eq!(hops.logins, 3);
        assert_eq!(hops.intake.p50_ms, 20.0);
        assert_eq!(hops.intake_to_broker.p50_ms, 5.0);
        assert_eq!(hops.broker_to_risk.p50_ms, 10.0);
        assert_eq!(hops.risk.p50_ms, 15.0);
        assert_eq!(hops.back_to_client.p50_ms, 11.0);
        assert_eq!(hops.back_to_client.p99_ms, 12.0);
        assert_eq!(hops.total.p50_ms, 61.0);
    }

    #[test]
    fn no_matching_events_give_empty_hops() {
        let hops = hops(&[], &HashMap::new(), &HashMap::new());
        assert_eq!(hops, Hops::default());
    }
}
