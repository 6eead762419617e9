//! Caps on code emails and on wrong codes, which hold without locking the owner out.

use std::time::Duration;

use serde_json::Value;

use crate::capture_logs;
use crate::support::kafka::read_topic;
use crate::support::*;

/// Logging in again within the gap sends no email and keeps the pending challenge (for its own
/// device; another is told to wait); once the code is used a new one is sent at once, but past the hourly share of emails with none
/// pending the login is refused with the time to wait: the inbox can't be flooded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_emails_are_capped_and_log_in_again_keeps_the_pending_code() {
    capture_logs();
    let system = spawn_system_with(Options {
        code_caps: CodeCaps {
            emails_per_hour: 2,
            min_gap: Duration::from_secs(30),
            failed_codes_per_day: 100,
        },
        ..Default::default()
    })
    .await;
    let email = unique_email("flood");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let first = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(first.body["status"], "mfa_required");
    assert_eq!(first.body["code_recently_sent"], false);
    let challenge = first.body["challenge_id"].as_str().unwrap().to_owned();
    system.mail.wait_for_emails(&email, 1).await;

    // "Log in again" right away from the same device: the same challenge, no email.
    for _ in 0..3 {
        let again = system
            .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
            .await;
        assert_eq!(again.body["status"], "mfa_required", "{}", again.body);
        assert_eq!(again.body["challenge_id"], challenge.as_str());
        assert_eq!(again.body["expires_at"], first.body["expires_at"]);
        assert_eq!(again.body["code_recently_sent"], true);
    }
    // From other devices (or none): no email either, and not that device's code, which
    // would let them in once its user types it; they are told how long to wait.
    for device in [Some("d2"), Some("d3"), None] {
        let elsewhere = system
            .login(&email, PASSWORD, device, HOME_IP, CHROME_WINDOWS)
            .await;
        assert_eq!(elsewhere.body["status"], "rejected", "{}", elsewhere.body);
        assert_eq!(elsewhere.body["reason"], "code_pending_elsewhere");
        let wait = elsewhere.body["retry_after_secs"].as_u64().unwrap();
        assert!((1..=30).contains(&wait), "{}", elsewhere.body);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        system.mail.emails_to(&email).await.len(),
        1,
        "one email, however often one logs in"
    );
    let code = system.mail.wait_for_code(&email, 1).await;
    assert_eq!(
        system.verify(&challenge, &code).await.status,
        200,
        "the kept code still works"
    );

    // The code was used: nothing can be reused, so logging in again (within the gap) gets a
    // new code at once, the second and last of the hour.
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_challenges WHERE user_id = $1 AND closed_at IS NOT NULL",
            &user_id,
            |n| n >= 1,
        )
        .await;
    let renewed = system
        .login(&email, PASSWORD, Some("d4"), "203.0.113.5", CHROME_WINDOWS)
        .await;
    assert_eq!(renewed.body["status"], "mfa_required", "{}", renewed.body);
    assert_eq!(renewed.body["code_recently_sent"], false);
    let second = renewed.body["challenge_id"].as_str().unwrap().to_owned();
    assert_ne!(second, challenge);
    let code = system.mail.wait_for_code(&email, 2).await;
    assert_eq!(system.verify(&second, &code).await.status, 200);

    // Used too: past the hourly cap with nothing to reuse, no email, and the answer says
    // how long until the first one leaves the hour.
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_challenges WHERE user_id = $1 AND closed_at IS NOT NULL",
            &user_id,
            |n| n >= 2,
        )
        .await;
    let refused = system
        .login(&email, PASSWORD, Some("d5"), "203.0.113.77", FIREFOX_LINUX)
        .await;
    assert_eq!(refused.body["status"], "rejected", "{}", refused.body);
    assert_eq!(refused.body["reason"], "too_many_codes");
    let wait = refused.body["retry_after_secs"].as_u64().unwrap();
    assert!((3300..=3600).contains(&wait), "{}", refused.body);
    assert_eq!(system.mail.emails_to(&email).await.len(), 2);

    let events: Vec<Value> = read_topic(&system.kafka, &system.kafka.topics().risk_decisions)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["event_type"] == "CodeThrottled")
        .collect();
    assert_eq!(events.len(), 3, "each throttled login is on the event log");
    assert!(events
        .iter()
        .all(|e| e["payload"]["reason"] == "recently_sent"));
}

/// Past the account's daily ceiling of wrong codes, no code is accepted and no new challenge
/// is issued; known devices still log in, so an attacker holding the password can't lock the
/// owner out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_ceiling_of_wrong_codes_holds_and_known_devices_still_log_in() {
    capture_logs();
    let system = spawn_system_with(Options {
        code_caps: CodeCaps {
            emails_per_hour: 1000,
            min_gap: Duration::ZERO,
            failed_codes_per_day: 3,
        },
        code_limits: CodeLimits {
            per_challenge: 5,
            per_account_per_day: 3,
        },
        ..Default::default()
    })
    .await;
    let (email, user_id) = system
        .enrolled_user("owner-laptop", HOME_IP, CHROME_WINDOWS)
        .await;

    // The attacker has the password, not the device: each login asks for a code.
    let (challenge, code) = system.attacker_challenge(&email, 2).await;
    let wrong = wrong_code(&code);
    for remaining in [4, 3, 2] {
        let answer = system.verify(&challenge, wrong).await;
        assert_eq!(
            answer.body["attempts_remaining"], remaining,
            "{}",
            answer.body
        );
    }
    // The ceiling is reached: even the right code is refused now.
    let blocked = system.verify(&challenge, &code).await;
    assert_eq!(
        blocked.body["error"], "too_many_attempts",
        "{}",
        blocked.body
    );

    system
        .wait_for_count(
            "SELECT count(*) FROM risk_failed_codes WHERE user_id = $1",
            &user_id,
            |n| n >= 3,
        )
        .await;
    let no_new_code = system
        .login(
            &email,
            PASSWORD,
            Some("attacker-2"),
            "203.0.113.66",
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(
        no_new_code.body["status"], "rejected",
        "{}",
        no_new_code.body
    );
    assert_eq!(no_new_code.body["reason"], "too_many_failed_codes");

    let owner = system
        .login(
            &email,
            PASSWORD,
            Some("owner-laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        owner.body["status"], "approved",
        "the owner's known device: {}",
        owner.body
    );
}
