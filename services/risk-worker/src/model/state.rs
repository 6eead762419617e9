//! What the risk worker remembers, in memory: for `replay` (and tests). The live worker keeps
//! the same state in PostgreSQL (`crate::store`), with the same rules, so both decide alike
//! (both implement `crate::state::RiskState`):
//! - a user's history is their approved logins of the last `history_window` before the
//!   login being decided;
//! - global counts are of the approved logins of the login's epoch and the one before
//!   (`super::epochs`): per level and value, distinct values per level, logins, and users
//!   learned (a deleted user who logs in again counts once more, as `risk_global_values`'
//!   `user` rows do);
//! - failures are wrong passwords (and unknown accounts), counted in the windows before the
//!   login being decided, not including it;
//! - the code caps' history: the challenges issued, when each was closed, and wrong codes
//!   (each `MfaFailed` counted once);
//! - the logins that wait for their code to be passed before they are learned;
//! - each company's newest risk policy (`RiskPolicyChanged`);
//! - the users who must change their password first (`risk_password_change_required`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, ChallengeId, CompanyId, DeviceId, UserId};
use shared::events::RiskPolicyChanged;
use uuid::Uuid;

use super::assess::{
    last_location, HistoryEntry, Reported, UserFacts, Velocity, HISTORY_READ_LIMIT,
};
use super::epochs::{Epoch, SeenChange, ValueCounts};
use super::features::{Features, Level};
use super::freeman::{Counts, GlobalCounts};
use crate::decision::{Failure, Learning};
use crate::housekeeping::Retention;
use crate::rules::{CodeHistory, CompanyPolicy, PendingCode};
use crate::state::{
    ClosedChallenge, Decided, HistoryQuery, Outcome, PasswordChangeRequired, ReportedLogin,
    RiskState, VelocityQuery, WrongCode,
};

/// Maps keyed by the model's own values: a fast hash with a fixed seed (deterministic, and
/// replay's input is the operator's own event log, not an adversary's choice of keys).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
type FastSet<K> = HashSet<K, foldhash::fast::FixedState>;

/// The account a failure counts against: the user, or for an unknown email a key of its own
/// (each attempt on an unknown account counts as one more account tried).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey(pub String);

/// One user's approved logins in the window, and how often each value occurs among them
/// (kept as logins join and leave, so a decision costs a few lookups, not a scan).
#[derive(Debug, Default)]
struct UserState {
    entries: Vec<HistoryEntry>,
    value_counts: [FastMap<String, u64>; Level::ALL.len()],
}

impl UserState {
    fn count(&mut self, features: &Features, add: bool) {
        for (level, value) in features.values() {
            let counts = &mut self.value_counts[level.index()];
            if add {
                *counts.entry(value.to_owned()).or_default() += 1;
            } else if let Some(count) = counts.get_mut(value) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(value);
                }
            }
        }
    }
}

/// A challenge the decisions issued (`risk_challenges`).
#[derive(Debug, Clone)]
struct Challenge {
    id: ChallengeId,
    attempt_id: AttemptId,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    device: Option<DeviceId>,
}

/// A login that asked for a code: learned if the user passes it (`risk_decisions` rows that
/// keep their features).
#[derive(Debug)]
struct AwaitingMfa {
    user: UserId,
    /// None for a login whose personal data was erased: learned by the global counts only.
    features: Option<Features>,
    global: Features,
    /// The login's time, which it is learned at.
    at: DateTime<Utc>,
    decided_at: DateTime<Utc>,
}

/// One epoch's share of the global counts (`risk_global_levels`, `risk_global_totals`).
#[derive(Debug, Default, Clone, Copy)]
struct EpochTally {
    logins: u64,
    /// Per level: the values whose newest epoch this is.
    values_seen: [i64; Level::ALL.len()],
    /// The users whose newest epoch this is.
    users_seen: i64,
}

impl EpochTally {
    fn apply(
        tallies: &mut BTreeMap<Epoch, EpochTally>,
        change: SeenChange,
        seen: impl Fn(&mut EpochTally) -> &mut i64,
    ) {
        if let Some(epoch) = change.entered {
            *seen(tallies.entry(epoch).or_default()) += 1;
        }
        if let Some(epoch) = change.left {
            *seen(tallies.entry(epoch).or_default()) -= 1;
        }
    }
}

/// One more login with the value `key` of `map`, in `epoch`.
fn learn_value<K, Q>(map: &mut FastMap<K, ValueCounts>, key: &Q, epoch: Epoch) -> SeenChange
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
{
    if let Some(counts) = map.get_mut(key) {
        return counts.learn(epoch);
    }
    let (first, change) = ValueCounts::first(epoch);
    map.insert(key.to_owned(), first);
    change
}

#[derive(Debug, Default)]
pub struct MemoryState {
    histories: FastMap<UserId, UserState>,
    values: FastMap<Level, FastMap<String, ValueCounts>>,
    learned_users: FastMap<UserId, ValueCounts>,
    epochs: BTreeMap<Epoch, EpochTally>,
    failures_by_account: FastMap<AccountKey, VecDeque<DateTime<Utc>>>,
    failures_by_ip: FastMap<String, VecDeque<(DateTime<Utc>, AccountKey)>>,
    /// Each user's challenges, in issue order.
    challenges: FastMap<UserId, VecDeque<Challenge>>,
    challenge_owners: FastMap<ChallengeId, UserId>,
    /// The challenge each attempt was issued.
    challenge_of_attempt: FastMap<AttemptId, ChallengeId>,
    /// Each user's wrong codes: when, and the event that reported it.
    failed_codes: FastMap<UserId, VecDeque<(DateTime<Utc>, Uuid)>>,
    awaiting_mfa: FastMap<AttemptId, AwaitingMfa>,
    /// The networks and devices each user reported (`risk_reported`).
    reported: FastMap<UserId, FastSet<(Level, String)>>,
    company_policies: HashMap<CompanyId, CompanyPolicy>,
    /// The users who must change their password first, with their first report
    /// (`risk_password_change_required`).
    password_change_required: FastMap<UserId, PasswordChangeRequired>,
}

impl MemoryState {
    /// Forgets the user's logins older than `window` before `at`: they can never count
    /// again, as logins are decided in time order.
    pub fn forget_history_before(&mut self, user: UserId, at: DateTime<Utc>, window: Duration) {
        let since = shared::time::saturating_sub(at, window);
        if let Some(state) = self.histories.get_mut(&user) {
            let expired = state.entries.partition_point(|e| e.at < since);
            let gone: Vec<HistoryEntry> = state.entries.drain(..expired).collect();
            for entry in &gone {
                state.count(&entry.features, false);
            }
        }
    }

    /// The user's history as the model reads it for `login` (call `forget_history_before`
    /// first). Equal to `UserFacts::from_history` over the same entries.
    pub fn user_facts(&self, user: UserId, login: &Features) -> UserFacts {
        let password_change_required = self.password_change_required.contains_key(&user);
        let Some(state) = self.histories.get(&user) else {
            return UserFacts {
                reported: self.reported_of(user, login),
                password_change_required,
                ..UserFacts::default()
            };
        };
        let mut counts = Counts {
            logins: state.entries.len() as u64,
            ..Counts::default()
        };
        for (level, value) in login.values() {
            if let Some(&count) = state.value_counts[level.index()].get(value) {
                counts.matching.set(level, count);
            }
        }
        UserFacts {
            counts,
            last_location: last_location(&state.entries),
            reported: self.reported_of(user, login),
            password_change_required,
        }
    }

    /// Whether `login`'s network and device are among those the user reported.
    pub fn reported_of(&self, user: UserId, login: &Features) -> Reported {
        let Some(reported) = self.reported.get(&user) else {
            return Reported::default();
        };
        let has = |level: Level| {
            login
                .get(level)
                .is_some_and(|value| reported.contains(&(level, value.to_owned())))
        };
        Reported {
            network: has(Level::Prefix),
            device: has(Level::Device),
        }
    }

    /// The global counts a login at `at` reads (`login`: its pseudonymous features).
    pub fn global(&self, login: &Features, at: DateTime<Utc>) -> GlobalCounts {
        let epoch = Epoch::of(at);
        let mut window = EpochTally::default();
        for tally in [epoch.previous(), epoch]
            .iter()
            .filter_map(|e| self.epochs.get(e))
        {
            window.logins += tally.logins;
            window.users_seen += tally.users_seen;
            for (sum, seen) in window.values_seen.iter_mut().zip(tally.values_seen) {
                *sum += seen;
            }
        }
        let mut global = GlobalCounts {
            distinct: Level::ALL
                .iter()
                .map(|level| (*level, window.values_seen[level.index()].max(0) as u64))
                .collect(),
            users: window.users_seen.max(0) as u64,
            ..GlobalCounts::default()
        };
        global.counts.logins = window.logins;
        for (level, value) in login.values() {
            if let Some(counts) = self.values.get(&level).and_then(|v| v.get(value)) {
                global.counts.matching.set(level, counts.count_at(epoch));
            }
        }
        global
    }

    /// `account_window` for the account's failures, `ip_window` for the address's.
    pub fn velocity(
        &self,
        account: Option<&AccountKey>,
        ip: &str,
        at: DateTime<Utc>,
        account_window: Duration,
        ip_window: Duration,
    ) -> Velocity {
        let since = |window: Duration| shared::time::saturating_sub(at, window);
        let mut velocity = Velocity::default();
        if let Some(account) = account {
            if let Some(times) = self.failures_by_account.get(account) {
                let from = since(account_window);
                velocity.account_failures =
                    times.iter().filter(|&&t| t >= from && t < at).count() as u32;
            }
        }
        if let Some(failures) = self.failures_by_ip.get(ip) {
            let from = since(ip_window);
            let recent: Vec<_> = failures
                .iter()
                .filter(|(t, _)| *t >= from && *t < at)
                .collect();
            velocity.ip_failures = recent.len() as u32;
            velocity.ip_failed_accounts =
                recent.iter().map(|(_, a)| a).collect::<HashSet<_>>().len() as u32;
        }
        velocity
    }

    /// Drops failures older than `keep` before `at`, so memory stays bounded on long inputs.
    pub fn forget_failures_before(&mut self, at: DateTime<Utc>, keep: Duration) {
        let since = shared::time::saturating_sub(at, keep);
        self.failures_by_account.retain(|_, times| {
            while times.front().is_some_and(|t| *t < since) {
                times.pop_front();
            }
            !times.is_empty()
        });
        self.failures_by_ip.retain(|_, failures| {
            while failures.front().is_some_and(|(t, _)| *t < since) {
                failures.pop_front();
            }
            !failures.is_empty()
        });
    }

    pub fn record_failure(&mut self, account: AccountKey, ip: String, at: DateTime<Utc>) {
        self.failures_by_account
            .entry(account.clone())
            .or_default()
            .push_back(at);
        self.failures_by_ip
            .entry(ip)
            .or_default()
            .push_back((at, account));
    }

    /// An approved login joins the user's history (`features`, None when its personal data
    /// was erased) and the global counts (`global`: its pseudonymous features).
    pub fn learn(
        &mut self,
        user: UserId,
        features: Option<&Features>,
        global: &Features,
        at: DateTime<Utc>,
    ) {
        if let Some(features) = features {
            let state = self.histories.entry(user).or_default();
            let position = state.entries.partition_point(|e| e.at <= at);
            state.entries.insert(
                position,
                HistoryEntry {
                    at,
                    features: features.clone(),
                },
            );
            state.count(features, true);
            // As the live worker reads at most the newest `HISTORY_READ_LIMIT` logins.
            let excess = state.entries.len().saturating_sub(HISTORY_READ_LIMIT);
            let gone: Vec<HistoryEntry> = state.entries.drain(..excess).collect();
            for entry in &gone {
                state.count(&entry.features, false);
            }
        }
        // As `crate::store::learn_global`: the login counts in its own epoch.
        let epoch = Epoch::of(at);
        self.epochs.entry(epoch).or_default().logins += 1;
        let change = learn_value(&mut self.learned_users, &user, epoch);
        EpochTally::apply(&mut self.epochs, change, |tally| &mut tally.users_seen);
        for (level, value) in global.values() {
            let change = learn_value(self.values.entry(level).or_default(), value, epoch);
            EpochTally::apply(&mut self.epochs, change, |tally| {
                &mut tally.values_seen[level.index()]
            });
        }
    }

    /// An erased login that asked for a code: if the code is passed, the global counts learn
    /// it (`global`, from its recorded decision).
    pub fn await_mfa_erased(
        &mut self,
        attempt_id: AttemptId,
        user: UserId,
        global: Features,
        at: DateTime<Utc>,
        decided_at: DateTime<Utc>,
    ) {
        self.awaiting_mfa.insert(
            attempt_id,
            AwaitingMfa {
                user,
                features: None,
                global,
                at,
                decided_at,
            },
        );
    }

    /// After an admin reset: the user's next login has no history.
    pub fn forget_user(&mut self, user: UserId) {
        self.histories.remove(&user);
    }

    /// Forgets what housekeeping would have deleted by `now`, so memory stays bounded on
    /// long inputs. The users' histories are trimmed as they are read.
    pub fn forget_expired(&mut self, now: DateTime<Utc>, keep: &Retention) {
        let since = |keep: Duration| shared::time::saturating_sub(now, keep);
        self.forget_failures_before(now, keep.failed_attempts);
        // No login from `now` on reads an epoch before the previous one (housekeeping's
        // `risk_global_*` sweeps).
        // Once an epoch: every value is looked at.
        let oldest_read = Epoch::of(now).previous();
        if self
            .epochs
            .first_key_value()
            .is_some_and(|(oldest, _)| *oldest < oldest_read)
        {
            self.epochs = self.epochs.split_off(&oldest_read);
            for values in self.values.values_mut() {
                values.retain(|_, counts| counts.epoch >= oldest_read);
            }
            self.learned_users
                .retain(|_, counts| counts.epoch >= oldest_read);
        }
        let codes_since = since(keep.failed_codes);
        self.failed_codes.retain(|_, codes| {
            while codes.front().is_some_and(|(at, _)| *at < codes_since) {
                codes.pop_front();
            }
            !codes.is_empty()
        });
        let challenges_since = since(keep.challenges);
        let owners = &mut self.challenge_owners;
        let by_attempt = &mut self.challenge_of_attempt;
        self.challenges.retain(|_, challenges| {
            challenges.retain(|c| {
                let kept = c.issued_at >= challenges_since;
                if !kept {
                    owners.remove(&c.id);
                    by_attempt.remove(&c.attempt_id);
                }
                kept
            });
            !challenges.is_empty()
        });
        let decisions_since = since(keep.decisions);
        self.awaiting_mfa
            .retain(|_, waiting| waiting.decided_at >= decisions_since);
    }
}

/// Every operation is done when called: its future is ready at once.
impl RiskState for MemoryState {
    type Error = Infallible;

    async fn user_facts(&mut self, query: &HistoryQuery<'_>) -> Outcome<Self, UserFacts> {
        self.forget_history_before(query.user, query.at, query.window);
        Ok(MemoryState::user_facts(self, query.user, query.login))
    }

    async fn global(&mut self, login: &Features, at: DateTime<Utc>) -> Outcome<Self, GlobalCounts> {
        Ok(MemoryState::global(self, login, at))
    }

    async fn velocity(&mut self, query: &VelocityQuery<'_>) -> Outcome<Self, Velocity> {
        Ok(MemoryState::velocity(
            self,
            query.account,
            query.ip,
            query.at,
            query.account_window,
            query.ip_window,
        ))
    }

    /// As `RiskStore::code_history` reads it.
    async fn code_history(
        &mut self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Outcome<Self, CodeHistory> {
        let hour_ago = now - chrono::Duration::hours(1);
        let day_ago = now - chrono::Duration::hours(24);
        let challenges = self.challenges.get(&user);
        let issued = || challenges.into_iter().flatten();
        // Only the newest challenge can be pending: issuing one supersedes the others.
        let newest = issued().max_by_key(|c| c.issued_at);
        let mut issued_last_hour: Vec<DateTime<Utc>> = issued()
            .map(|c| c.issued_at)
            .filter(|at| *at > hour_ago)
            .collect();
        issued_last_hour.sort_unstable();
        let mut failed_codes_last_day: Vec<DateTime<Utc>> = self
            .failed_codes
            .get(&user)
            .into_iter()
            .flatten()
            .map(|(at, _)| *at)
            .filter(|at| *at > day_ago)
            .collect();
        failed_codes_last_day.sort_unstable();
        Ok(CodeHistory {
            issued_last_hour,
            last_issued_at: newest.map(|c| c.issued_at),
            pending: newest
                .filter(|c| c.closed_at.is_none() && c.expires_at > now)
                .map(|c| PendingCode {
                    challenge_id: c.id,
                    expires_at: c.expires_at,
                    device: c.device.clone(),
                }),
            failed_codes_last_day,
        })
    }

    /// As `RiskStore::record` stores it.
    async fn record(&mut self, decided: &Decided<'_>) -> Outcome<Self> {
        let effects = decided.effects;
        if let Some(Failure { account, ip }) = &effects.failure {
            self.record_failure(account.clone(), ip.clone(), decided.occurred_at);
        }
        if let Some(user) = decided.user_id {
            match effects.learning {
                Learning::Now => self.learn(
                    user,
                    Some(decided.features),
                    decided.global,
                    decided.occurred_at,
                ),
                Learning::AfterMfa => {
                    self.awaiting_mfa.insert(
                        decided.attempt_id,
                        AwaitingMfa {
                            user,
                            features: Some(decided.features.clone()),
                            global: decided.global.clone(),
                            at: decided.occurred_at,
                            decided_at: decided.event.occurred_at,
                        },
                    );
                }
                Learning::Never => {}
            }
        }
        if let Some(issued) = &effects.issued_challenge {
            self.challenges
                .entry(issued.user_id)
                .or_default()
                .push_back(Challenge {
                    id: issued.challenge_id,
                    attempt_id: decided.attempt_id,
                    issued_at: issued.issued_at,
                    expires_at: issued.expires_at,
                    closed_at: None,
                    device: issued.device.clone(),
                });
            self.challenge_owners
                .insert(issued.challenge_id, issued.user_id);
            self.challenge_of_attempt
                .insert(decided.attempt_id, issued.challenge_id);
        }
        Ok(())
    }

    /// The login is learned at its own time, whenever the code was passed.
    async fn learn_after_mfa(&mut self, attempt_id: AttemptId, _: DateTime<Utc>) -> Outcome<Self> {
        if let Some(waiting) = self.awaiting_mfa.remove(&attempt_id) {
            // As `RiskStore::learn_after_mfa`: a code passed from a reported network clears it.
            if let (Some(network), Some(reported)) = (
                waiting.features.as_ref().and_then(|f| f.get(Level::Prefix)),
                self.reported.get_mut(&waiting.user),
            ) {
                reported.remove(&(Level::Prefix, network.to_owned()));
            }
            self.learn(
                waiting.user,
                waiting.features.as_ref(),
                &waiting.global,
                waiting.at,
            );
        }
        Ok(())
    }

    /// By its id if replay issued it, else by the attempt it was issued for (a live log's
    /// events name the live worker's ids).
    async fn close_challenge(&mut self, closed: &ClosedChallenge) -> Outcome<Self> {
        let id = if self.challenge_owners.contains_key(&closed.challenge) {
            closed.challenge
        } else if let Some(id) = self.challenge_of_attempt.get(&closed.attempt_id) {
            *id
        } else {
            return Ok(());
        };
        let at = closed.at;
        let user = self.challenge_owners.get(&id);
        let challenge = user
            .and_then(|user| self.challenges.get_mut(user))
            .and_then(|challenges| challenges.iter_mut().find(|c| c.id == id));
        if let Some(challenge) = challenge {
            challenge.closed_at.get_or_insert(at);
        }
        Ok(())
    }

    /// Each event counts once, as the live worker's table keys them by event id.
    async fn record_wrong_code(&mut self, code: WrongCode) -> Outcome<Self> {
        let codes = self.failed_codes.entry(code.user).or_default();
        if !codes.iter().any(|(_, id)| *id == code.event_id) {
            codes.push_back((code.at, code.event_id));
        }
        Ok(())
    }

    async fn forget_history(&mut self, user: UserId) -> Outcome<Self> {
        self.forget_user(user);
        Ok(())
    }

    async fn close_challenges_of(&mut self, user: UserId, at: DateTime<Utc>) -> Outcome<Self> {
        for challenge in self.challenges.get_mut(&user).into_iter().flatten() {
            challenge.closed_at.get_or_insert(at);
        }
        Ok(())
    }

    /// As `RiskStore::delete_user` deletes it (the global counts keep their logins).
    async fn delete_user(&mut self, user: UserId) -> Outcome<Self> {
        self.histories.remove(&user);
        self.learned_users.remove(&user);
        self.awaiting_mfa.retain(|_, waiting| waiting.user != user);
        for challenge in self.challenges.remove(&user).into_iter().flatten() {
            self.challenge_owners.remove(&challenge.id);
            self.challenge_of_attempt.remove(&challenge.attempt_id);
        }
        self.failed_codes.remove(&user);
        self.reported.remove(&user);
        self.password_change_required.remove(&user);
        let account = AccountKey(user.to_string());
        self.failures_by_account.remove(&account);
        self.failures_by_ip.retain(|_, failures| {
            failures.retain(|(_, failed)| *failed != account);
            !failures.is_empty()
        });
        Ok(())
    }

    /// As `RiskStore::record_reported`.
    async fn record_reported(&mut self, reported: &ReportedLogin) -> Outcome<Self> {
        self.awaiting_mfa.remove(&reported.attempt_id);
        let kept = self.reported.entry(reported.user).or_default();
        if let Some(network) = &reported.network {
            kept.insert((Level::Prefix, network.clone()));
        }
        if let Some(device) = &reported.device {
            kept.insert((Level::Device, device.clone()));
        }
        Ok(())
    }

    /// As `RiskStore::require_password_change`: the first report is kept.
    async fn require_password_change(
        &mut self,
        required: &PasswordChangeRequired,
    ) -> Outcome<Self> {
        self.password_change_required
            .entry(required.user)
            .or_insert(*required);
        Ok(())
    }

    async fn password_changed(&mut self, user: UserId) -> Outcome<Self> {
        self.password_change_required.remove(&user);
        Ok(())
    }

    async fn company_policy(
        &mut self,
        company: &CompanyId,
    ) -> Outcome<Self, Option<CompanyPolicy>> {
        Ok(self.company_policies.get(company).cloned())
    }

    /// As `RiskStore::record_company_policy`: the highest version wins.
    async fn record_company_policy(&mut self, changed: &RiskPolicyChanged) -> Outcome<Self> {
        let kept = self.company_policies.get(&changed.company_id);
        if kept.is_none_or(|kept| kept.version < changed.version) {
            self.company_policies.insert(
                changed.company_id.clone(),
                CompanyPolicy {
                    version: changed.version,
                    policy: changed.policy.clone(),
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::features::Location;

    fn login(device: &str, ip: &str) -> Features {
        Features::from_values([
            (Level::Device, device.to_owned()),
            (Level::Ip, ip.to_owned()),
        ])
    }

    #[test]
    fn a_reported_login_marks_its_network_and_device_and_is_never_learned() {
        use crate::state::ReportedLogin;
        use std::future::Future;
        let user = UserId::new();
        let attempt_id = AttemptId::new();
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let mut state = MemoryState::default();
        state.awaiting_mfa.insert(
            attempt_id,
            AwaitingMfa {
                user,
                features: Some(login("id:attacker", "203.0.113.66")),
                global: login("id:attacker", "203.0.113.66"),
                at,
                decided_at: at,
            },
        );
        let reported = ReportedLogin {
            user,
            attempt_id,
            network: Some("203.0.113.0/24".into()),
            device: Some("id:attacker".into()),
            at,
        };
        {
            let mut run = std::pin::pin!(async {
                state.record_reported(&reported).await.unwrap();
                state.record_reported(&reported).await.unwrap();
                state.learn_after_mfa(attempt_id, at).await.unwrap();
            });
            assert!(run
                .as_mut()
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
                .is_ready());
        }
        assert!(
            state.histories.is_empty(),
            "a reported login is not learned"
        );
        let from = |device: &str, prefix: &str| {
            Features::from_values([
                (Level::Device, device.to_owned()),
                (Level::Prefix, prefix.to_owned()),
            ])
        };
        let facts = |features: &Features| state.user_facts(user, features).reported;
        assert_eq!(
            facts(&from("id:attacker", "203.0.113.0/24")),
            Reported {
                network: true,
                device: true
            }
        );
        assert_eq!(
            facts(&from("id:laptop", "203.0.113.0/24")),
            Reported {
                network: true,
                device: false
            }
        );
        assert_eq!(
            facts(&from("id:laptop", "198.51.100.0/24")),
            Reported::default()
        );
        // Another user's logins are not touched.
        assert_eq!(
            state
                .user_facts(UserId::new(), &from("id:attacker", "203.0.113.0/24"))
                .reported,
            Reported::default()
        );
    }

    #[test]
    fn velocity_counts_the_windows_before_the_login() {
        let t = |minutes: i64| DateTime::from_timestamp(1_790_000_000 + minutes * 60, 0).unwrap();
        let mut state = MemoryState::default();
        let alice = AccountKey("alice".into());
        let bob = AccountKey("bob".into());
        for (minute, account) in [(0, &alice), (10, &alice), (20, &bob), (30, &alice)] {
            state.record_failure(account.clone(), "203.0.113.9".into(), t(minute));
        }
        let (quarter, hour) = (Duration::from_secs(15 * 60), Duration::from_secs(3600));
        let v = state.velocity(Some(&alice), "203.0.113.9", t(31), quarter, hour);
        // Alice's 15 minutes before minute 31 hold her failure at minute 30 only.
        assert_eq!(v.account_failures, 1);
        assert_eq!((v.ip_failures, v.ip_failed_accounts), (4, 2));
        // The login's own instant is not counted, nor is another address.
        let v = state.velocity(Some(&alice), "203.0.113.9", t(30), quarter, hour);
        assert_eq!((v.account_failures, v.ip_failures), (0, 3));
        let v = state.velocity(Some(&alice), "198.51.100.1", t(31), quarter, hour);
        assert_eq!((v.ip_failures, v.ip_failed_accounts), (0, 0));
        // An hour on, the first failure has left the address's window.
        let v = state.velocity(None, "203.0.113.9", t(61), quarter, hour);
        assert_eq!((v.account_failures, v.ip_failures), (0, 3));
        state.forget_failures_before(t(120), hour);
        assert!(state.failures_by_ip.is_empty() && state.failures_by_account.is_empty());
    }

    #[test]
    fn the_kept_counts_equal_a_count_over_the_entries_as_logins_come_and_go() {
        let user = UserId::new();
        let day = |d: i64| DateTime::from_timestamp(1_790_000_000 + d * 86_400, 0).unwrap();
        let window = Duration::from_secs(10 * 86_400);
        let mut state = MemoryState::default();
        let logins = [
            login("a", "1.1.1.1"),
            login("a", "2.2.2.2"),
            login("b", "1.1.1.1").with_location(Some(Location {
                lat: 1.0,
                lon: 2.0,
                accuracy_km: 5.0,
            })),
            login("a", "1.1.1.1"),
        ];
        for (i, features) in logins.iter().enumerate() {
            state.learn(user, Some(features), features, day(i as i64 * 4));
        }
        for now in [day(5), day(13), day(17), day(30)] {
            state.forget_history_before(user, now, window);
            let entries: Vec<HistoryEntry> = state.histories[&user].entries.clone();
            for probe in &logins {
                assert_eq!(
                    state.user_facts(user, probe),
                    UserFacts::from_history(&entries, probe),
                    "at {now}"
                );
            }
        }
        assert_eq!(state.user_facts(user, &logins[0]).counts.logins, 0);
        assert!(state.histories[&user]
            .value_counts
            .iter()
            .all(HashMap::is_empty));
    }
}
