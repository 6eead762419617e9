//! A watch for partitions nobody reads. Each consumer checks, every few seconds, the group's
//! committed offsets against the partitions' ends: a partition that is not its own, has
//! messages waiting, and whose committed offset has not moved for a while is taken for
//! orphaned, and the consumer rejoins the group so the assignment is made again.
//!
//! Why: Tansu 0.6.0's group coordinator can leave a partition assigned to nobody when a
//! killed member is restarted before its session timed out with another member in the group
//! (seen in the chaos harness: a partition unread for five minutes, logins accepted and never
//! decided). Against a coordinator that keeps its promises this never fires.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

/// How long a waiting partition's committed offset may stand still before it is taken for
/// orphaned. Longer than a rebalance, shorter than anyone's patience.
pub const STALL_AFTER: Duration = Duration::from_secs(20);
pub const CHECK_EVERY: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub struct StallWatch {
    /// A client of the group's that never joins it: it only reads offsets.
    client: BaseConsumer,
    topics: Vec<String>,
    standing: Standing,
}

/// Each waiting partition's committed offset, and since when it has not moved: the decision,
/// apart from the broker calls.
#[derive(Default)]
struct Standing(HashMap<(String, i32), (i64, Instant)>);

impl Standing {
    /// Whether partition `key`, at committed `position` with its end at `high`, has stood
    /// still behind waiting messages for [`STALL_AFTER`] as of `now`. `ours`: it is this
    /// consumer's own, read by it.
    fn orphaned(
        &mut self,
        key: (String, i32),
        ours: bool,
        position: i64,
        high: i64,
        now: Instant,
    ) -> bool {
        if ours || position >= high {
            self.0.remove(&key);
            return false;
        }
        match self.0.get(&key) {
            Some((since_position, since)) if *since_position == position => {
                now.duration_since(*since) >= STALL_AFTER
            }
            _ => {
                self.0.insert(key, (position, now));
                false
            }
        }
    }
}

impl StallWatch {
    pub fn new(mut config: ClientConfig, group: &str, topics: &[&str]) -> Result<Self, KafkaError> {
        let client = config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            // Nothing here writes transactionally, and Tansu 0.6.0 on PostgreSQL 15 can't
            // answer the read-committed end of a partition.
            .set("isolation.level", "read_uncommitted")
            .create()?;
        Ok(Self {
            client,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            standing: Standing::default(),
        })
    }

    /// The partitions, not among `ours`, whose committed offset has stood still behind
    /// waiting messages for [`STALL_AFTER`] as of `now`. Blocking (it asks the broker).
    pub fn orphaned(&mut self, ours: &TopicPartitionList, now: Instant) -> Vec<String> {
        let mut orphaned = Vec::new();
        for topic in self.topics.clone() {
            match self.check_topic(&topic, ours, now) {
                Ok(found) => orphaned.extend(found),
                Err(error) => tracing::debug!(%topic, %error, "stall watch could not read offsets"),
            }
        }
        orphaned
    }

    fn check_topic(
        &mut self,
        topic: &str,
        ours: &TopicPartitionList,
        now: Instant,
    ) -> Result<Vec<String>, KafkaError> {
        let metadata = self.client.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        let mut wanted = TopicPartitionList::new();
        for partition in 0..partitions {
            wanted.add_partition(topic, partition);
        }
        let committed = self.client.committed_offsets(wanted, REQUEST_TIMEOUT)?;
        let mut orphaned = Vec::new();
        for element in committed.elements() {
            let partition = element.partition();
            let ours = ours.find_partition(topic, partition).is_some();
            let (low, high) = if ours {
                (0, 0)
            } else {
                self.client
                    .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?
            };
            let position = match element.offset() {
                Offset::Offset(offset) => offset,
                _ => low,
            };
            if self
                .standing
                .orphaned((topic.to_owned(), partition), ours, position, high, now)
            {
                orphaned.push(format!("{topic}/{partition}"));
            }
        }
        Ok(orphaned)
    }

    /// After a rejoin: every partition gets a fresh [`STALL_AFTER`].
    pub fn forget(&mut self) {
        self.standing.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (String, i32) {
        ("t".to_owned(), 0)
    }

    #[test]
    fn a_waiting_partition_that_does_not_move_is_orphaned_after_the_stall_time() {
        let mut standing = Standing::default();
        let start = Instant::now();
        assert!(!standing.orphaned(key(), false, 10, 12, start));
        assert!(!standing.orphaned(key(), false, 10, 12, start + STALL_AFTER / 2));
        assert!(standing.orphaned(key(), false, 10, 15, start + STALL_AFTER));
    }

    #[test]
    fn moving_caught_up_or_own_partitions_are_not() {
        let mut standing = Standing::default();
        let start = Instant::now();
        assert!(!standing.orphaned(key(), false, 10, 12, start));
        // It moved: the clock starts again.
        assert!(!standing.orphaned(key(), false, 11, 12, start + STALL_AFTER));
        assert!(!standing.orphaned(key(), false, 11, 12, start + STALL_AFTER * 3 / 2));
        // Caught up: nothing waits.
        assert!(!standing.orphaned(key(), false, 12, 12, start + STALL_AFTER * 3));
        // Our own partition is read by us, however long it takes.
        assert!(!standing.orphaned(key(), true, 5, 12, start + STALL_AFTER * 4));
        assert!(!standing.orphaned(key(), true, 5, 12, start + STALL_AFTER * 9));
    }
}
