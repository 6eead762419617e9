//! The login flows: what must follow what within one attempt (`attempt_id`).
//!
//! - A `LoginAttempted` gets exactly one risk decision: the risk worker's `LoginApproved`,
//!   `MfaRequired`, `LoginRejected` or `CodeThrottled`. (The verifier's `LoginApproved`, with
//!   `approved_after_mfa`, is the end of the MFA, not a decision.)
//! - An `MfaRequired` gets its delivery outcome from the code worker, `CodeSent` or
//!   `CodeDeliveryFailed`, both naming its challenge. The code worker reports a failure for
//!   every email it gives up, a revoked or expired challenge's included; the one case without
//!   an outcome is an account deleted before its email went out (the code worker deletes its
//!   challenges), which an `AccountChanged` `deleted` of the user after the `MfaRequired`
//!   shows.
//! - The verifier's `LoginApproved` is caused by an `MfaSucceeded` of the same challenge.
//! - Every `causation_id` names an event of the same attempt (each service stamps the
//!   attempt of the event it reacts to).
//! - The same event id twice, with the same bytes, is a redelivery (a duplicate); with other
//!   bytes it is a conflict.
//!
//! Memory: an attempt is kept while events of it come, and finished once none came for the
//! window (`--window`) of event time, or when the attempts held reach their cap (the oldest
//! then go first, and a warning says the window was shortened). An attempt still incomplete
//! at the end of the log is "open" (info) if its last event is recent (`--recent`), else a
//! violation.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;

use shared::audit::Seal;
use shared::events::{AccountChange, Envelope, Event};
use uuid::Uuid;

use super::findings::{Finding, Kind, Tally};

/// The part of an event the flow checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    LoginAttempted,
    /// A risk decision.
    Decision(&'static str),
    MfaRequired,
    /// `CodeSent` or `CodeDeliveryFailed`.
    DeliveryOutcome,
    MfaSucceeded,
    /// The verifier's final approval.
    ApprovedAfterMfa,
    /// Anything else (`MfaFailed`): only its cause is checked.
    Other,
    AccountChanged,
    /// The user's word on a login (`LoginFeedback`): it may come days after the login ended,
    /// past the window, so on its own it expects nothing.
    Feedback,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    event_id: Uuid,
    cause: Option<Uuid>,
    step: Step,
    /// The challenge it names, nil when none.
    challenge: Uuid,
    user: Uuid,
    value_hash: u64,
    seal: Seal,
    timestamp_ms: i64,
}

struct Attempt {
    first_ms: i64,
    last_ms: i64,
    events: Vec<Seen>,
}

/// The attempts in progress.
pub struct Flows {
    attempts: HashMap<Uuid, Attempt, IdHashBuilder>,
    /// Attempt ids by the time they were (last) looked at, oldest first.
    queue: VecDeque<(i64, Uuid)>,
    /// Users deleted within the window: their pending emails were dropped.
    deleted: HashMap<Uuid, i64, IdHashBuilder>,
    window_ms: i64,
    recent_ms: i64,
    max_attempts: usize,
    shortened: bool,
    pub(crate) attempts_checked: u64,
    pub(crate) peak_attempts: usize,
}

impl Flows {
    pub fn new(window_ms: i64, recent_ms: i64, max_attempts: usize) -> Self {
        Self {
            attempts: HashMap::default(),
            queue: VecDeque::new(),
            deleted: HashMap::default(),
            window_ms,
            recent_ms,
            max_attempts: max_attempts.max(1),
            shortened: false,
            attempts_checked: 0,
            peak_attempts: 0,
        }
    }

    /// Files the first copy of a sealed event.
    pub(crate) fn event(
        &mut self,
        envelope: &Envelope,
        value: &[u8],
        seal: Seal,
        timestamp_ms: i64,
        tally: &mut Tally<'_>,
    ) {
        let (step, challenge, user) = match &envelope.event {
            Event::LoginAttempted(_) => (Step::LoginAttempted, Uuid::nil(), Uuid::nil()),
            Event::LoginApproved(approved) if approved.approved_after_mfa => (
                Step::ApprovedAfterMfa,
                approved.challenge_id.map_or(Uuid::nil(), |id| id.as_uuid()),
                approved.user_id.as_uuid(),
            ),
            Event::LoginApproved(_) => (Step::Decision("LoginApproved"), Uuid::nil(), Uuid::nil()),
            Event::MfaRequired(required) => (
                Step::MfaRequired,
                required.challenge_id.as_uuid(),
                required.user_id.as_uuid(),
            ),
            Event::LoginRejected(_) => (Step::Decision("LoginRejected"), Uuid::nil(), Uuid::nil()),
            Event::CodeThrottled(_) => (Step::Decision("CodeThrottled"), Uuid::nil(), Uuid::nil()),
            Event::CodeSent(sent) => (
                Step::DeliveryOutcome,
                sent.challenge_id.as_uuid(),
                sent.user_id.as_uuid(),
            ),
            Event::CodeDeliveryFailed(failed) => (
                Step::DeliveryOutcome,
                failed.challenge_id.as_uuid(),
                failed.user_id.as_uuid(),
            ),
            Event::MfaSucceeded(succeeded) => (
                Step::MfaSucceeded,
                succeeded.challenge_id.as_uuid(),
                succeeded.user_id.as_uuid(),
            ),
            Event::MfaFailed(_) => (Step::Other, Uuid::nil(), Uuid::nil()),
            Event::AccountChanged(changed) => {
                if changed.change == AccountChange::Deleted {
                    self.deleted.insert(changed.user_id.as_uuid(), timestamp_ms);
                }
                (Step::AccountChanged, Uuid::nil(), changed.user_id.as_uuid())
            }
            // An admin operation too: its id is no login's, and it names no user.
            Event::RiskPolicyChanged(_) => (Step::AccountChanged, Uuid::nil(), Uuid::nil()),
            // The user's word on a login, after it ended: caused by nothing in the log.
            Event::LoginFeedback(feedback) => {
                (Step::Feedback, Uuid::nil(), feedback.user_id.as_uuid())
            }
        };
        let seen = Seen {
            event_id: envelope.event_id,
            cause: envelope.causation_id,
            step,
            challenge,
            user,
            value_hash: value_hash(value),
            seal,
            timestamp_ms,
        };
        let attempt_id = envelope.attempt_id.as_uuid();
        let attempt = match self.attempts.get_mut(&attempt_id) {
            Some(attempt) => attempt,
            None => {
                self.queue.push_back((timestamp_ms, attempt_id));
                self.attempts.entry(attempt_id).or_insert(Attempt {
                    first_ms: timestamp_ms,
                    last_ms: timestamp_ms,
                    events: Vec::with_capacity(4),
                })
            }
        };
        attempt.first_ms = attempt.first_ms.min(timestamp_ms);
        attempt.last_ms = attempt.last_ms.max(timestamp_ms);
        if let Some(earlier) = attempt
            .events
            .iter()
            .find(|earlier| earlier.event_id == seen.event_id)
        {
            let finding = if earlier.value_hash == seen.value_hash {
                Finding::info(
                    Kind::Duplicate,
                    format!(
                        "event {} sealed twice, at {} and at {}",
                        seen.event_id, earlier.seal, seen.seal
                    ),
                )
            } else {
                Finding::violation(
                    Kind::ConflictingEvent,
                    format!(
                        "event {} sealed twice with other contents, at {} and at {}",
                        seen.event_id, earlier.seal, seen.seal
                    ),
                )
            };
            tally.report(
                finding
                    .events([seen.event_id])
                    .seal(earlier.seal)
                    .seal(seen.seal),
            );
            return;
        }
        attempt.events.push(seen);
        self.peak_attempts = self.peak_attempts.max(self.attempts.len());
    }

    /// Finishes the attempts nothing was heard of for the window (and the oldest, past the
    /// cap of attempts held).
    pub(crate) fn evict(&mut self, now_ms: i64, tally: &mut Tally<'_>) {
        let horizon = now_ms - self.window_ms;
        self.deleted.retain(|_, at| *at >= horizon);
        while let Some(&(queued_at, attempt_id)) = self.queue.front() {
            let over_cap = self.attempts.len() > self.max_attempts;
            if queued_at >= horizon && !over_cap {
                break;
            }
            self.queue.pop_front();
            let Some(attempt) = self.attempts.get(&attempt_id) else {
                continue;
            };
            if attempt.last_ms >= horizon && !over_cap {
                // Heard of since it was queued: look again when that is a window ago.
                self.queue.push_back((attempt.last_ms, attempt_id));
                continue;
            }
            if over_cap && attempt.last_ms >= horizon && !self.shortened {
                self.shortened = true;
                tally.report(Finding::warning(
                    Kind::WindowShortened,
                    format!(
                        "more than {} attempts within the window: the oldest are checked \
                         before the window ends, and an incomplete one may be reported \
                         wrongly; raise --max-attempts",
                        self.max_attempts
                    ),
                ));
            }
            if let Some(attempt) = self.attempts.remove(&attempt_id) {
                self.finish_attempt(attempt_id, &attempt, None, tally);
            }
        }
    }

    /// Finishes every attempt left at the end of the log, which ends at `end_ms`.
    pub(crate) fn finish(&mut self, end_ms: i64, tally: &mut Tally<'_>) {
        let mut left: Vec<(Uuid, Attempt)> = self.attempts.drain().collect();
        left.sort_by_key(|(id, attempt)| (attempt.first_ms, *id));
        self.queue.clear();
        for (attempt_id, attempt) in left {
            self.finish_attempt(attempt_id, &attempt, Some(end_ms), tally);
        }
    }

    fn finish_attempt(
        &mut self,
        attempt_id: Uuid,
        attempt: &Attempt,
        end_ms: Option<i64>,
        tally: &mut Tally<'_>,
    ) {
        self.attempts_checked += 1;
        let events = &attempt.events;
        let ids = || events.iter().map(|seen| seen.event_id);
        // Incomplete but recent at the end of the log: still in progress, not a violation.
        let open =
            self.recent_ms > 0 && end_ms.is_some_and(|end| attempt.last_ms > end - self.recent_ms);
        let incomplete = |kind: Kind, message: String| {
            if open {
                Finding::info(
                    Kind::Open,
                    format!("{message} (still open: {kind} if it stays so)"),
                )
            } else {
                Finding::violation(kind, message)
            }
        };
        for seen in events {
            if let Some(cause) = seen.cause {
                if !events.iter().any(|other| other.event_id == cause) {
                    tally.report(
                        Finding::violation(
                            Kind::DanglingCause,
                            format!(
                                "attempt {attempt_id}: event {} names cause {cause}, which is \
                                 not an event of the attempt in the log",
                                seen.event_id
                            ),
                        )
                        .events([seen.event_id])
                        .seal(seen.seal),
                    );
                }
            }
        }
        if events.iter().all(|seen| seen.step == Step::AccountChanged) {
            // An admin operation's id, not a login: nothing more is expected of it.
            return;
        }
        if events.iter().all(|seen| seen.step == Step::Feedback) {
            // Feedback on a login older than the window (its links last days): the login
            // itself was checked when it was read.
            return;
        }
        let Some(login) = events.iter().find(|seen| seen.step == Step::LoginAttempted) else {
            tally.report(
                Finding::violation(
                    Kind::NoLoginAttempted,
                    format!(
                        "attempt {attempt_id} has events but no LoginAttempted in the log \
                         (or it is older than the window)"
                    ),
                )
                .events(ids()),
            );
            return;
        };
        let decisions: Vec<&Seen> = events
            .iter()
            .filter(|seen| matches!(seen.step, Step::Decision(_) | Step::MfaRequired))
            .collect();
        match decisions.len() {
            1 => {}
            0 => tally.report(
                incomplete(
                    Kind::NoDecision,
                    format!("attempt {attempt_id}: LoginAttempted has no risk decision"),
                )
                .events([login.event_id])
                .seal(login.seal),
            ),
            _ => tally.report(
                Finding::violation(
                    Kind::SeveralDecisions,
                    format!(
                        "attempt {attempt_id}: {} risk decisions for one LoginAttempted ({})",
                        decisions.len(),
                        decisions
                            .iter()
                            .map(|seen| match seen.step {
                                Step::Decision(name) => name,
                                _ => "MfaRequired",
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .events(decisions.iter().map(|seen| seen.event_id)),
            ),
        }
        for required in events.iter().filter(|seen| seen.step == Step::MfaRequired) {
            let delivered = events.iter().any(|seen| {
                seen.step == Step::DeliveryOutcome && seen.challenge == required.challenge
            });
            let account_deleted = self
                .deleted
                .get(&required.user)
                .is_some_and(|at| *at >= required.timestamp_ms);
            if !delivered && !account_deleted {
                tally.report(
                    incomplete(
                        Kind::NoDeliveryOutcome,
                        format!(
                            "attempt {attempt_id}: MfaRequired for challenge {} has neither \
                             CodeSent nor CodeDeliveryFailed",
                            required.challenge
                        ),
                    )
                    .events([required.event_id])
                    .seal(required.seal),
                );
            }
        }
        for approval in events
            .iter()
            .filter(|seen| seen.step == Step::ApprovedAfterMfa)
        {
            let caused_by_success = approval.cause.is_some_and(|cause| {
                events.iter().any(|seen| {
                    seen.event_id == cause
                        && seen.step == Step::MfaSucceeded
                        && seen.challenge == approval.challenge
                })
            });
            if !caused_by_success {
                tally.report(
                    Finding::violation(
                        Kind::ApprovalWithoutMfa,
                        format!(
                            "attempt {attempt_id}: the verifier's LoginApproved is not caused \
                             by an MfaSucceeded of challenge {}",
                            approval.challenge
                        ),
                    )
                    .events([approval.event_id])
                    .seal(approval.seal),
                );
            }
        }
    }

    /// Attempts held now.
    pub fn held(&self) -> usize {
        self.attempts.len()
    }
}

/// Tells a redelivered event (same bytes) from a conflicting one: a multiply-rotate hash (as
/// rustc's FxHash), eight bytes a step. Not cryptographic, and it need not be: both copies
/// are sealed entries of their chains, whose bytes the chains check with SHA-256.
fn value_hash(value: &[u8]) -> u64 {
    let mut hasher = IdHasher(value.len() as u64);
    hasher.write(value);
    hasher.finish()
}

const MIX: u64 = 0x517c_c1b7_2722_0a95;

/// Hashes ids that are random or time-ordered UUIDs by their own bits, mixed with a key
/// drawn per run (so a crafted log cannot aim at one bucket). SipHash, the default, costs
/// more than the rest of an attempt's bookkeeping.
#[derive(Clone)]
pub(crate) struct IdHashBuilder(u64);

impl Default for IdHashBuilder {
    fn default() -> Self {
        Self(rand::random())
    }
}

impl std::hash::BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

pub(crate) struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(MIX);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.mix(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.mix(word);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest; hashbrown takes its bucket from them.
        self.0 ^ (self.0 >> 29)
    }
}
