//! The headline figures of a whole benchmark run (issue 12's keys, no others), computed from
//! the measured parts; and the choice of the sustained rate among the closed-loop levels.

use serde::Serialize;

use crate::load::Percentiles;

/// One line of JSON, with exactly the keys issue 12 lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    /// Sustained password logins per second over the raw argon2id rate.
    pub ratio: f64,
    /// One argon2id verification with login-intake's cost, on one thread, ms.
    pub argon2_ms: f64,
    /// At half the sustained rate: a password login's decision p50, minus `argon2_ms`.
    pub p50_over_argon2_ms: f64,
    pub p99_over_argon2_ms: f64,
    pub sso_p50_ms: f64,
    pub sso_p99_ms: f64,
    /// The risk worker alone, one replica: `LoginAttempted` consumed, decided and published
    /// per second.
    pub risk_worker_events_per_s: f64,
    /// The largest resident memory of the services, idle, MiB.
    pub idle_rss_mb_max: f64,
    /// The largest peak resident memory (VmHWM) of the services at the end, MiB.
    pub peak_rss_mb_max: f64,
    /// Logins without a decision.
    pub lost: u64,
}

/// What the headline is computed from.
#[derive(Debug, Clone)]
pub struct Measured<'a> {
    pub ceiling_per_s: f64,
    pub argon2_ms: f64,
    pub sustained_per_s: f64,
    /// Password logins' decision latency at half the sustained rate.
    pub half_load: &'a Percentiles,
    pub sso: &'a Percentiles,
    pub risk_worker_events_per_s: f64,
    pub idle_rss_mib: &'a [f64],
    pub peak_rss_mib: &'a [f64],
    pub lost: u64,
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    if value.is_finite() {
        (value * scale).round() / scale
    } else {
        0.0
    }
}

fn largest(values: &[f64]) -> f64 {
    values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

impl Headline {
    pub fn of(measured: &Measured<'_>) -> Self {
        let ratio = if measured.ceiling_per_s > 0.0 {
            measured.sustained_per_s / measured.ceiling_per_s
        } else {
            0.0
        };
        Self {
            ratio: round(ratio, 3),
            argon2_ms: round(measured.argon2_ms, 2),
            p50_over_argon2_ms: round(measured.half_load.p50 - measured.argon2_ms, 2),
            p99_over_argon2_ms: round(measured.half_load.p99 - measured.argon2_ms, 2),
            sso_p50_ms: round(measured.sso.p50, 2),
            sso_p99_ms: round(measured.sso.p99, 2),
            risk_worker_events_per_s: round(measured.risk_worker_events_per_s, 1),
            idle_rss_mb_max: round(largest(measured.idle_rss_mib), 1),
            peak_rss_mb_max: round(largest(measured.peak_rss_mib), 1),
            lost: measured.lost,
        }
    }

    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// The closed loop's levels, `(concurrency, password logins per second)`: the highest rate,
/// and the smallest concurrency that reached 95% of it (where it saturates).
pub fn saturation(levels: &[(usize, f64)]) -> Option<(usize, f64)> {
    let best = levels
        .iter()
        .map(|(_, rate)| *rate)
        .filter(|rate| rate.is_finite())
        .fold(None, |best: Option<f64>, rate| {
            Some(best.map_or(rate, |b| b.max(rate)))
        })?;
    let saturating = levels
        .iter()
        .filter(|(_, rate)| *rate >= 0.95 * best)
        .map(|(concurrency, _)| *concurrency)
        .min()?;
    Some((saturating, best))
}

/// Whether a closed loop that went from `previous` to `latest` logins a second has stopped
/// growing (less than 5% more): one more level after that shows the plateau.
pub fn stopped_growing(previous: f64, latest: f64) -> bool {
    latest < previous * 1.05
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percentiles(p50: f64, p99: f64) -> Percentiles {
        Percentiles {
            count: 100,
            p50,
            p90: (p50 + p99) / 2.0,
            p99,
            p999: p99,
            max: p99,
        }
    }

    #[test]
    fn the_headline_subtracts_argon2_and_takes_the_largest_service() {
        let (half, sso) = (percentiles(31.5, 60.25), percentiles(12.0, 30.0));
        let headline = Headline::of(&Measured {
            ceiling_per_s: 80.0,
            argon2_ms: 24.0,
            sustained_per_s: 60.0,
            half_load: &half,
            sso: &sso,
            risk_worker_events_per_s: 812.34,
            idle_rss_mib: &[40.0, 85.5, 12.0],
            peak_rss_mib: &[120.0, 90.0, f64::NAN],
            lost: 2,
        });
        assert_eq!(
            headline,
            Headline {
                ratio: 0.75,
                argon2_ms: 24.0,
                p50_over_argon2_ms: 7.5,
                p99_over_argon2_ms: 36.25,
                sso_p50_ms: 12.0,
                sso_p99_ms: 30.0,
                risk_worker_events_per_s: 812.3,
                idle_rss_mb_max: 85.5,
                peak_rss_mb_max: 120.0,
                lost: 2,
            }
        );
    }

    #[test]
    fn the_json_line_has_exactly_the_issues_keys() {
        let zero = percentiles(0.0, 0.0);
        let line = Headline::of(&Measured {
            ceiling_per_s: 0.0,
            argon2_ms: 0.0,
            sustained_per_s: 0.0,
            half_load: &zero,
            sso: &zero,
            risk_worker_events_per_s: 0.0,
            idle_rss_mib: &[],
            peak_rss_mib: &[],
            lost: 0,
        })
        .json_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "argon2_ms",
                "idle_rss_mb_max",
                "lost",
                "p50_over_argon2_ms",
                "p99_over_argon2_ms",
                "peak_rss_mb_max",
                "ratio",
                "risk_worker_events_per_s",
                "sso_p50_ms",
                "sso_p99_ms"
            ]
        );
        // No ceiling measured: a ratio of 0, not a division by zero.
        assert_eq!(value["ratio"], 0.0);
    }

    #[test]
    fn saturation_is_the_smallest_concurrency_within_five_percent_of_the_best() {
        let levels = [(1, 20.0), (2, 38.0), (4, 56.0), (8, 58.0), (16, 57.0)];
        assert_eq!(saturation(&levels), Some((4, 58.0)));
        assert_eq!(saturation(&[]), None);
        assert_eq!(saturation(&[(3, 10.0)]), Some((3, 10.0)));
        assert!(stopped_growing(55.0, 57.0));
        assert!(!stopped_growing(38.0, 55.0));
    }
}
