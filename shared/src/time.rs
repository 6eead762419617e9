//! Time arithmetic that cannot panic. Settings arrive as `std::time::Duration` (seconds from
//! the environment), while events carry `chrono` times; converting one to the other and
//! adding or subtracting it overflows for absurd settings (`MFA_RISK_HISTORY_DAYS=10^12`),
//! and chrono's operators panic on overflow. These saturate at the ends of time instead, which
//! is what every caller means: "a window this long reaches back to the beginning".

use chrono::{DateTime, Duration, Utc};

/// `span` as a chrono duration, or the longest one chrono has.
pub fn chrono_span(span: std::time::Duration) -> Duration {
    Duration::from_std(span).unwrap_or(Duration::MAX)
}

/// `at - span`, or the earliest time chrono has when that is before it.
pub fn saturating_sub(at: DateTime<Utc>, span: std::time::Duration) -> DateTime<Utc> {
    at.checked_sub_signed(chrono_span(span))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `at + span`, or the latest time chrono has when that is after it.
pub fn saturating_add(at: DateTime<Utc>, span: std::time::Duration) -> DateTime<Utc> {
    at.checked_add_signed(chrono_span(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_spans_are_exact() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(
            saturating_sub(at, hour).to_rfc3339(),
            "2026-12-01T09:00:00+00:00"
        );
        assert_eq!(
            saturating_add(at, hour).to_rfc3339(),
            "2026-12-01T11:00:00+00:00"
        );
        assert_eq!(chrono_span(hour), Duration::hours(1));
    }

    #[test]
    fn absurd_spans_saturate_instead_of_panicking() {
        let at = Utc::now();
        let forever = std::time::Duration::from_secs(u64::MAX);
        assert_eq!(chrono_span(forever), Duration::MAX);
        assert_eq!(saturating_sub(at, forever), DateTime::<Utc>::MIN_UTC);
        assert_eq!(saturating_add(at, forever), DateTime::<Utc>::MAX_UTC);
        // Large enough to overflow the subtraction, small enough to convert.
        let ten_thousand_centuries = std::time::Duration::from_secs(400_000 * 365 * 86_400);
        assert_eq!(
            saturating_sub(at, ten_thousand_centuries),
            DateTime::<Utc>::MIN_UTC
        );
    }
}
