//! The code rules, as a plain function of the challenge, the time and whether the code
//! matched: no clock and no IO, so every branch is tested directly.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    Pending,
    Used,
    Locked,
    Superseded,
    /// The account was changed while the code was pending (password changed, disabled).
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeState {
    pub status: ChallengeStatus,
    pub expires_at: DateTime<Utc>,
    pub failed_attempts: u32,
    /// Wrong codes on all of the account's challenges in the last 24 hours.
    pub account_failed_today: u32,
}

/// How many wrong codes a challenge, and an account per day, may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLimits {
    pub per_challenge: u32,
    pub per_account_per_day: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    /// Wrong code; the challenge still takes `attempts_remaining` more.
    WrongCode {
        attempts_remaining: u32,
    },
    /// This wrong code was the last one allowed: the challenge is now locked.
    LockedNow,
    /// Locked earlier: even the right code is refused.
    Locked,
    Expired,
    AlreadyUsed,
    Superseded,
    Revoked,
}

/// Judges one try. `code_matches` is only asked when the challenge can still be passed, so a
/// dead challenge costs no hashing (and answers the same whatever the code).
pub fn judge(
    state: &ChallengeState,
    now: DateTime<Utc>,
    limits: CodeLimits,
    code_matches: impl FnOnce() -> bool,
) -> Verdict {
    let max_attempts = limits.per_challenge;
    match state.status {
        ChallengeStatus::Used => return Verdict::AlreadyUsed,
        ChallengeStatus::Superseded => return Verdict::Superseded,
        ChallengeStatus::Revoked => return Verdict::Revoked,
        ChallengeStatus::Locked => return Verdict::Locked,
        ChallengeStatus::Pending => {}
    }
    // The account's daily ceiling bounds an attacker's guesses across all its challenges.
    if state.failed_attempts >= max_attempts
        || state.account_failed_today >= limits.per_account_per_day
    {
        return Verdict::Locked;
    }
    if now >= state.expires_at {
        return Verdict::Expired;
    }
    if code_matches() {
        return Verdict::Approved;
    }
    let failed = state.failed_attempts + 1;
    if failed >= max_attempts {
        Verdict::LockedNow
    } else {
        Verdict::WrongCode {
            attempts_remaining: max_attempts - failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: CodeLimits = CodeLimits {
        per_challenge: 5,
        per_account_per_day: 100,
    };

    fn pending(failed_attempts: u32) -> (ChallengeState, DateTime<Utc>) {
        let now = Utc::now();
        (
            ChallengeState {
                status: ChallengeStatus::Pending,
                expires_at: now + chrono::Duration::minutes(10),
                failed_attempts,
                account_failed_today: failed_attempts,
            },
            now,
        )
    }

    #[test]
    fn the_right_code_in_time_passes() {
        let (state, now) = pending(0);
        assert_eq!(judge(&state, now, LIMITS, || true), Verdict::Approved);
    }

    #[test]
    fn wrong_codes_count_down_then_lock() {
        let (state, now) = pending(0);
        assert_eq!(
            judge(&state, now, LIMITS, || false),
            Verdict::WrongCode {
                attempts_remaining: 4
            }
        );
        let (state, now) = pending(3);
        assert_eq!(
            judge(&state, now, LIMITS, || false),
            Verdict::WrongCode {
                attempts_remaining: 1
            }
        );
        let (state, now) = pending(4);
        assert_eq!(judge(&state, now, LIMITS, || false), Verdict::LockedNow);
    }

    #[test]
    fn dead_challenges_refuse_even_the_right_code() {
        let (mut state, now) = pending(0);
        for (status, verdict) in [
            (ChallengeStatus::Used, Verdict::AlreadyUsed),
            (ChallengeStatus::Locked, Verdict::Locked),
            (ChallengeStatus::Superseded, Verdict::Superseded),
            (ChallengeStatus::Revoked, Verdict::Revoked),
        ] {
            state.status = status;
            assert_eq!(
                judge(&state, now, LIMITS, || panic!("must not hash")),
                verdict
            );
        }
    }

    #[test]
    fn expiry_is_inclusive() {
        let (state, _) = pending(0);
        assert_eq!(
            judge(&state, state.expires_at, LIMITS, || true),
            Verdict::Expired
        );
        let just_before = state.expires_at - chrono::Duration::milliseconds(1);
        assert_eq!(
            judge(&state, just_before, LIMITS, || true),
            Verdict::Approved
        );
    }

    #[test]
    fn the_account_daily_ceiling_locks_every_challenge() {
        let (mut state, now) = pending(0);
        state.account_failed_today = 100;
        assert_eq!(
            judge(&state, now, LIMITS, || panic!("must not hash")),
            Verdict::Locked
        );
    }
}
