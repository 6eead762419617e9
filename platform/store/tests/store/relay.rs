//! The outbox relay as the audit chain's keeper (`mfa_store::outbox`, `audit_chain`), with a
//! real publisher on the stack's broker and the stack's PostgreSQL: each test has a database
//! and a topic namespace of its own.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mfa_bus::kafka::{ensure_topics, KafkaPublisher};
use mfa_bus::metrics::BusMetrics;
use mfa_runtime::config::KafkaConfig;
use mfa_runtime::shutdown::Shutdown;
use mfa_store::outbox::{self, OutboxMetrics, OutboxRelay};
use mfa_testkit::event_log::{first_offset_read_from, read_topic, RawMessage};
use mfa_testkit::stack;
use shared::audit::{AuditSigner, ChainHead, Checkpoint, PublicKeys, Seal, SEAL_HEADER};
use shared::domain::{AttemptId, UserId};
use shared::events::{AccountChange, AccountChanged, Envelope, Event};
use sqlx::PgPool;

const PRODUCER: &str = "store-test";

struct Setup {
    pool: PgPool,
    kafka: KafkaConfig,
    signer: AuditSigner,
}

async fn setup() -> Setup {
    let database_url = secrecy::SecretString::from(stack::create_database().await);
    let pool = mfa_store::db::connect(&database_url, 4).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let infra = stack::infra("unused", stack::setting("MFA_KAFKA_BROKERS"));
    ensure_topics(&infra.kafka).await.unwrap();
    let (_, signer) = AuditSigner::generate(PRODUCER, "store-test-1");
    Setup {
        pool,
        kafka: infra.kafka,
        signer,
    }
}

impl Setup {
    fn relay(&self) -> OutboxRelay {
        self.relay_to(&self.kafka)
    }

    fn relay_to(&self, kafka: &KafkaConfig) -> OutboxRelay {
        OutboxRelay {
            pool: self.pool.clone(),
            publisher: Arc::new(
                KafkaPublisher::with_timeout(
                    kafka,
                    Duration::from_secs(2),
                    &BusMetrics::unregistered(),
                )
                .unwrap(),
            ),
            producer: PRODUCER,
            signer: self.signer.clone(),
            checkpoints_topic: self.kafka.topics().audit_checkpoints,
            metrics: OutboxMetrics::default(),
        }
    }

    /// Commits `count` events for `count` users, one transaction each.
    async fn enqueue(&self, count: u128) -> Vec<Envelope> {
        let topic = self.kafka.topics().accounts;
        let mut events = Vec::new();
        for n in 0..count {
            let user_id = UserId::from_uuid(uuid::Uuid::from_u128(n + 1));
            let event = Envelope::new(
                PRODUCER,
                AttemptId::new(),
                None,
                Utc::now(),
                Event::AccountChanged(AccountChanged {
                    user_id,
                    change: AccountChange::Enabled,
                }),
            );
            let mut tx = self.pool.begin().await.unwrap();
            outbox::enqueue(&mut tx, PRODUCER, &topic, &user_id.to_string(), &event)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            events.push(event);
        }
        events
    }

    async fn read(&self, topic: String) -> Vec<RawMessage> {
        let (brokers, partitions) = (self.kafka.brokers.clone(), self.kafka.partitions);
        tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, partitions).unwrap())
            .await
            .unwrap()
    }

    /// The event records, each with its seal, in seq order.
    async fn sealed_records(&self) -> Vec<(Seal, RawMessage)> {
        let mut records: Vec<(Seal, RawMessage)> = self
            .read(self.kafka.topics().accounts)
            .await
            .into_iter()
            .map(|message| {
                let seal = message
                    .header(SEAL_HEADER)
                    .unwrap_or_else(|| panic!("record at {} has no seal", message.offset))
                    .parse()
                    .unwrap();
                (seal, message)
            })
            .collect();
        records.sort_by_key(|(seal, _)| seal.seq);
        records
    }

    async fn checkpoints(&self) -> Vec<Checkpoint> {
        self.read(self.kafka.topics().audit_checkpoints)
            .await
            .into_iter()
            .map(|message| {
                assert!(
                    message.header(SEAL_HEADER).is_none(),
                    "a checkpoint is not sealed"
                );
                let checkpoint = Checkpoint::from_json(&message.payload).unwrap();
                assert_eq!(message.key, checkpoint.chain_id.to_string());
                checkpoint
            })
            .collect()
    }

    fn keys(&self) -> PublicKeys {
        PublicKeys::from_entries(&[self.signer.public_key()]).unwrap()
    }

    async fn unpublished(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// The head recomputed from the records of one topic (the first copy of each seq), as an
/// auditor would; every seq from 1 on must be there.
fn recomputed_head(chain_id: uuid::Uuid, topic: &str, records: &[(Seal, RawMessage)]) -> ChainHead {
    let mut head = ChainHead::genesis(chain_id);
    for (seal, message) in records {
        assert_eq!(seal.chain_id, chain_id, "one chain per producer");
        if seal.seq <= head.seq {
            continue;
        }
        assert_eq!(seal.seq, head.seq + 1, "no seq is missing");
        head = head.append_record(topic, message.key.as_bytes(), &message.payload);
    }
    head
}

#[tokio::test]
async fn records_get_consecutive_seals_and_a_checkpoint_that_verifies() {
    let setup = setup().await;
    let events = setup.enqueue(3).await;
    let relay = setup.relay();
    assert_eq!(relay.publish_batch().await.unwrap(), 3);
    let checkpoint = relay
        .checkpoint(Utc::now(), false)
        .await
        .unwrap()
        .expect("the first entries are due a checkpoint");

    let records = setup.sealed_records().await;
    let seqs: Vec<u64> = records.iter().map(|(seal, _)| seal.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    // Sealed in insertion order: the events' order.
    for ((_, message), event) in records.iter().zip(&events) {
        assert_eq!(message.payload, event.to_json());
    }
    let chain_id = records[0].0.chain_id;
    let head = recomputed_head(chain_id, &setup.kafka.topics().accounts, &records);

    let published = setup.checkpoints().await;
    assert_eq!(published, std::slice::from_ref(&checkpoint));
    assert_eq!(checkpoint.verify(&setup.keys()), Ok(()));
    assert_eq!((checkpoint.chain_id, checkpoint.seq), (chain_id, 3));
    assert_eq!(checkpoint.producer, PRODUCER);
    assert_eq!(checkpoint.head_digest().unwrap(), head.digest);

    // Nothing new: no second checkpoint, not even on the last pass.
    assert!(relay.checkpoint(Utc::now(), true).await.unwrap().is_none());
}

#[tokio::test]
async fn a_republish_after_a_crash_sends_the_same_bytes_under_the_same_seal() {
    let setup = setup().await;
    setup.enqueue(2).await;
    // A relay that died after committing the seals and before sending: nothing is out.
    assert_eq!(setup.relay().seal_batch().await.unwrap(), 2);
    assert!(setup.sealed_records().await.is_empty());
    let stored = |pool: PgPool| async move {
        sqlx::query_as::<_, (uuid::Uuid, i64)>(
            "SELECT seal_chain, seal_seq FROM outbox ORDER BY seal_seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let sealed = stored(setup.pool.clone()).await;

    // The next run sends them under those seals; then it dies before marking them sent, so
    // the one after sends them again.
    assert_eq!(setup.relay().publish_batch().await.unwrap(), 2);
    sqlx::query("UPDATE outbox SET published_at = NULL")
        .execute(&setup.pool)
        .await
        .unwrap();
    assert_eq!(setup.relay().publish_batch().await.unwrap(), 2);
    assert_eq!(
        stored(setup.pool.clone()).await,
        sealed,
        "seals never change"
    );

    let records = setup.sealed_records().await;
    assert_eq!(records.len(), 4, "two copies of each");
    for pair in records.chunks(2) {
        let ((first_seal, first), (second_seal, second)) = (&pair[0], &pair[1]);
        assert_eq!(first_seal, second_seal);
        assert_eq!(
            (&first.key, &first.payload, first.partition),
            (&second.key, &second.payload, second.partition)
        );
    }
    // Per partition, the first copies' seqs rise with the offsets.
    for partition in 0..setup.kafka.partitions {
        let mut seen = std::collections::HashSet::new();
        let mut on_partition: Vec<&(Seal, RawMessage)> = records
            .iter()
            .filter(|(_, message)| message.partition == partition)
            .collect();
        on_partition.sort_by_key(|(_, message)| message.offset);
        let firsts: Vec<u64> = on_partition
            .into_iter()
            .filter(|(seal, _)| seen.insert(seal.seq))
            .map(|(seal, _)| seal.seq)
            .collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    }

    // A restarted relay continues the chain: the next event is entry 3, and the checkpoint
    // covers all three.
    setup.enqueue(1).await;
    let relay = setup.relay();
    assert_eq!(relay.publish_batch().await.unwrap(), 1);
    let checkpoint = relay.checkpoint(Utc::now(), false).await.unwrap().unwrap();
    let records = setup.sealed_records().await;
    let head = recomputed_head(sealed[0].0, &setup.kafka.topics().accounts, &records);
    assert_eq!((checkpoint.seq, head.seq), (3, 3));
    assert_eq!(checkpoint.head_digest().unwrap(), head.digest);
    assert_eq!(checkpoint.verify(&setup.keys()), Ok(()));
}

#[tokio::test]
async fn a_batch_goes_out_in_flight_at_once_in_order_and_a_consumer_resumes_anywhere() {
    let setup = setup().await;
    let events = setup.enqueue(150).await;
    // One pass sends the lot, all in flight together.
    assert_eq!(setup.relay().publish_batch().await.unwrap(), 150);
    assert_eq!(setup.unpublished().await, 0);

    let records = setup.sealed_records().await;
    let seqs: Vec<u64> = records.iter().map(|(seal, _)| seal.seq).collect();
    assert_eq!(
        seqs,
        (1..=150).collect::<Vec<u64>>(),
        "each once, none missing"
    );
    for ((_, message), event) in records.iter().zip(&events) {
        assert_eq!(message.payload, event.to_json());
    }
    let topic = setup.kafka.topics().accounts;
    for partition in 0..setup.kafka.partitions {
        let mut on_partition: Vec<&(Seal, RawMessage)> = records
            .iter()
            .filter(|(_, message)| message.partition == partition)
            .collect();
        on_partition.sort_by_key(|(_, message)| message.offset);
        let in_offset_order: Vec<u64> = on_partition.iter().map(|(seal, _)| seal.seq).collect();
        assert!(
            in_offset_order.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: seqs rise with the offsets: {in_offset_order:?}"
        );
        // Every record is a batch of its own: a consumer resuming at any offset (a restart,
        // a rebalance) is given that very record first, whatever the broker does with an
        // offset inside a batch.
        for (_, message) in on_partition.iter().step_by(7) {
            let (brokers, topic, offset) =
                (setup.kafka.brokers.clone(), topic.clone(), message.offset);
            let first = tokio::task::spawn_blocking(move || {
                first_offset_read_from(&brokers, &topic, partition, offset).unwrap()
            })
            .await
            .unwrap();
            assert_eq!(
                first,
                Some(offset),
                "partition {partition}, resumed at {offset}"
            );
        }
    }
}

#[tokio::test]
async fn no_checkpoint_covers_an_entry_the_broker_has_not_acknowledged() {
    let setup = setup().await;
    setup.enqueue(1).await;
    let mut unreachable = setup.kafka.clone();
    unreachable.brokers = "127.0.0.1:1".into();
    let down = setup.relay_to(&unreachable);
    assert!(down.publish_batch().await.is_err());
    assert_eq!(setup.unpublished().await, 1);
    // Sealed, but not sent: no checkpoint, even on the last pass.
    assert!(setup
        .relay()
        .checkpoint(Utc::now(), true)
        .await
        .unwrap()
        .is_none());
    assert!(setup.checkpoints().await.is_empty());

    let up = setup.relay();
    assert_eq!(up.publish_batch().await.unwrap(), 1);
    let checkpoint = up.checkpoint(Utc::now(), true).await.unwrap().unwrap();
    assert_eq!(checkpoint.seq, 1);
}

#[tokio::test]
async fn a_running_relay_covers_a_quiet_producers_tail_within_a_second_or_two() {
    let setup = setup().await;
    let (trigger, shutdown) = Shutdown::new();
    let running = tokio::spawn(setup.relay().run(shutdown));
    setup.enqueue(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Right after a checkpoint: these wait for the interval, then the poll covers them.
    setup.enqueue(3).await;
    let covered = async {
        loop {
            let checkpoints = setup.checkpoints().await;
            if checkpoints.iter().any(|checkpoint| checkpoint.seq == 5) {
                return checkpoints;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let checkpoints = tokio::time::timeout(Duration::from_secs(5), covered)
        .await
        .expect("the tail is covered while the producer is quiet");
    for checkpoint in &checkpoints {
        assert_eq!(checkpoint.verify(&setup.keys()), Ok(()));
    }

    // What is committed just before the shutdown leaves on the last pass, covered.
    setup.enqueue(1).await;
    trigger.fire();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setup.unpublished().await, 0);
    let last = setup
        .checkpoints()
        .await
        .into_iter()
        .max_by_key(|c| c.seq)
        .unwrap();
    let records = setup.sealed_records().await;
    let head = recomputed_head(last.chain_id, &setup.kafka.topics().accounts, &records);
    assert_eq!((last.seq, head.seq), (6, 6));
    assert_eq!(last.head_digest().unwrap(), head.digest);
}
