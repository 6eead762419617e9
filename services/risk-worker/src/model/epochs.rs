//! The time the global counts cover. They count the approved logins of the last one to two
//! epochs of 90 days (the login's own epoch and the one before), so a value that no login has
//! had for 90 to 180 days no longer counts and housekeeping deletes it: the counts are kept
//! by keyed hash, but a keyed hash of an address is still personal data, and it is kept no
//! longer than the model's 180 days of history need (issue 14).
//!
//! Epochs are fixed spans of event time, not a sliding window, so that each value needs only
//! two counters and a login's counts are a pure function of the logins before it: the live
//! worker (`crate::store`, in SQL) and replay (`super::state::MemoryState`) apply the same
//! rules below and decide alike.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// The length of an epoch: half the model's default history window.
pub const GLOBAL_EPOCH: Duration = Duration::from_secs(90 * 24 * 3600);

const EPOCH_SECS: i64 = GLOBAL_EPOCH.as_secs() as i64;

/// An epoch, numbered from the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(i64);

impl Epoch {
    pub fn of(at: DateTime<Utc>) -> Self {
        Self(at.timestamp().div_euclid(EPOCH_SECS))
    }

    pub fn previous(self) -> Self {
        Self(self.0 - 1)
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// When it begins: how PostgreSQL keeps it (readable, and pruned by time like the rest).
    pub fn start(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.0.saturating_mul(EPOCH_SECS), 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// One value's logins: in the newest epoch it was seen in (`count`), and in the epoch before
/// that (`previous`). A row of `risk_global_values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueCounts {
    pub epoch: Epoch,
    pub count: u64,
    pub previous: u64,
}

/// How a learned login changed the epochs a value is seen in: what the per-epoch tallies of
/// distinct values (`risk_global_levels`) gain and lose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeenChange {
    /// The value is now seen in this epoch, and was not before.
    pub entered: Option<Epoch>,
    /// It was last seen in this epoch before: it no longer counts there as a value of its
    /// own (it counts in the newer one, and windows holding both count it once).
    pub left: Option<Epoch>,
}

impl ValueCounts {
    /// A value's first login, in `at`.
    pub fn first(at: Epoch) -> (Self, SeenChange) {
        let counts = Self {
            epoch: at,
            count: 1,
            previous: 0,
        };
        let change = SeenChange {
            entered: Some(at),
            left: None,
        };
        (counts, change)
    }

    /// One more login with this value, in `at`. Logins arrive nearly in time order; one that
    /// is older than the value's newest epoch counts in the epoch before it, or nowhere.
    /// `crate::store::learn_global` does the same in SQL.
    pub fn learn(&mut self, at: Epoch) -> SeenChange {
        let mut change = SeenChange::default();
        if self.epoch == at {
            self.count += 1;
        } else if self.epoch < at {
            // What it counted in the epoch just before `at` stays; anything older is gone.
            self.previous = if self.epoch == at.previous() {
                change.left = Some(self.epoch);
                self.count
            } else {
                // The epoch it leaves is pruned before any window reads it again.
                0
            };
            self.epoch = at;
            self.count = 1;
            change.entered = Some(at);
        } else if self.epoch == at.next() {
            self.previous += 1;
        }
        change
    }

    /// Its logins in the window a login of epoch `at` reads: `at` and the epoch before.
    pub fn count_at(&self, at: Epoch) -> u64 {
        if self.epoch == at {
            self.count + self.previous
        } else if self.epoch == at.previous() {
            self.count
        } else if self.epoch == at.next() {
            // Read for a login older than the newest one learned: its own epoch only.
            self.previous
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(n * 86_400, 0).single().unwrap()
    }

    #[test]
    fn epochs_are_ninety_days_from_the_unix_epoch() {
        assert_eq!(Epoch::of(day(0)), Epoch::of(day(89)));
        assert_eq!(Epoch::of(day(90)), Epoch::of(day(89)).next());
        assert_eq!(Epoch::of(day(90)).start(), day(90));
        assert_eq!(Epoch::of(day(-1)), Epoch::of(day(0)).previous());
    }

    #[test]
    fn a_value_counts_in_its_epoch_and_the_next_then_not_at_all() {
        let e = Epoch::of(day(0));
        let (mut value, first) = ValueCounts::first(e);
        assert_eq!(first.entered, Some(e));
        assert_eq!(value.learn(e), SeenChange::default());
        assert_eq!(value.count_at(e), 2);
        assert_eq!(
            value.count_at(e.next()),
            2,
            "still in the window of the next epoch"
        );
        assert_eq!(
            value.count_at(e.next().next()),
            0,
            "90 to 180 days later: gone"
        );
    }

    #[test]
    fn moving_to_the_next_epoch_keeps_the_previous_count() {
        let e = Epoch::of(day(0));
        let (mut value, _) = ValueCounts::first(e);
        value.learn(e);
        let change = value.learn(e.next());
        assert_eq!(
            change,
            SeenChange {
                entered: Some(e.next()),
                left: Some(e),
            }
        );
        assert_eq!(value.count_at(e.next()), 3);
        assert_eq!(value.count_at(e.next().next()), 1);
    }

    #[test]
    fn a_value_seen_again_after_a_gap_starts_over() {
        let e = Epoch::of(day(0));
        let (mut value, _) = ValueCounts::first(e);
        let later = e.next().next().next();
        let change = value.learn(later);
        assert_eq!(
            change,
            SeenChange {
                entered: Some(later),
                left: None,
            }
        );
        assert_eq!(value.count_at(later), 1);
    }

    #[test]
    fn a_late_login_of_the_epoch_before_counts_there() {
        let e = Epoch::of(day(0));
        let (mut value, _) = ValueCounts::first(e.next());
        assert_eq!(value.learn(e), SeenChange::default());
        assert_eq!(value.count_at(e.next()), 2);
        assert_eq!(value.count_at(e), 1);
        // Older still: it counts in no window the value is read in any more.
        assert_eq!(value.learn(e.previous()), SeenChange::default());
        assert_eq!(value.count_at(e.next()), 2);
    }
}
