//! A producer's audit chain (`shared::audit`) as its outbox relay keeps it in PostgreSQL
//! (`audit_chains`): one row per producer, so every replica of a service extends the same
//! chain (under the relay's advisory lock) and a restarted one continues it.
//!
//! What is decided here is pure: the seal each row gets, and when a checkpoint is due. The
//! relay (`crate::outbox`) does the reading, writing and sending around it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mfa_runtime::config::{ConfigError, Env};
use secrecy::ExposeSecret;
use shared::audit::{AuditSigner, ChainHead, Digest32, Seal};
use sqlx::PgConnection;
use uuid::Uuid;

/// The variable that holds a service's signing key: `<key id>:<base64 32-byte seed>`.
pub const SIGNING_KEY_VARIABLE: &str = "MFA_AUDIT_SIGNING_KEY";

/// A checkpoint is signed at most this often while events flow (at most five a second per
/// producer: one Ed25519 signature, and one to check, per many events)...
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// ...or as soon as this many entries are not covered by one.
pub const CHECKPOINT_EVERY_ENTRIES: u64 = 10_000;

/// `producer`'s signing key from [`SIGNING_KEY_VARIABLE`] (required: a service that cannot
/// sign would publish a log nobody can check).
pub fn signer_from_env(producer: &str) -> Result<AuditSigner, ConfigError> {
    let configured = Env::secret(SIGNING_KEY_VARIABLE)?;
    AuditSigner::parse(producer, configured.expose_secret()).map_err(|error| ConfigError::Invalid {
        name: SIGNING_KEY_VARIABLE.into(),
        reason: error.to_string(),
    })
}

/// A chain as stored: its head, and what the last checkpoint covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub chain_id: Uuid,
    pub head: ChainHead,
    pub checkpointed_seq: u64,
    pub checkpointed_at: Option<DateTime<Utc>>,
}

impl ChainState {
    /// A chain with no entries yet.
    pub fn new(chain_id: Uuid) -> Self {
        Self {
            chain_id,
            head: ChainHead::genesis(chain_id),
            checkpointed_seq: 0,
            checkpointed_at: None,
        }
    }

    /// Appends a record, exactly as it will be sent, and returns its seal.
    pub fn seal(&mut self, topic: &str, key: &[u8], value: &[u8]) -> Seal {
        self.head = self.head.append_record(topic, key, value);
        Seal {
            chain_id: self.chain_id,
            seq: self.head.seq,
        }
    }

    /// Entries no checkpoint covers yet.
    pub fn uncovered(&self) -> u64 {
        self.head.seq.saturating_sub(self.checkpointed_seq)
    }

    /// Whether to sign a checkpoint of the head now: when entries are uncovered, and the interval
    /// went by since the last one (or a clock behind the one that signed it, so a replica's
    /// skew never holds checkpoints back), or many entries wait, or the relay is closing.
    pub fn checkpoint_due(&self, now: DateTime<Utc>, closing: bool) -> bool {
        let uncovered = self.uncovered();
        if uncovered == 0 {
            return false;
        }
        let interval_passed = self.checkpointed_at.is_none_or(|at| {
            now < at
                || (now - at)
                    .to_std()
                    .is_ok_and(|since| since >= CHECKPOINT_INTERVAL)
        });
        closing || interval_passed || uncovered >= CHECKPOINT_EVERY_ENTRIES
    }
}

/// A stored chain row that no relay could have written.
#[derive(Debug, thiserror::Error)]
#[error("the audit chain of {producer} is corrupt: {what}")]
pub struct CorruptChain {
    pub producer: String,
    pub what: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Corrupt(#[from] CorruptChain),
}

type ChainRow = (Uuid, i64, Vec<u8>, i64, Option<DateTime<Utc>>);

fn parse_row(producer: &str, row: ChainRow) -> Result<ChainState, CorruptChain> {
    let corrupt = |what| CorruptChain {
        producer: producer.to_owned(),
        what,
    };
    let (chain_id, seq, head, checkpointed_seq, checkpointed_at) = row;
    let seq = u64::try_from(seq).map_err(|_| corrupt("negative seq"))?;
    let checkpointed_seq =
        u64::try_from(checkpointed_seq).map_err(|_| corrupt("negative checkpointed seq"))?;
    if checkpointed_seq > seq {
        return Err(corrupt("a checkpoint beyond the head"));
    }
    let digest: [u8; 32] = head
        .try_into()
        .map_err(|_| corrupt("a head that is not 32 bytes"))?;
    Ok(ChainState {
        chain_id,
        head: ChainHead {
            seq,
            digest: Digest32(digest),
        },
        checkpointed_seq,
        checkpointed_at,
    })
}

fn as_i64(seq: u64) -> i64 {
    // A chain would need 2^63 entries to overflow: saturate rather than wrap.
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// `producer`'s chain, if it has one. Call it under the relay's lock.
pub async fn load(tx: &mut PgConnection, producer: &str) -> Result<Option<ChainState>, ChainError> {
    let row: Option<ChainRow> = sqlx::query_as(
        "SELECT chain_id, seq, head, checkpointed_seq, checkpointed_at
         FROM audit_chains WHERE producer = $1",
    )
    .bind(producer)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|row| parse_row(producer, row)).transpose()?)
}

/// `producer`'s chain, started (empty, with a new id) the first time. Under the relay's lock.
pub async fn load_or_start(
    tx: &mut PgConnection,
    producer: &str,
) -> Result<ChainState, ChainError> {
    if let Some(chain) = load(tx, producer).await? {
        return Ok(chain);
    }
    let chain = ChainState::new(Uuid::now_v7());
    sqlx::query("INSERT INTO audit_chains (producer, chain_id, seq, head) VALUES ($1, $2, 0, $3)")
        .bind(producer)
        .bind(chain.chain_id)
        .bind(chain.head.digest.0.as_slice())
        .execute(&mut *tx)
        .await?;
    tracing::info!(producer, chain_id = %chain.chain_id, "audit chain started");
    Ok(chain)
}

/// Stores the chain's new head.
pub async fn store_head(
    tx: &mut PgConnection,
    producer: &str,
    chain: &ChainState,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE audit_chains SET seq = $2, head = $3 WHERE producer = $1")
        .bind(producer)
        .bind(as_i64(chain.head.seq))
        .bind(chain.head.digest.0.as_slice())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Records the checkpoint sent: it covered `seq`, signed at `at`.
pub async fn store_checkpoint(
    tx: &mut PgConnection,
    producer: &str,
    seq: u64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit_chains SET checkpointed_seq = GREATEST(checkpointed_seq, $2),
           checkpointed_at = $3
         WHERE producer = $1",
    )
    .bind(producer)
    .bind(as_i64(seq))
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_with(entries: u64, checkpointed_seq: u64, at: Option<DateTime<Utc>>) -> ChainState {
        let mut chain = ChainState::new(Uuid::now_v7());
        for n in 0..entries {
            chain.seal("t", b"k", n.to_string().as_bytes());
        }
        chain.checkpointed_seq = checkpointed_seq;
        chain.checkpointed_at = at;
        chain
    }

    #[test]
    fn seals_number_the_entries_from_one_and_follow_the_shared_head() {
        let mut chain = ChainState::new(Uuid::now_v7());
        let first = chain.seal("t", b"k", b"a");
        let second = chain.seal("u", b"k", b"b");
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.chain_id, chain.chain_id);
        let expected = ChainHead::genesis(chain.chain_id)
            .append(&shared::audit::leaf(1, "t", b"k", b"a"))
            .append(&shared::audit::leaf(2, "u", b"k", b"b"));
        assert_eq!(chain.head, expected);
    }

    #[test]
    fn a_checkpoint_is_due_after_its_interval_when_entries_are_uncovered() {
        let now = Utc::now();
        let second = chrono::Duration::seconds(1);
        assert!(
            !chain_with(0, 0, None).checkpoint_due(now, true),
            "nothing to cover"
        );
        assert!(!chain_with(3, 3, Some(now - second * 5)).checkpoint_due(now, true));
        assert!(
            chain_with(1, 0, None).checkpoint_due(now, false),
            "the first"
        );
        let recent = Some(now - chrono::Duration::milliseconds(100));
        assert!(!chain_with(5, 2, recent).checkpoint_due(now, false));
        assert!(
            chain_with(5, 2, recent).checkpoint_due(now, true),
            "closing"
        );
        assert!(chain_with(5, 2, Some(now - second)).checkpoint_due(now, false));
        // A clock behind the replica that signed the last one.
        assert!(chain_with(5, 2, Some(now + second * 30)).checkpoint_due(now, false));
    }

    #[test]
    fn many_uncovered_entries_make_a_checkpoint_due_at_once() {
        let now = Utc::now();
        let mut chain = chain_with(0, 0, Some(now));
        chain.head.seq = CHECKPOINT_EVERY_ENTRIES - 1;
        assert!(!chain.checkpoint_due(now, false));
        chain.head.seq = CHECKPOINT_EVERY_ENTRIES;
        assert!(chain.checkpoint_due(now, false));
    }

    #[test]
    fn a_stored_row_no_relay_writes_is_refused() {
        let id = Uuid::now_v7();
        let head = ChainHead::genesis(id).digest.0.to_vec();
        assert!(parse_row("p", (id, 2, head.clone(), 1, None)).is_ok());
        assert!(parse_row("p", (id, -1, head.clone(), 0, None)).is_err());
        assert!(parse_row("p", (id, 1, head.clone(), 2, None)).is_err());
        assert!(parse_row("p", (id, 1, vec![0; 31], 0, None)).is_err());
    }
}
