//! Login rate limits: per end-user IP, per account, per account and IP, per API key.

use serde_json::Value;

use crate::capture_logs;
use crate::support::*;

/// Login rate limits per end-user IP and per account answer 429 with Retry-After, alike for
/// known and unknown emails, and leave other addresses and accounts alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_limits_answer_429_alike_for_known_and_unknown_emails() {
    capture_logs();
    let system = spawn_system_with(Options {
        rate_limits: hourly_limits(6, 1000, 3, 1000),
        ..Default::default()
    })
    .await;
    let known = unique_email("limited");
    system
        .create_user(&known, Some(PASSWORD), "acme", false)
        .await;
    let unknown = unique_email("ghost");

    // Per account: three tries from three addresses each, then 429, known or not.
    for email in [&known, &unknown] {
        for i in 1..=3 {
            let answer = system
                .login(
                    email,
                    "wrong",
                    None,
                    &format!("203.0.113.{i}"),
                    CHROME_WINDOWS,
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        let limited = system
            .http
            .post(format!("{}/v1/logins", system.intake_url))
            .bearer_auth(&system.api_key)
            .json(
                &serde_json::json!({ "email": email, "password": "wrong", "platform": "ios",
                  "context": { "ip": "203.0.113.9", "user_agent": SAFARI_IPHONE } }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        let retry_after: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // The true wait: the sliding window's estimate spreads the hour's hits, so a
        // burst can wait into the next window too (at most two windows in all).
        assert!((1..=2 * 3600).contains(&retry_after), "{retry_after}");
        let body: Value = limited.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited");
    }

    // Per IP: 6 logins from one address across accounts, then 429; another address is fine.
    for i in 0..6 {
        let answer = system
            .login(
                &unique_email("spray"),
                "guess",
                None,
                "198.51.100.77",
                CHROME_WINDOWS,
            )
            .await;
        assert_eq!(answer.status, 200, "login {i}: {}", answer.body);
    }
    let sprayed = system
        .login(
            &unique_email("spray"),
            "guess",
            None,
            "198.51.100.77",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(sprayed.status, 429);
    let elsewhere = system
        .login(
            &unique_email("spray"),
            "guess",
            None,
            "198.51.100.78",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(elsewhere.status, 200);
}

/// The per-API-key and per-account-and-IP limits, each on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_and_per_account_and_ip_limits_hold() {
    capture_logs();
    let system = spawn_system_with(Options {
        rate_limits: hourly_limits(1000, 2, 1000, 4),
        ..Default::default()
    })
    .await;
    let email = unique_email("pair");
    for _ in 0..2 {
        assert_eq!(
            system
                .login(&email, "x", None, "192.0.2.1", CHROME_WINDOWS)
                .await
                .status,
            200
        );
    }
    assert_eq!(
        system
            .login(&email, "x", None, "192.0.2.1", CHROME_WINDOWS)
            .await
            .status,
        429,
        "same account, same IP"
    );
    assert_eq!(
        system
            .login(&email, "x", None, "192.0.2.2", CHROME_WINDOWS)
            .await
            .status,
        200,
        "same account, another IP"
    );
    // The key has counted 3 logins (a refused try counts nowhere): one more is its limit.
    assert_eq!(
        system
            .login(
                &unique_email("other"),
                "x",
                None,
                "192.0.2.5",
                CHROME_WINDOWS
            )
            .await
            .status,
        200,
        "the key's fourth"
    );
    let over_key = system
        .login(
            &unique_email("other"),
            "x",
            None,
            "192.0.2.3",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(over_key.status, 429, "{}", over_key.body);
    let another_key = system.create_api_key("acme", None).await;
    let fresh = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&another_key)
        .json(&serde_json::json!({ "email": unique_email("other"), "password": "x", "platform": "android",
              "context": { "ip": "192.0.2.4", "user_agent": SAFARI_IPHONE } }))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200, "another key has its own budget");
}

/// Issue 11, item 4: refusals that tell the truth and buckets that match clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_count_one_client_once_and_say_where_it_stands() {
    capture_logs();
    let system = spawn_system_with(Options {
        rate_limits: hourly_limits(1000, 2, 1000, 1000),
        ..Default::default()
    })
    .await;
    let email = unique_email("mapped");
    let send = |ip: &'static str| {
        system
            .http
            .post(format!("{}/v1/logins", system.intake_url))
            .bearer_auth(&system.api_key)
            .json(
                &serde_json::json!({ "email": email, "password": "wrong", "platform": "ios",
                  "context": { "ip": ip, "user_agent": SAFARI_IPHONE } }),
            )
            .send()
    };
    // An IPv4 address and its IPv4-mapped IPv6 spelling are one client.
    let first = send("198.51.100.10").await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()["ratelimit-policy"],
        "\"api_key\";q=1000;w=3600, \"ip\";q=1000;w=3600, \"account_ip\";q=2;w=3600, \"account\";q=1000;w=3600"
    );
    assert!(
        first.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"account_ip\";r=1;t="),
        "{:?}",
        first.headers()["ratelimit"]
    );
    assert_eq!(send("::ffff:198.51.100.10").await.unwrap().status(), 200);
    let refused = send("198.51.100.10").await.unwrap();
    assert_eq!(
        refused.status(),
        429,
        "the mapped address counted in the same bucket"
    );
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .contains(";r=0;"));
    // Retrying while refused does not lengthen the wait.
    for _ in 0..5 {
        let again = send("::ffff:198.51.100.10").await.unwrap();
        assert_eq!(again.status(), 429);
        let again_wait: u64 = again.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(again_wait <= wait, "{again_wait} > {wait}");
    }
    let count: i64 = sqlx::query_scalar(
        "SELECT COALESCE(max(hits), 0)::bigint FROM rate_limit_counters WHERE bucket LIKE 'account-ip:%'",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(count, 2, "refused requests are counted nowhere");
    // An IPv6 client is one bucket per /64, whatever the host part.
    let v6 = send("2001:db8:7:7::1").await.unwrap();
    assert_eq!(v6.status(), 200);
    assert_eq!(send("2001:db8:7:7::2").await.unwrap().status(), 200);
    assert_eq!(send("2001:db8:7:7:ffff::3").await.unwrap().status(), 429);
    assert_eq!(
        send("2001:db8:7:8::1").await.unwrap().status(),
        200,
        "another /64"
    );
}
