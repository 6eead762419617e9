//! The producers' chains: each record's seal places it in its chain, the chain's head is
//! recomputed from the records' exact bytes, and every signed checkpoint must match the head
//! at its seq (`shared::audit`; `AUDIT.md` tells the scheme).
//!
//! What is held per chain, and why it is bounded:
//! - the head, and the heads after the last [`HEADS_KEPT`] entries, so a checkpoint that
//!   reaches the merge a little after later records is still compared;
//! - the leaf of each entry within the window of event time, so a redelivered copy is
//!   compared byte for byte (its leaf) with the entry it repeats;
//! - entries that came ahead of a missing seq (at most [`PENDING_MAX`], for at most
//!   [`REORDER_TOLERANCE_MS`] of event time; then the missing seqs are a gap);
//! - checkpoints ahead of the head, and per partition the highest seq seen there.

use std::collections::{BTreeMap, HashMap, VecDeque};

use shared::audit::{ChainHead, Checkpoint, Digest32, Seal};
use uuid::Uuid;

use super::findings::{Finding, Kind, Tally};
use super::flows::IdHashBuilder;
use crate::record::Location;

/// Heads kept per chain for late checkpoints (32 bytes each).
pub const HEADS_KEPT: usize = 16_384;
/// Entries held per chain ahead of a missing seq before the seq is declared missing.
pub const PENDING_MAX: usize = 100_000;
/// How long (event time) an entry may wait for the seqs before it. A chain's records are
/// sent one after the other, each after the last one's acknowledgement, so they reach the
/// merge in seq order but for equal timestamps and clock steps between replicas.
pub const REORDER_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// What became of a sealed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The first copy of its entry: its event counts.
    Fresh,
    /// A copy of an entry already seen (identical, or not: the finding says which).
    Copy,
}

/// Where a record is, without copying its topic's name until a finding needs it.
pub(crate) struct Place<'a> {
    pub(crate) topic: &'a str,
    /// The topic's number in the verifier's list of topics seen.
    pub(crate) topic_index: u16,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp_ms: i64,
}

impl Place<'_> {
    pub(crate) fn location(&self) -> Location {
        Location {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

struct PendingEntry {
    leaf: Digest32,
    timestamp_ms: i64,
    location: Location,
}

struct SignedHead {
    digest: Digest32,
    location: Location,
    key_id: String,
}

/// The first entry not yet covered by a verified checkpoint: where the next range starts.
struct RangeStart {
    location: Location,
    timestamp_ms: i64,
}

struct Chain {
    id: Uuid,
    /// `None` after a gap, until a checkpoint gives the head back.
    head: Option<ChainHead>,
    /// Seqs up to here were declared missing or unchecked: a late copy is not an entry.
    floor: u64,
    /// Leaves of entries `leaves_base..`, within the window, with the event time of every
    /// [`TIME_MARK_EVERY`]th, for trimming.
    leaves: VecDeque<Digest32>,
    leaves_base: u64,
    time_marks: VecDeque<(u64, i64)>,
    /// Heads after entries `heads_base..`.
    heads: VecDeque<Digest32>,
    heads_base: u64,
    pending: BTreeMap<u64, PendingEntry>,
    checkpoints_ahead: BTreeMap<u64, SignedHead>,
    /// The last seq a valid checkpoint was compared at (or given the head after a gap).
    verified_to: u64,
    range_start: Option<RangeStart>,
    /// The producer that signs the chain's checkpoints, and the one its events claim.
    signer: Option<String>,
    claimed: Option<String>,
    entries: u64,
    checkpoints_matched: u64,
}

const TIME_MARK_EVERY: u64 = 256;

impl Chain {
    fn new(id: Uuid) -> Self {
        Self {
            id,
            head: Some(ChainHead::genesis(id)),
            floor: 0,
            leaves: VecDeque::new(),
            leaves_base: 1,
            time_marks: VecDeque::new(),
            heads: VecDeque::new(),
            heads_base: 1,
            pending: BTreeMap::new(),
            checkpoints_ahead: BTreeMap::new(),
            verified_to: 0,
            range_start: None,
            signer: None,
            claimed: None,
            entries: 0,
            checkpoints_matched: 0,
        }
    }

    fn describe(&self) -> String {
        match self.signer.as_deref().or(self.claimed.as_deref()) {
            Some(producer) => format!("chain {} ({producer})", self.id),
            None => format!("chain {}", self.id),
        }
    }

    fn leaf_at(&self, seq: u64) -> Option<&Digest32> {
        seq.checked_sub(self.leaves_base)
            .and_then(|index| self.leaves.get(usize::try_from(index).ok()?))
    }

    fn head_at(&self, seq: u64) -> Option<Digest32> {
        if let Some(head) = &self.head {
            if head.seq == seq {
                return Some(head.digest);
            }
        }
        if seq == 0 {
            return Some(ChainHead::genesis(self.id).digest);
        }
        seq.checked_sub(self.heads_base)
            .and_then(|index| self.heads.get(usize::try_from(index).ok()?))
            .copied()
    }
}

/// Every chain of the log.
#[derive(Default)]
pub struct Chains {
    chains: HashMap<Uuid, Chain, IdHashBuilder>,
    /// The highest seq seen per (chain, topic, partition), with its offset.
    last_in_partition: HashMap<(Uuid, u16, i32), (u64, i64), IdHashBuilder>,
    pub(crate) checkpoints_matched: u64,
}

impl Chains {
    fn chain(&mut self, id: Uuid) -> &mut Chain {
        self.chains.entry(id).or_insert_with(|| Chain::new(id))
    }

    /// How many chains the log has.
    pub fn count(&self) -> usize {
        self.chains.len()
    }

    /// Files the record sealed `seal`, whose leaf is `leaf`, at `place`.
    pub(crate) fn entry(
        &mut self,
        seal: Seal,
        leaf: Digest32,
        place: &Place<'_>,
        event_id: Option<Uuid>,
        tally: &mut Tally<'_>,
    ) -> Fate {
        let timestamp_ms = place.timestamp_ms;
        let location = || place.location();
        let chain = self
            .chains
            .entry(seal.chain_id)
            .or_insert_with(|| Chain::new(seal.chain_id));
        let seq = seal.seq;
        let incorporated = chain.head.as_ref().map_or(0, |head| head.seq);
        // A copy of an entry already in the chain, or waiting for its turn.
        let earlier = if seq <= incorporated {
            Some(chain.leaf_at(seq).copied())
        } else {
            chain.pending.get(&seq).map(|pending| Some(pending.leaf))
        };
        if let Some(earlier) = earlier {
            let finding = match earlier {
                Some(earlier) if earlier == leaf => Finding::info(
                    Kind::Duplicate,
                    format!("redelivered copy of seq {seq} of {}", chain.describe()),
                ),
                Some(_) => Finding::violation(
                    Kind::ConflictingCopy,
                    format!(
                        "seq {seq} of {} appears again with other bytes: forged or altered",
                        chain.describe()
                    ),
                ),
                None => Finding::violation(
                    Kind::UncomparedCopy,
                    format!(
                        "seq {seq} of {} appears again, but the first copy is older than the \
                         window and was not kept: raise --window to compare them",
                        chain.describe()
                    ),
                ),
            };
            tally.report(finding.seal(seal).events(event_id).at(location()));
            return Fate::Copy;
        }
        if seq <= chain.floor {
            tally.report(
                Finding::warning(
                    Kind::Unchecked,
                    format!(
                        "seq {seq} of {} arrived after its seqs were reported missing: \
                         not checked",
                        chain.describe()
                    ),
                )
                .seal(seal)
                .events(event_id)
                .at(location()),
            );
            return Fate::Fresh;
        }
        // Within one partition a chain's seqs rise with the offset: the relay sends in seq
        // order and awaits each acknowledgement.
        let partition_key = (seal.chain_id, place.topic_index, place.partition);
        match self.last_in_partition.get_mut(&partition_key) {
            Some((last_seq, last_offset)) if *last_seq > seq => {
                tally.report(
                    Finding::violation(
                        Kind::Reordered,
                        format!(
                            "seq {seq} of {} is at a later offset than seq {last_seq} (offset \
                             {last_offset}) in the same partition: records were moved",
                            chain.describe()
                        ),
                    )
                    .seal(seal)
                    .events(event_id)
                    .at(location()),
                );
            }
            Some(last) => *last = (seq, place.offset),
            None => {
                self.last_in_partition
                    .insert(partition_key, (seq, place.offset));
            }
        }
        chain.entries += 1;
        let next = chain.head.as_ref().map(|head| head.seq + 1);
        if next == Some(seq) {
            self.checkpoints_matched += Self::append(chain, leaf, timestamp_ms, location, tally);
            self.checkpoints_matched += Self::drain(chain, tally);
        } else {
            chain.pending.insert(
                seq,
                PendingEntry {
                    leaf,
                    timestamp_ms,
                    location: location(),
                },
            );
            if chain.pending.len() > PENDING_MAX {
                self.checkpoints_matched += Self::declare_gap(chain, tally);
            }
        }
        Fate::Fresh
    }

    /// Appends the next entry and compares a checkpoint waiting at its seq.
    fn append(
        chain: &mut Chain,
        leaf: Digest32,
        timestamp_ms: i64,
        location: impl FnOnce() -> Location,
        tally: &mut Tally<'_>,
    ) -> u64 {
        let Some(head) = chain.head.as_mut() else {
            return 0;
        };
        *head = head.append(&leaf);
        let seq = head.seq;
        if chain.leaves.is_empty() {
            chain.leaves_base = seq;
        }
        chain.leaves.push_back(leaf);
        if seq.is_multiple_of(TIME_MARK_EVERY) || chain.time_marks.is_empty() {
            chain.time_marks.push_back((seq, timestamp_ms));
        }
        if chain.heads.is_empty() {
            chain.heads_base = seq;
        }
        chain.heads.push_back(head.digest);
        if chain.heads.len() > HEADS_KEPT {
            chain.heads.pop_front();
            chain.heads_base += 1;
        }
        if seq == chain.verified_to + 1 {
            chain.range_start = Some(RangeStart {
                location: location(),
                timestamp_ms,
            });
        }
        match chain.checkpoints_ahead.first_key_value() {
            Some((&at, _)) if at == seq => {
                if let Some(signed) = chain.checkpoints_ahead.remove(&seq) {
                    return Self::compare(chain, seq, &signed, tally);
                }
                0
            }
            _ => 0,
        }
    }

    /// Appends the entries that waited for the one just appended.
    fn drain(chain: &mut Chain, tally: &mut Tally<'_>) -> u64 {
        let mut matched = 0;
        while let Some(next) = chain.head.as_ref().map(|head| head.seq + 1) {
            let Some(entry) = chain.pending.remove(&next) else {
                break;
            };
            let PendingEntry {
                leaf,
                timestamp_ms,
                location,
            } = entry;
            matched += Self::append(chain, leaf, timestamp_ms, || location, tally);
        }
        matched
    }

    /// Compares the head at `seq` with a validly signed checkpoint; 1 when it matched.
    fn compare(chain: &mut Chain, seq: u64, signed: &SignedHead, tally: &mut Tally<'_>) -> u64 {
        let Some(ours) = chain.head_at(seq) else {
            tally.report(
                Finding::warning(
                    Kind::CheckpointNotChecked,
                    format!(
                        "the checkpoint at seq {seq} of {} came after the head had moved {} \
                         entries on: not compared (later checkpoints cover the same entries)",
                        chain.describe(),
                        HEADS_KEPT
                    ),
                )
                .at(signed.location.clone()),
            );
            return 0;
        };
        if seq <= chain.verified_to {
            if ours != signed.digest {
                tally.report(
                    Finding::violation(
                        Kind::HeadMismatch,
                        format!(
                            "the checkpoint at seq {seq} of {} (key {}) disagrees with the \
                             chain, which an earlier checkpoint covered",
                            chain.describe(),
                            signed.key_id
                        ),
                    )
                    .at(signed.location.clone()),
                );
            }
            return 0;
        }
        let from = chain.verified_to + 1;
        let start = chain.range_start.take();
        chain.verified_to = seq;
        if ours == signed.digest {
            chain.checkpoints_matched += 1;
            return 1;
        }
        let mut finding = Finding::violation(
            Kind::HeadMismatch,
            format!(
                "{}: the head at seq {seq} is not the one checkpoint (key {}) signed: a record \
                 among seqs {from}..={seq} was altered, inserted or removed",
                chain.describe(),
                signed.key_id
            ),
        );
        if let Some(start) = start {
            finding = finding.at(start.location);
        }
        tally.report(finding.at(signed.location.clone()));
        // The signed head is the producer's: later ranges are checked from it, so one
        // altered record is one finding, not one per checkpoint after it.
        if let Some(head) = chain.head.as_mut() {
            if head.seq == seq {
                head.digest = signed.digest;
                if let Some(last) = chain.heads.back_mut() {
                    *last = signed.digest;
                }
            } else {
                let mut rebuilt = ChainHead {
                    seq,
                    digest: signed.digest,
                };
                for next in seq + 1..=head.seq {
                    match chain
                        .leaves
                        .get(usize::try_from(next - chain.leaves_base).unwrap_or(usize::MAX))
                    {
                        Some(leaf) => rebuilt = rebuilt.append(leaf),
                        None => break,
                    }
                    if let Some(kept) = next
                        .checked_sub(chain.heads_base)
                        .and_then(|index| chain.heads.get_mut(usize::try_from(index).ok()?))
                    {
                        *kept = rebuilt.digest;
                    }
                }
                if rebuilt.seq == head.seq {
                    *head = rebuilt;
                }
            }
        }
        0
    }

    /// The seqs before the first pending entry are missing: reports them, and picks the
    /// chain up again at the first checkpoint past them, if one is known.
    fn declare_gap(chain: &mut Chain, tally: &mut Tally<'_>) -> u64 {
        let Some((&present, first)) = chain.pending.first_key_value() else {
            return 0;
        };
        let from = chain
            .head
            .as_ref()
            .map_or(chain.floor + 1, |head| head.seq + 1);
        if present > from {
            tally.report(
                Finding::violation(
                    Kind::SeqGap,
                    format!(
                        "{}: seqs {from}..={} are missing (dropped), the next present is seq \
                         {present}",
                        chain.describe(),
                        present - 1
                    ),
                )
                .seal(Seal {
                    chain_id: chain.id,
                    seq: present,
                })
                .at(first.location.clone()),
            );
        }
        chain.head = None;
        chain.floor = present - 1;
        Self::resume_at_checkpoint(chain, tally)
    }

    /// After a gap: the first known checkpoint past it gives the head back; the entries up
    /// to it cannot be checked.
    fn resume_at_checkpoint(chain: &mut Chain, tally: &mut Tally<'_>) -> u64 {
        let floor = chain.floor;
        let Some((&at, _)) = chain.checkpoints_ahead.range(floor..).next() else {
            return 0;
        };
        let Some(signed) = chain.checkpoints_ahead.remove(&at) else {
            return 0;
        };
        chain.checkpoints_ahead.retain(|&seq, _| seq > at);
        Self::adopt(chain, at, &signed, tally)
    }

    fn adopt(chain: &mut Chain, at: u64, signed: &SignedHead, tally: &mut Tally<'_>) -> u64 {
        let skipped: Vec<u64> = chain.pending.range(..=at).map(|(&seq, _)| seq).collect();
        if at > chain.floor {
            tally.report(
                Finding::warning(
                    Kind::Unchecked,
                    format!(
                        "{}: seqs {}..={at} follow a gap and could not be checked ({} of them \
                         present); checking resumes at the checkpoint at seq {at}",
                        chain.describe(),
                        chain.floor + 1,
                        skipped.len()
                    ),
                )
                .at(signed.location.clone()),
            );
        }
        for seq in skipped {
            chain.pending.remove(&seq);
        }
        chain.head = Some(ChainHead {
            seq: at,
            digest: signed.digest,
        });
        chain.floor = at;
        chain.verified_to = at;
        chain.range_start = None;
        chain.leaves.clear();
        chain.time_marks.clear();
        chain.heads.clear();
        Self::drain(chain, tally)
    }

    /// Files a checkpoint whose signature verified.
    pub(crate) fn checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        digest: Digest32,
        location: Location,
        tally: &mut Tally<'_>,
    ) {
        let chain = self.chain(checkpoint.chain_id);
        match &chain.signer {
            Some(signer) if *signer != checkpoint.producer => tally.report(
                Finding::violation(
                    Kind::ChainProducerMismatch,
                    format!(
                        "{} is signed by {signer} and by {}",
                        chain.describe(),
                        checkpoint.producer
                    ),
                )
                .at(location.clone()),
            ),
            Some(_) => {}
            None => {
                if let Some(claimed) = &chain.claimed {
                    if *claimed != checkpoint.producer {
                        tally.report(
                            Finding::violation(
                                Kind::ChainProducerMismatch,
                                format!(
                                    "the events of chain {} claim producer {claimed}, its \
                                     checkpoints are signed by {}",
                                    chain.id, checkpoint.producer
                                ),
                            )
                            .at(location.clone()),
                        );
                    }
                }
                chain.signer = Some(checkpoint.producer.clone());
            }
        }
        let signed = SignedHead {
            digest,
            location,
            key_id: checkpoint.key_id.clone(),
        };
        let seq = checkpoint.seq;
        let matched = match &chain.head {
            None if seq > chain.floor => Self::adopt(chain, seq, &signed, tally),
            None => 0,
            Some(head) if seq <= head.seq => Self::compare(chain, seq, &signed, tally),
            Some(_) => {
                chain.checkpoints_ahead.insert(seq, signed);
                0
            }
        };
        self.checkpoints_matched += matched;
    }

    /// Notes the producer a chain's event claims; a chain carries one producer's events.
    pub(crate) fn claim(
        &mut self,
        chain_id: Uuid,
        producer: &str,
        seal: Seal,
        event_id: Uuid,
        location: impl FnOnce() -> Location,
        tally: &mut Tally<'_>,
    ) {
        let chain = self.chain(chain_id);
        let expected = chain.signer.as_ref().or(chain.claimed.as_ref());
        match expected {
            Some(expected) if expected != producer => tally.report(
                Finding::violation(
                    Kind::ChainProducerMismatch,
                    format!(
                        "an event claims producer {producer} in {}, which is {expected}'s",
                        chain.describe()
                    ),
                )
                .seal(seal)
                .events([event_id])
                .at(location()),
            ),
            Some(_) => {}
            None => chain.claimed = Some(producer.to_owned()),
        }
    }

    /// Forgets what is older than the window, and reports the seqs that waited too long.
    pub(crate) fn maintain(&mut self, now_ms: i64, window_ms: i64, tally: &mut Tally<'_>) {
        let mut matched = 0;
        for chain in self.chains.values_mut() {
            while let Some(&(seq, at)) = chain.time_marks.front() {
                if at >= now_ms - window_ms || chain.time_marks.len() < 2 {
                    break;
                }
                chain.time_marks.pop_front();
                let next_mark = chain.time_marks.front().map_or(seq, |(next, _)| *next);
                while chain.leaves_base < next_mark && !chain.leaves.is_empty() {
                    chain.leaves.pop_front();
                    chain.leaves_base += 1;
                }
            }
            while chain
                .pending
                .first_key_value()
                .is_some_and(|(_, first)| first.timestamp_ms < now_ms - REORDER_TOLERANCE_MS)
            {
                matched += Self::declare_gap(chain, tally);
            }
        }
        self.checkpoints_matched += matched;
    }

    /// At the end of the log: reports what is missing or not covered. `open_tail_ms`: an
    /// uncovered tail that starts within this long of the log's end is only noted (the
    /// producer's next checkpoint is under a second away in a running system).
    pub(crate) fn finish(&mut self, end_ms: i64, open_tail_ms: i64, tally: &mut Tally<'_>) {
        let mut ids: Vec<Uuid> = self.chains.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(chain) = self.chains.get_mut(&id) else {
                continue;
            };
            while !chain.pending.is_empty() {
                self.checkpoints_matched += Self::declare_gap(chain, tally);
            }
            let last = chain.head.as_ref().map_or(chain.floor, |head| head.seq);
            if let Some((&seq, signed)) = chain.checkpoints_ahead.last_key_value() {
                tally.report(
                    Finding::violation(
                        Kind::CheckpointBeyondLog,
                        format!(
                            "{}: a checkpoint covers seqs up to {seq}, the log ends at seq \
                             {last}: seqs {}..={seq} were dropped",
                            chain.describe(),
                            last + 1
                        ),
                    )
                    .at(signed.location.clone()),
                );
            }
            if last > chain.verified_to {
                let start = chain.range_start.take();
                let recent = open_tail_ms > 0
                    && start
                        .as_ref()
                        .is_some_and(|start| start.timestamp_ms > end_ms - open_tail_ms);
                let what = if chain.verified_to == 0 && chain.checkpoints_matched == 0 {
                    "no valid checkpoint covers it".to_owned()
                } else {
                    format!("its last valid checkpoint is at seq {}", chain.verified_to)
                };
                let message = format!(
                    "{}: seqs {}..={last} are not covered by a checkpoint ({what})",
                    chain.describe(),
                    chain.verified_to + 1
                );
                let mut finding = if recent {
                    Finding::info(Kind::NotCovered, format!("{message}; recent, so not yet"))
                } else {
                    // A running producer covers its tail within a fraction of a second: say how to
                    // tell that apart from a removed checkpoint.
                    Finding::violation(
                        Kind::NotCovered,
                        format!(
                            "{message} (a log read while its services run: read it again a \
                             few seconds later, or pass --open-tail-secs)"
                        ),
                    )
                };
                if let Some(start) = start {
                    finding = finding.at(start.location);
                }
                tally.report(finding);
            }
        }
    }
}
