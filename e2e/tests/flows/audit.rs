//! Tamper evidence on the real broker (issue 13): every event the four services publish is
//! sealed in its producer's chain, and each chain's latest signed checkpoint matches the head
//! recomputed from the records, under the producer's own key. (`mfa-audit verify` checks a
//! whole log; this checks the producers' side of the contract with `shared::audit` alone.)

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use mfa_testkit::event_log::{read_topic, RawMessage};
use shared::audit::{ChainHead, Checkpoint, PublicKeys, Seal, SEAL_HEADER};
use shared::events::Envelope;
use uuid::Uuid;

use crate::support::*;

/// A chain as read back: its records by seq (the first copy of each), and the producer the
/// records name.
#[derive(Default)]
struct ReadChain {
    records: BTreeMap<u64, (String, RawMessage)>,
    producers: Vec<String>,
}

struct Log {
    chains: HashMap<Uuid, ReadChain>,
    checkpoints: Vec<Checkpoint>,
    unsealed: Vec<String>,
}

async fn read_log(system: &TestSystem) -> Log {
    let topics = system.kafka.topics();
    let (brokers, partitions) = (system.kafka.brokers.clone(), system.kafka.partitions);
    let names: Vec<String> = topics
        .event_topics()
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let checkpoints_topic = topics.audit_checkpoints.clone();
    tokio::task::spawn_blocking(move || {
        let mut log = Log {
            chains: HashMap::new(),
            checkpoints: Vec::new(),
            unsealed: Vec::new(),
        };
        for topic in names {
            for message in read_topic(&brokers, &topic, partitions).unwrap() {
                let Some(seal) = message.header(SEAL_HEADER) else {
                    log.unsealed
                        .push(format!("{topic}/{}@{}", message.partition, message.offset));
                    continue;
                };
                let seal: Seal = seal.parse().unwrap();
                let producer = Envelope::from_json(&message.payload).unwrap().producer;
                let chain = log.chains.entry(seal.chain_id).or_default();
                chain.producers.push(producer);
                chain
                    .records
                    .entry(seal.seq)
                    .or_insert((topic.clone(), message));
            }
        }
        for message in read_topic(&brokers, &checkpoints_topic, partitions).unwrap() {
            assert!(
                message.header(SEAL_HEADER).is_none(),
                "a checkpoint is not sealed"
            );
            let checkpoint = Checkpoint::from_json(&message.payload).unwrap();
            assert_eq!(
                message.key,
                checkpoint.chain_id.to_string(),
                "keyed by its chain"
            );
            log.checkpoints.push(checkpoint);
        }
        log
    })
    .await
    .unwrap()
}

impl Log {
    /// The latest checkpoint of each chain, when it covers all of the chain's records.
    fn fully_covered(&self) -> bool {
        self.chains.iter().all(|(chain_id, chain)| {
            let last = chain.records.keys().next_back().copied().unwrap_or(0);
            self.latest(*chain_id).is_some_and(|c| c.seq == last)
        })
    }

    fn latest(&self, chain_id: Uuid) -> Option<&Checkpoint> {
        self.checkpoints
            .iter()
            .filter(|c| c.chain_id == chain_id)
            .max_by_key(|c| c.seq)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_sealed_and_each_chain_ends_in_a_checkpoint_that_matches_its_records() {
    let system = spawn_system().await;
    let email = unique_email("sealed");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    let code = system.mail.wait_for_code(&email, 1).await;
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    let attempt = login.body["attempt_id"].as_str().unwrap().to_owned();
    let settled = system.get_login(&attempt).await;
    assert_eq!(settled.body["status"], "approved", "{}", settled.body);

    // The last events' checkpoint follows within about a second of them.
    let mut log = read_log(&system).await;
    for _ in 0..50 {
        if log.chains.len() == 4 && log.fully_covered() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        log = read_log(&system).await;
    }
    assert!(
        log.unsealed.is_empty(),
        "unsealed records: {:?}",
        log.unsealed
    );

    let keys = PublicKeys::from_entries(&system.audit_keys.key_file().keys).unwrap();
    let mut producers: Vec<String> = Vec::new();
    for (chain_id, chain) in &log.chains {
        // One producer per chain, and the chain's checkpoints are signed by its key.
        let producer = chain.producers[0].clone();
        assert!(
            chain.producers.iter().all(|p| *p == producer),
            "chain {chain_id} mixes producers: {:?}",
            chain.producers
        );
        producers.push(producer.clone());
        let seqs: Vec<u64> = chain.records.keys().copied().collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{producer}: every seq from 1, none missing");
        let head =
            chain
                .records
                .values()
                .fold(ChainHead::genesis(*chain_id), |head, (topic, message)| {
                    head.append_record(topic, message.key.as_bytes(), &message.payload)
                });
        let checkpoint = log
            .latest(*chain_id)
            .unwrap_or_else(|| panic!("{producer}: no checkpoint"));
        assert_eq!(checkpoint.producer, producer);
        assert_eq!(checkpoint.verify(&keys), Ok(()), "{producer}");
        assert_eq!(
            checkpoint.seq, head.seq,
            "{producer}: covers its last event"
        );
        assert_eq!(
            checkpoint.head_digest().unwrap(),
            head.digest,
            "{producer}: the head recomputed from the records"
        );
        for earlier in log.checkpoints.iter().filter(|c| c.chain_id == *chain_id) {
            assert_eq!(earlier.verify(&keys), Ok(()), "{producer}");
        }
    }
    producers.sort();
    assert_eq!(
        producers,
        ["code-worker", "login-intake", "risk-worker", "verifier"],
        "one chain per producer"
    );
}
