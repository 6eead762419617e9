//! Tamper evidence for the event log: what a producer seals and signs, and what an auditor
//! checks. `AUDIT.md` tells the scheme in prose; this module is its one implementation, used
//! by the producers' outbox relays and by `mfa-audit`.
//!
//! - Every event a service publishes is an entry of its producer's **chain**: numbered
//!   (`seq` 1, 2, ...) and hashed into a running head, `head(n) = H(0x01 ‖ head(n-1) ‖
//!   leaf(n))`, where `leaf(n) = H(0x00 ‖ "mfa-audit/v1 leaf" ‖ seq ‖ topic ‖ key ‖ value)`
//!   over the record's exact bytes (lengths prefixed). The record carries its place in the
//!   header [`SEAL_HEADER`] (`<chain id>:<seq>`).
//! - Now and then (at most every 200 ms while events flow, and at shutdown) the producer signs a
//!   [`Checkpoint`]: chain, last seq covered, head, time, with its Ed25519 key. Checkpoints
//!   travel on their own topic. One signature covers every entry before it, so verifying a
//!   log costs a hash per event and a signature per checkpoint.
//! - An auditor recomputes each chain from the records, and each checkpoint must match the
//!   head at its seq and carry a valid signature by a key the auditor was given for that
//!   producer ([`PublicKeys`]). An altered, dropped, inserted or moved record changes the
//!   head; entries after the last checkpoint are not covered and are reported.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The Kafka record header that names a record's place in its producer's chain.
pub const SEAL_HEADER: &str = "mfa-seal";

const LEAF_TAG: &[u8] = b"mfa-audit/v1 leaf";
const GENESIS_TAG: &[u8] = b"mfa-audit/v1 genesis";
const CHECKPOINT_TAG: &str = "mfa-audit/v1 checkpoint";

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A record's place in a chain: the value of [`SEAL_HEADER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seal {
    pub chain_id: Uuid,
    /// 1 for a chain's first entry.
    pub seq: u64,
}

impl fmt::Display for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.chain_id, self.seq)
    }
}

impl FromStr for Seal {
    type Err = AuditFormatError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || AuditFormatError::Seal(text.chars().take(80).collect());
        let (chain, seq) = text.split_once(':').ok_or_else(bad)?;
        let chain_id = Uuid::parse_str(chain).map_err(|_| bad())?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        if seq == 0 {
            return Err(bad());
        }
        Ok(Self { chain_id, seq })
    }
}

/// A SHA-256 digest: a leaf or a chain head.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest32(pub [u8; 32]);

impl Digest32 {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, AuditFormatError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| AuditFormatError::Digest(text.chars().take(80).collect()))?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    // Lengths as u64: a record can never be long enough to overflow them.
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// The hash of one record at `seq`: its topic, key and value, exactly as on the broker.
/// Other headers (the trace context) are not covered: they are not audit data.
pub fn leaf(seq: u64, topic: &str, key: &[u8], value: &[u8]) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(LEAF_TAG);
    hasher.update(seq.to_be_bytes());
    put_bytes(&mut hasher, topic.as_bytes());
    put_bytes(&mut hasher, key);
    put_bytes(&mut hasher, value);
    Digest32(hasher.finalize().into())
}

/// The running hash of a chain after some number of entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub digest: Digest32,
}

impl ChainHead {
    /// A chain with no entries: bound to its id, so two chains never share a head.
    pub fn genesis(chain_id: Uuid) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(GENESIS_TAG);
        hasher.update(chain_id.as_bytes());
        Self {
            seq: 0,
            digest: Digest32(hasher.finalize().into()),
        }
    }

    /// The head after appending the entry whose leaf is `leaf` at `self.seq + 1`.
    pub fn append(&self, leaf: &Digest32) -> Self {
        let mut hasher = Sha256::new();
        hasher.update([0x01]);
        hasher.update(self.digest.0);
        hasher.update(leaf.0);
        Self {
            seq: self.seq + 1,
            digest: Digest32(hasher.finalize().into()),
        }
    }

    /// Appends a record: its seq is `self.seq + 1`.
    pub fn append_record(&self, topic: &str, key: &[u8], value: &[u8]) -> Self {
        self.append(&leaf(self.seq + 1, topic, key, value))
    }
}

/// A producer's signed statement: "chain `chain_id` had `seq` entries, and its head was
/// `head`". Published as JSON on the checkpoints topic, keyed by the chain id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub chain_id: Uuid,
    /// The service that owns the chain, e.g. `risk-worker`.
    pub producer: String,
    /// Which of the producer's keys signed it (a key file may list several: rotation).
    pub key_id: String,
    /// The last entry covered; every entry 1..=seq is.
    pub seq: u64,
    /// Hex SHA-256 head after entry `seq`.
    pub head: String,
    /// RFC 3339, microseconds.
    pub signed_at: DateTime<Utc>,
    /// Base64 Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes signed: one field a line, in a fixed order, so any implementation can
    /// rebuild them without a canonical JSON.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "{CHECKPOINT_TAG}\nchain {}\nproducer {}\nkey {}\nseq {}\nhead {}\nsigned_at {}\n",
            self.chain_id,
            self.producer,
            self.key_id,
            self.seq,
            self.head,
            self.signed_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        )
        .into_bytes()
    }

    #[expect(
        clippy::expect_used,
        reason = "plain data with string keys: serde_json cannot fail on it"
    )]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a checkpoint always serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, AuditFormatError> {
        serde_json::from_slice(bytes)
            .map_err(|error| AuditFormatError::Checkpoint(error.to_string()))
    }

    /// Checks the signature against the keys the auditor holds.
    pub fn verify(&self, keys: &PublicKeys) -> Result<(), CheckpointError> {
        let key = keys
            .get(&self.key_id)
            .ok_or_else(|| CheckpointError::UnknownKey(self.key_id.clone()))?;
        if key.producer != self.producer {
            return Err(CheckpointError::WrongProducer {
                key_id: self.key_id.clone(),
                owner: key.producer.clone(),
                claimed: self.producer.clone(),
            });
        }
        let bytes = BASE64
            .decode(&self.signature)
            .map_err(|_| CheckpointError::BadSignature)?;
        let signature = Signature::from_slice(&bytes).map_err(|_| CheckpointError::BadSignature)?;
        key.key
            .verify(&self.signed_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }

    pub fn head_digest(&self) -> Result<Digest32, AuditFormatError> {
        Digest32::from_hex(&self.head)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("signed with key {0:?}, which the key file does not list")]
    UnknownKey(String),
    #[error("key {key_id:?} belongs to {owner}, but the checkpoint claims producer {claimed}")]
    WrongProducer {
        key_id: String,
        owner: String,
        claimed: String,
    },
    #[error("the signature does not verify")]
    BadSignature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFormatError {
    #[error("malformed seal {0:?}: expected <chain uuid>:<seq from 1>")]
    Seal(String),
    #[error("malformed digest {0:?}: expected 64 hex digits")]
    Digest(String),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
    #[error("malformed signing key: expected <key id>:<base64 of a 32-byte Ed25519 seed>")]
    SigningKey,
    #[error("malformed public key file: {0}")]
    KeyFile(String),
}

/// A producer's signing key, from configuration (`MFA_AUDIT_SIGNING_KEY`):
/// `<key id>:<base64 of the 32-byte Ed25519 seed>`.
#[derive(Clone)]
pub struct AuditSigner {
    pub producer: String,
    pub key_id: String,
    key: SigningKey,
}

impl fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSigner")
            .field("producer", &self.producer)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl AuditSigner {
    pub fn parse(producer: &str, configured: &str) -> Result<Self, AuditFormatError> {
        let (key_id, seed) = configured
            .trim()
            .split_once(':')
            .ok_or(AuditFormatError::SigningKey)?;
        if key_id.is_empty() || key_id.contains(char::is_whitespace) {
            return Err(AuditFormatError::SigningKey);
        }
        let seed: [u8; 32] = BASE64
            .decode(seed)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AuditFormatError::SigningKey)?;
        Ok(Self {
            producer: producer.to_owned(),
            key_id: key_id.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A fresh key pair (development keys, tests): the configuration string and the signer.
    pub fn generate(producer: &str, key_id: &str) -> (String, Self) {
        let seed: [u8; 32] = rand::random();
        let configured = format!("{key_id}:{}", BASE64.encode(seed));
        let signer = Self {
            producer: producer.to_owned(),
            key_id: key_id.to_owned(),
            key: SigningKey::from_bytes(&seed),
        };
        (configured, signer)
    }

    /// This key's line in the auditor's key file.
    pub fn public_key(&self) -> PublicKeyEntry {
        PublicKeyEntry {
            key_id: self.key_id.clone(),
            producer: self.producer.clone(),
            public_key: BASE64.encode(self.key.verifying_key().as_bytes()),
        }
    }

    /// Signs `head` of `chain_id` at `now`.
    pub fn checkpoint(&self, chain_id: Uuid, head: &ChainHead, now: DateTime<Utc>) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            chain_id,
            producer: self.producer.clone(),
            key_id: self.key_id.clone(),
            seq: head.seq,
            head: head.digest.to_hex(),
            signed_at: now.trunc_subsecs(6),
            signature: String::new(),
        };
        let signature = self.key.sign(&checkpoint.signed_bytes());
        checkpoint.signature = BASE64.encode(signature.to_bytes());
        checkpoint
    }
}

/// One key in the auditor's key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyEntry {
    pub key_id: String,
    pub producer: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// The auditor's key file: `{"keys": [{"key_id", "producer", "public_key"}, ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub keys: Vec<PublicKeyEntry>,
}

#[derive(Debug, Clone)]
pub struct PublicKey {
    pub producer: String,
    key: VerifyingKey,
}

/// The keys an auditor trusts, by key id.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    by_id: HashMap<String, PublicKey>,
}

impl PublicKeys {
    pub fn from_json(bytes: &[u8]) -> Result<Self, AuditFormatError> {
        let file: KeyFile = serde_json::from_slice(bytes)
            .map_err(|error| AuditFormatError::KeyFile(error.to_string()))?;
        Self::from_entries(&file.keys)
    }

    pub fn from_entries(entries: &[PublicKeyEntry]) -> Result<Self, AuditFormatError> {
        let mut by_id = HashMap::new();
        for entry in entries {
            let bytes: [u8; 32] = BASE64
                .decode(&entry.public_key)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| {
                    AuditFormatError::KeyFile(format!(
                        "key {:?}: not 32 bytes of base64",
                        entry.key_id
                    ))
                })?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
                AuditFormatError::KeyFile(format!("key {:?}: not an Ed25519 point", entry.key_id))
            })?;
            let previous = by_id.insert(
                entry.key_id.clone(),
                PublicKey {
                    producer: entry.producer.clone(),
                    key,
                },
            );
            if previous.is_some() {
                return Err(AuditFormatError::KeyFile(format!(
                    "key id {:?} listed twice",
                    entry.key_id
                )));
            }
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, key_id: &str) -> Option<&PublicKey> {
        self.by_id.get(key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(records: &[(&str, &str, &str)], chain_id: Uuid) -> ChainHead {
        records
            .iter()
            .fold(ChainHead::genesis(chain_id), |head, (topic, key, value)| {
                head.append_record(topic, key.as_bytes(), value.as_bytes())
            })
    }

    #[test]
    fn a_seal_reads_back_and_rejects_seq_zero_and_garbage() {
        let seal = Seal {
            chain_id: Uuid::now_v7(),
            seq: 42,
        };
        assert_eq!(seal.to_string().parse::<Seal>(), Ok(seal));
        assert!(format!("{}:0", seal.chain_id).parse::<Seal>().is_err());
        assert!("not-a-seal".parse::<Seal>().is_err());
        assert!(format!("{}:x", seal.chain_id).parse::<Seal>().is_err());
    }

    #[test]
    fn any_change_to_a_record_or_its_place_changes_the_head() {
        let id = Uuid::now_v7();
        let base = [("t", "k", "a"), ("t", "k", "b")];
        let head = chain(&base, id);
        assert_eq!(head.seq, 2);
        for changed in [
            [("t", "k", "a"), ("t", "k", "B")],
            [("t", "k", "b"), ("t", "k", "a")],
            [("t", "k", "a"), ("u", "k", "b")],
            [("t", "k", "a"), ("t", "K", "b")],
            // The same bytes split differently between fields.
            [("t", "k", "a"), ("tk", "", "b")],
        ] {
            assert_ne!(chain(&changed, id).digest, head.digest, "{changed:?}");
        }
        assert_ne!(chain(&base, Uuid::now_v7()).digest, head.digest);
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_and_nothing_else() {
        let (configured, signer) = AuditSigner::generate("risk-worker", "risk-worker-1");
        let reparsed = AuditSigner::parse("risk-worker", &configured).unwrap();
        let (_, other) = AuditSigner::generate("verifier", "verifier-1");
        let keys = PublicKeys::from_entries(&[reparsed.public_key(), other.public_key()]).unwrap();
        let id = Uuid::now_v7();
        let checkpoint = signer.checkpoint(id, &chain(&[("t", "k", "v")], id), Utc::now());
        let read = Checkpoint::from_json(&checkpoint.to_json()).unwrap();
        assert_eq!(read, checkpoint);
        assert_eq!(read.verify(&keys), Ok(()));

        let mut altered = read.clone();
        altered.seq += 1;
        assert_eq!(altered.verify(&keys), Err(CheckpointError::BadSignature));

        let forged = other.checkpoint(id, &chain(&[("t", "k", "v")], id), Utc::now());
        let mut claimed = forged.clone();
        claimed.producer = "risk-worker".into();
        assert!(matches!(
            claimed.verify(&keys),
            Err(CheckpointError::WrongProducer { .. })
        ));
        let mut unknown = forged;
        unknown.key_id = "nobody".into();
        assert_eq!(
            unknown.verify(&keys),
            Err(CheckpointError::UnknownKey("nobody".into()))
        );
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert!(AuditSigner::parse("p", "no-colon").is_err());
        assert!(AuditSigner::parse("p", "id:c2hvcnQ=").is_err());
        assert!(PublicKeys::from_json(
            b"{\"keys\": [{\"key_id\": \"a\", \"producer\": \"p\", \"public_key\": \"eA==\"}]}"
        )
        .is_err());
        assert!(PublicKeys::from_json(b"[]").is_err());
    }
}
