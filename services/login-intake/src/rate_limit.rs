//! Login rate limits: per end-user IP, per account + IP, per account, per API key. Checked
//! before any password work, and the same way for unknown emails (the account buckets are
//! keyed by a hash of the normalised email), so a `429` reveals nothing about the account.
//!
//! Each limit is a sliding window, estimated from two fixed windows: the hits of the current
//! window plus the previous window's, weighted by how much of it still overlaps the sliding
//! window. The counters live in PostgreSQL, so the limits hold across replicas.

use shared::personal::PseudonymKey;
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

/// Which of the limits a bucket counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    PerIp,
    PerAccountAndIp,
    PerAccount,
    PerApiKey,
}

impl Limit {
    /// Its name in the `RateLimit-Policy` and `RateLimit` headers.
    pub fn policy(self) -> &'static str {
        match self {
            Limit::PerIp => "ip",
            Limit::PerAccountAndIp => "account_ip",
            Limit::PerAccount => "account",
            Limit::PerApiKey => "api_key",
        }
    }

    /// Its name as a metric label, after its setting (`MFA_RATE_LIMIT_PER_IP`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::PerIp => "per_ip",
            Limit::PerAccountAndIp => "per_account_and_ip",
            Limit::PerAccount => "per_account",
            Limit::PerApiKey => "per_api_key",
        }
    }
}

/// The start of the fixed window that holds `now`.
pub fn window_start(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    now.duration_trunc(shared::time::chrono_span(window))
        .unwrap_or(now)
}

/// Where one bucket stands for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub limit: RateLimit,
    /// Whether this request passes the bucket (and is counted in it).
    pub allowed: bool,
    /// Requests still allowed after this one (0 when refused).
    pub remaining: u32,
    /// Refused: the seconds until a request would pass, if no other is counted meanwhile
    /// (refused ones are not). Allowed: the seconds until the current window ends.
    pub seconds: u64,
}

/// Whether a request passes a bucket, given the hits counted before it in the current fixed
/// window and in the previous one. The sliding-window estimate is the current window's hits
/// plus the previous window's weighted by how much of it the sliding window still overlaps;
/// it falls as time passes, so the wait of a refused request is where it meets the limit.
pub fn evaluate(
    limit: RateLimit,
    now: DateTime<Utc>,
    current_hits: u32,
    previous_hits: u32,
) -> Quota {
    let start = window_start(now, limit.window);
    let window = limit.window.as_secs_f64();
    let elapsed = (now - start).to_std().unwrap_or_default().as_secs_f64();
    let max = f64::from(limit.max);
    let (current, previous) = (f64::from(current_hits), f64::from(previous_hits));
    let with_this = previous * (1.0 - elapsed / window) + current + 1.0;
    // Tolerance for the float arithmetic: a request at the announced second must pass.
    if with_this <= max + 1e-9 {
        return Quota {
            limit,
            allowed: true,
            remaining: (max - with_this).max(0.0).floor() as u32,
            seconds: (window - elapsed).ceil().max(1.0) as u64,
        };
    }
    let wait = if current + 1.0 <= max {
        // Within this window, once the previous window's share has shrunk enough.
        window * (1.0 - (max - current - 1.0) / previous) - elapsed
    } else {
        // Not before the next window, in which this window's hits weigh as the previous.
        let into_next = window * (1.0 - (max - 1.0) / current);
        (window - elapsed) + into_next.max(0.0)
    };
    Quota {
        limit,
        allowed: false,
        remaining: 0,
        seconds: (wait - 1e-9).ceil().max(1.0) as u64,
    }
}

/// The answer for a request over all its buckets: refused if any bucket refuses it.
#[derive(Debug, Clone, PartialEq)]
pub struct RateDecision {
    pub quotas: Vec<(Limit, Quota)>,
}

impl RateDecision {
    pub fn allowed(&self) -> bool {
        self.quotas.iter().all(|(_, quota)| quota.allowed)
    }

    /// Refused: the longest wait any refusing bucket asks for.
    pub fn retry_after(&self) -> Option<u64> {
        self.quotas
            .iter()
            .filter(|(_, quota)| !quota.allowed)
            .map(|(_, quota)| quota.seconds)
            .max()
    }

    /// Refused: the limit that asks for the longest wait (the one `Retry-After` is), the
    /// first of them on a tie.
    pub fn refused_by(&self) -> Option<Limit> {
        self.quotas
            .iter()
            .filter(|(_, quota)| !quota.allowed)
            .fold(
                None,
                |longest: Option<(Limit, u64)>, (limit, quota)| match longest {
                    Some((_, seconds)) if seconds >= quota.seconds => longest,
                    _ => Some((*limit, quota.seconds)),
                },
            )
            .map(|(limit, _)| limit)
    }

    /// The `RateLimit-Policy` and `RateLimit` headers (IETF draft-ietf-httpapi-ratelimit-
    /// headers): every policy, and the state of the one closest to refusing.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let policy = self
            .quotas
            .iter()
            .map(|(limit, quota)| {
                format!(
                    "\"{}\";q={};w={}",
                    limit.policy(),
                    quota.limit.max,
                    quota.limit.window.as_secs()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let tightest = self.quotas.iter().min_by_key(|(_, quota)| {
            (
                quota.allowed,
                quota.remaining,
                std::cmp::Reverse(quota.seconds),
            )
        });
        let mut headers = vec![("ratelimit-policy", policy)];
        if let Some((limit, quota)) = tightest {
            headers.push((
                "ratelimit",
                format!(
                    "\"{}\";r={};t={}",
                    limit.policy(),
                    quota.remaining,
                    quota.seconds
                ),
            ));
        }
        headers
    }
}

/// The address a limit counts: IPv4-mapped IPv6 as its IPv4 address (the same client), and an
/// IPv6 client by its /64, the smallest network a host is given (one host with a /64 must not
/// have 2^64 buckets).
pub fn ip_bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// The buckets one login counts against. The rows name the address and the account by keyed
/// hash (`pseudonyms`), never by value: a bucket outlives the user it counted.
pub struct LoginBuckets {
    buckets: Vec<(Limit, String, RateLimit)>,
}

impl LoginBuckets {
    pub fn new(
        limits: &RateLimits,
        key_id: Uuid,
        ip: IpAddr,
        email: &Email,
        pseudonyms: &PseudonymKey,
    ) -> Self {
        let account = pseudonyms.pseudonym("rate-limit-account", email.as_str());
        let ip = pseudonyms.pseudonym("rate-limit-ip", &ip_bucket(ip));
        Self {
            buckets: vec![
                (
                    Limit::PerApiKey,
                    format!("key:{key_id}"),
                    limits.per_api_key,
                ),
                (Limit::PerIp, format!("ip:{ip}"), limits.per_ip),
                (
                    Limit::PerAccountAndIp,
                    format!("account-ip:{account}:{ip}"),
                    limits.per_account_and_ip,
                ),
                (
                    Limit::PerAccount,
                    format!("account:{account}"),
                    limits.per_account,
                ),
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

    /// Decides a request over its buckets and counts it in every one, or in none when it is
    /// refused: a client that keeps retrying while refused does not lengthen its own wait.
    /// One round trip when allowed, two when refused.
    pub async fn check(
        &self,
        buckets: &LoginBuckets,
        now: DateTime<Utc>,
    ) -> Result<RateDecision, sqlx::Error> {
        let names: Vec<&str> = buckets
            .buckets
            .iter()
            .map(|(_, bucket, _)| bucket.as_str())
            .collect();
        let starts: Vec<DateTime<Utc>> = buckets
            .buckets
            .iter()
            .map(|(_, _, limit)| window_start(now, limit.window))
            .collect();
        let previous: Vec<DateTime<Utc>> = buckets
            .buckets
            .iter()
            .zip(&starts)
            .map(|((_, _, limit), start)| shared::time::saturating_sub(*start, limit.window))
            .collect();
        // Counted first and taken back if refused: two concurrent requests can never both
        // take the last place.
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
        let to_u32 = |n: i32| u32::try_from(n).unwrap_or(0);
        let quotas: Vec<(Limit, Quota)> = rows
            .iter()
            .filter_map(|(bucket, current, previous)| {
                let (which, _, limit) = buckets.buckets.iter().find(|(_, b, _)| b == bucket)?;
                // `current` includes this request's own hit.
                let before = to_u32(*current).saturating_sub(1);
                Some((*which, evaluate(*limit, now, before, to_u32(*previous))))
            })
            .collect();
        let decision = RateDecision { quotas };
        if !decision.allowed() {
            sqlx::query(
                "UPDATE rate_limit_counters c SET hits = c.hits - 1
                 FROM UNNEST($1::text[], $2::timestamptz[]) AS t (bucket, window_start)
                 WHERE c.bucket = t.bucket AND c.window_start = t.window_start AND c.hits > 0",
            )
            .bind(&names)
            .bind(&starts)
            .execute(&self.pool)
            .await?;
        }
        Ok(decision)
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

    fn allowed(quota: Quota) -> Result<u32, u64> {
        if quota.allowed {
            Ok(quota.remaining)
        } else {
            Err(quota.seconds)
        }
    }

    #[test]
    fn allows_up_to_the_limit_within_one_window() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 30).unwrap();
        // Hits counted before this one: 4 of 5, so this is the fifth and last.
        assert_eq!(allowed(evaluate(per_minute(5), now, 4, 0)), Ok(0));
        assert_eq!(allowed(evaluate(per_minute(5), now, 0, 0)), Ok(4));
        // A sixth waits for the next window, where these 5 weigh as its previous window:
        // 5 * (1 - e/60) + 1 <= 5 from e = 12 s, so 30 s + 12 s.
        assert_eq!(allowed(evaluate(per_minute(5), now, 5, 0)), Err(42));
    }

    #[test]
    fn the_previous_window_weighs_by_its_overlap() {
        // 15 s into the window: the previous window still overlaps by 75%.
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 15).unwrap();
        // 4 * 0.75 + 1 + 1 = 5: allowed; 4 * 0.75 + 2 + 1 = 6: refused until
        // 4 * (1 - e/60) <= 2, e = 30 s: 15 s from now.
        assert_eq!(allowed(evaluate(per_minute(5), now, 1, 4)), Ok(0));
        assert_eq!(allowed(evaluate(per_minute(5), now, 2, 4)), Err(15));
        // Near the end of the window, the previous one barely counts.
        let late = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 57).unwrap();
        assert!(evaluate(per_minute(5), late, 3, 10).allowed);
    }

    #[test]
    fn retry_after_is_the_true_wait_and_refusals_do_not_lengthen_it() {
        // The case: 30 logins per account and address in 15 minutes; the 31st comes
        // 878 s into a fixed window (22 s before it ends).
        let limit = RateLimit {
            max: 30,
            window: Duration::from_secs(900),
        };
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let first_refusal = start + chrono::Duration::seconds(878);
        let wait = allowed(evaluate(limit, first_refusal, 30, 0)).unwrap_err();
        assert_eq!(wait, 22 + 30, "the window's end, then 1/30 of the next");
        // Retried 24 s later (refused, so not counted): the wait left is the same deadline.
        let retry = first_refusal + chrono::Duration::seconds(24);
        assert_eq!(allowed(evaluate(limit, retry, 0, 30)), Err(wait - 24));
        // And at the announced second it passes, not a second before.
        let announced = first_refusal + chrono::Duration::seconds(wait as i64);
        assert!(evaluate(limit, announced, 0, 30).allowed);
        assert!(!evaluate(limit, announced - chrono::Duration::seconds(1), 0, 30).allowed);
    }

    #[test]
    fn a_refused_request_passes_exactly_when_announced() {
        // Every state of a small limit, every second of the window.
        let limit = per_minute(5);
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        for elapsed in 0..60 {
            for current in 0..=6 {
                for previous in 0..=8 {
                    let now = start + chrono::Duration::seconds(elapsed);
                    let Err(wait) = allowed(evaluate(limit, now, current, previous)) else {
                        continue;
                    };
                    // Seen from then: in this window or the next, with nothing else counted.
                    let at = |seconds: i64| {
                        let then = now + chrono::Duration::seconds(seconds);
                        if then < start + chrono::Duration::seconds(60) {
                            evaluate(limit, then, current, previous)
                        } else {
                            evaluate(limit, then, 0, current)
                        }
                    };
                    let wait = wait as i64;
                    assert!(at(wait).allowed, "{elapsed} {current} {previous}: {wait}");
                    assert!(
                        !at(wait - 1).allowed,
                        "{elapsed} {current} {previous}: {wait}"
                    );
                }
            }
        }
    }

    #[test]
    fn one_bucket_per_ipv4_address_and_per_ipv6_64() {
        let ip = |raw: &str| ip_bucket(raw.parse().unwrap());
        assert_eq!(ip("198.51.100.10"), "198.51.100.10");
        assert_eq!(ip("::ffff:198.51.100.10"), "198.51.100.10");
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(ip("2001:db8:1:3::1"), ip("2001:db8:1:2::1"));
    }

    #[test]
    fn headers_name_every_policy_and_the_tightest_state() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 30).unwrap();
        let decision = RateDecision {
            quotas: vec![
                (Limit::PerIp, evaluate(per_minute(100), now, 10, 0)),
                (Limit::PerAccount, evaluate(per_minute(5), now, 3, 0)),
            ],
        };
        assert!(decision.allowed());
        assert_eq!(
            decision.headers(),
            vec![
                (
                    "ratelimit-policy",
                    "\"ip\";q=100;w=60, \"account\";q=5;w=60".to_owned()
                ),
                ("ratelimit", "\"account\";r=1;t=30".to_owned()),
            ]
        );
    }

    #[test]
    fn a_refusal_is_the_limit_with_the_longest_wait() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 30).unwrap();
        let passes = evaluate(per_minute(100), now, 10, 0);
        // Refused until the next window: 30 s, then 12 s into it.
        let refuses_long = evaluate(per_minute(5), now, 5, 0);
        // Refused for the share of the previous window: less.
        let refuses_short = evaluate(per_minute(5), now, 2, 8);
        assert!(refuses_short.seconds < refuses_long.seconds);
        let decision = |quotas: Vec<(Limit, Quota)>| RateDecision { quotas };

        assert_eq!(
            decision(vec![(Limit::PerIp, passes), (Limit::PerApiKey, passes)]).refused_by(),
            None
        );
        let both = decision(vec![
            (Limit::PerApiKey, passes),
            (Limit::PerIp, refuses_short),
            (Limit::PerAccount, refuses_long),
        ]);
        assert_eq!(both.refused_by(), Some(Limit::PerAccount));
        assert_eq!(both.retry_after(), Some(refuses_long.seconds));
        let tie = decision(vec![
            (Limit::PerAccountAndIp, refuses_long),
            (Limit::PerAccount, refuses_long),
        ]);
        assert_eq!(tie.refused_by(), Some(Limit::PerAccountAndIp));
    }

    #[test]
    fn limits_are_named_after_their_settings_in_metrics_and_as_before_in_headers() {
        let names = |limit: Limit| (limit.as_str(), limit.policy());
        assert_eq!(names(Limit::PerIp), ("per_ip", "ip"));
        assert_eq!(
            names(Limit::PerAccountAndIp),
            ("per_account_and_ip", "account_ip")
        );
        assert_eq!(names(Limit::PerAccount), ("per_account", "account"));
        assert_eq!(names(Limit::PerApiKey), ("per_api_key", "api_key"));
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
