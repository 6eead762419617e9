//! What the model remembers, in memory: for `replay` (and tests). The live worker keeps the
//! same state in PostgreSQL (`crate::store`), with the same rules, so both decide alike:
//! - a user's history is their approved logins of the last `history_window` before the
//!   login being decided;
//! - global counts are of every approved login ever learned: per level and value, distinct
//!   values per level, logins, and users learned at least once;
//! - failures are wrong passwords (and unknown accounts), counted in the windows before the
//!   login being decided, not including it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::UserId;

use super::assess::{HistoryEntry, Velocity};
use super::features::{Features, Level};
use super::freeman::GlobalCounts;

/// The account a failure counts against: the user, or for an unknown email a key of its own
/// (each attempt on an unknown account counts as one more account tried).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey(pub String);

#[derive(Debug, Default)]
pub struct MemoryState {
    histories: HashMap<UserId, Vec<HistoryEntry>>,
    values: HashMap<Level, HashMap<String, u64>>,
    distinct: BTreeMap<Level, u64>,
    logins: u64,
    learned_users: HashSet<UserId>,
    failures_by_account: HashMap<AccountKey, VecDeque<DateTime<Utc>>>,
    failures_by_ip: HashMap<String, VecDeque<(DateTime<Utc>, AccountKey)>>,
}

impl MemoryState {
    /// Forgets the user's logins older than `window` before `at`: they can never count
    /// again, as logins are decided in time order.
    pub fn forget_history_before(&mut self, user: UserId, at: DateTime<Utc>, window: Duration) {
        let since = at - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        if let Some(entries) = self.histories.get_mut(&user) {
            let expired = entries.partition_point(|e| e.at < since);
            entries.drain(..expired);
        }
    }

    /// The user's approved logins up to `at` (call `forget_history_before` first).
    pub fn history(&self, user: UserId, at: DateTime<Utc>) -> &[HistoryEntry] {
        match self.histories.get(&user) {
            Some(entries) => &entries[..entries.partition_point(|e| e.at <= at)],
            None => &[],
        }
    }

    pub fn global(&self, login: &Features) -> GlobalCounts {
        let mut global = GlobalCounts {
            distinct: self.distinct.clone(),
            users: self.learned_users.len() as u64,
            ..GlobalCounts::default()
        };
        global.counts.logins = self.logins;
        for (level, value) in login.values() {
            if let Some(count) = self.values.get(&level).and_then(|v| v.get(value)) {
                global.counts.matching.insert(level, *count);
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
        let since = |window: Duration| {
            at - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)
        };
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
        let since = at - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
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

    /// An approved login joins the user's history and the global counts.
    pub fn learn(&mut self, user: UserId, features: &Features, at: DateTime<Utc>) {
        let entries = self.histories.entry(user).or_default();
        let position = entries.partition_point(|e| e.at <= at);
        entries.insert(
            position,
            HistoryEntry {
                at,
                features: features.clone(),
            },
        );
        self.learned_users.insert(user);
        self.logins += 1;
        for (level, value) in features.values() {
            let counts = self.values.entry(level).or_default();
            match counts.get_mut(value) {
                Some(count) => *count += 1,
                None => {
                    counts.insert(value.to_owned(), 1);
                    *self.distinct.entry(level).or_default() += 1;
                }
            }
        }
    }

    /// After an admin reset: the user's next login has no history.
    pub fn forget_user(&mut self, user: UserId) {
        self.histories.remove(&user);
    }
}
