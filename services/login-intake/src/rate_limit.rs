//! Login rate limits: per end-user IP, per account + IP, per account, per API key. Checked
//! before any password work, and the same way for unknown emails (the account buckets are
//! keyed by a hash of the normalised email), so a `429` reveals nothing about the account.
//!
//! Each limit is a sliding window, estimated from two fixed windows: the hits of the current
//! window plus the previous window's, weighted by how much of it still overlaps the sliding
//! window. The counters live in PostgreSQL, so the limits hold across replicas.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use shared::domain::Email;
use sqlx::PgPool;
use uuid::Uuid;

/// At most `max` hits in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    /// `MAX/SECONDS`, e.g. `100/3600`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (max, seconds) = raw
            .split_once('/')
            .ok_or_else(|| format!("{raw:?} is not MAX/SECONDS"))?;
        let max: u32 = max
            .trim()
            .parse()
            .map_err(|_| format!("{max:?} is not a count"))?;
        let seconds: u64 = seconds
            .trim()
            .parse()
            .map_err(|_| format!("{seconds:?} is not a number of seconds"))?;
        if max == 0 || seconds == 0 {
            return Err("both MAX and SECONDS must be positive".into());
        }
        Ok(Self {
            max,
            window: Duration::from_secs(seconds),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub per_ip: RateLimit,
    pub per_account_and_ip: RateLimit,
    /// High enough that an attacker can't use it to lock the owner out, above the risk
    /// rules' 5 failures in 15 minutes, and low enough to stop password spraying.
    pub per_account: RateLimit,
    pub per_api_key: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        let limit = |max, seconds| RateLimit {
            max,
            window: Duration::from_secs(seconds),
        };
        Self {
            per_ip: limit(100, 60),
            per_account_and_ip: limit(30, 15 * 60),
            per_account: limit(100, 60 * 60),
            per_api_key: limit(10_000, 60),
        }
    }
}

/// The start of the fixed window that holds `now`.
pub fn window_start(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    now.duration_trunc(window).unwrap_or(now)
}

/// Whether a hit is allowed, given the hits counted so far (this one included) in the current
/// fixed window and in the previous one. `Err` holds the seconds to wait.
pub fn evaluate(
    limit: RateLimit,
    now: DateTime<Utc>,
    current_hits: u32,
    previous_hits: u32,
) -> Result<(), u64> {
    let start = window_start(now, limit.window);
    let window = limit.window.as_secs_f64();
    let elapsed = (now - start).to_std().unwrap_or_default().as_secs_f64();
    let overlap = 1.0 - elapsed / window;
    let estimate = f64::from(previous_hits) * overlap + f64::from(current_hits);
    if estimate <= f64::from(limit.max) {
        return Ok(());
    }
    // A hint, not a promise: by the end of the current fixed window the previous window's
    // hits no longer count (a client that keeps hitting keeps its own count high).
    Err(((window - elapsed).ceil() as u64).max(1))
}

/// The buckets one login counts against.
pub struct LoginBuckets {
    buckets: Vec<(String, RateLimit)>,
}

impl LoginBuckets {
    pub fn new(limits: &RateLimits, key_id: Uuid, ip: IpAddr, email: &Email) -> Self {
        let account = crate::intake::partition_key(None, email);
        Self {
            buckets: vec![
                (format!("key:{key_id}"), limits.per_api_key),
                (format!("ip:{ip}"), limits.per_ip),
                (
                    format!("account-ip:{account}:{ip}"),
                    limits.per_account_and_ip,
                ),
                (format!("account:{account}"), limits.per_account),
            ],
        }
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    pool: PgPool,
}

impl RateLimiter {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Counts the hit in every bucket (one round trip); `Err` holds the longest wait asked by
    /// a bucket over its limit.
    pub async fn hit(
        &self,
        buckets: &LoginBuckets,
        now: DateTime<Utc>,
    ) -> Result<Result<(), u64>, sqlx::Error> {
        let names: Vec<&str> = buckets
            .buckets
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let starts: Vec<DateTime<Utc>> = buckets
            .buckets
            .iter()
            .map(|(_, limit)| window_start(now, limit.window))
            .collect();
        let previous: Vec<DateTime<Utc>> = buckets
            .buckets
            .iter()
            .zip(&starts)
            .map(|((_, limit), start)| {
                *start - chrono::Duration::from_std(limit.window).unwrap_or_default()
            })
            .collect();
        let rows: Vec<(String, i32, i32)> = sqlx::query_as(
            "WITH hit AS (
                 INSERT INTO rate_limit_counters (bucket, window_start, hits)
                 SELECT bucket, window_start, 1 FROM UNNEST($1::text[], $2::timestamptz[]) AS t (bucket, window_start)
                 ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
                 RETURNING bucket, hits
             )
             SELECT hit.bucket, hit.hits, COALESCE(previous.hits, 0)
             FROM hit
             JOIN UNNEST($1::text[], $3::timestamptz[]) AS p (bucket, window_start) ON p.bucket = hit.bucket
             LEFT JOIN rate_limit_counters previous
               ON previous.bucket = p.bucket AND previous.window_start = p.window_start",
        )
        .bind(&names)
        .bind(&starts)
        .bind(&previous)
        .fetch_all(&self.pool)
        .await?;
        let mut wait = None;
        for (bucket, current, previous) in rows {
            let Some((_, limit)) = buckets.buckets.iter().find(|(name, _)| *name == bucket) else {
                continue;
            };
            let to_u32 = |n: i32| u32::try_from(n).unwrap_or(0);
            if let Err(seconds) = evaluate(*limit, now, to_u32(current), to_u32(previous)) {
                wait = Some(wait.map_or(seconds, |w: u64| w.max(seconds)));
            }
        }
        Ok(wait.map_or(Ok(()), Err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn per_minute(max: u32) -> RateLimit {
        RateLimit {
            max,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn parses_max_per_seconds() {
        assert_eq!(
            "100/3600".parse::<RateLimit>().unwrap(),
            RateLimit {
                max: 100,
                window: Duration::from_secs(3600)
            }
        );
        for raw in ["100", "0/60", "10/0", "x/60", "10/y"] {
            assert!(raw.parse::<RateLimit>().is_err(), "{raw:?}");
        }
    }

    #[test]
    fn allows_up_to_the_limit_within_one_window() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 30).unwrap();
        assert_eq!(evaluate(per_minute(5), now, 5, 0), Ok(()));
        assert_eq!(evaluate(per_minute(5), now, 6, 0), Err(30));
    }

    #[test]
    fn the_previous_window_weighs_by_its_overlap() {
        // 15 s into the window: the previous window still overlaps by 75%.
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 15).unwrap();
        // 4 * 0.75 + 2 = 5: allowed; 4 * 0.75 + 3 = 6: limited.
        assert_eq!(evaluate(per_minute(5), now, 2, 4), Ok(()));
        assert_eq!(evaluate(per_minute(5), now, 3, 4), Err(45));
        // Near the end of the window, the previous one barely counts.
        let late = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 57).unwrap();
        assert_eq!(evaluate(per_minute(5), late, 4, 10), Ok(()));
    }

    #[test]
    fn windows_are_aligned() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 34, 56).unwrap();
        assert_eq!(
            window_start(now, Duration::from_secs(3600)),
            Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
        );
    }
}
