//! The emailed codes: wrong ones count down and lock the challenge; expired, used and
//! superseded ones are refused. "Log in again" after a code can no longer be used gets a new
//! one at once, within the caps (issue 11.2), and every attempt reaches a final state
//! (issue 11.3).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// The caps of production: 5 code emails an hour, 30 s apart.
fn production_caps() -> Options {
    Options {
        code_caps: CodeCaps {
            emails_per_hour: 5,
            min_gap: Duration::from_secs(30),
            failed_codes_per_day: 100,
        },
        ..Default::default()
    }
}

/// Codes that expire 3 s after their email.
fn short_codes() -> Options {
    Options {
        code_ttl: Duration::from_secs(3),
        ..Default::default()
    }
}

/// A system with `options`, a user of `acme` and their first login, from device `d1`, which
/// asked for a code: the system, the email, the user id and the answer.
async fn a_first_code(options: Options, name: &str) -> (TestSystem, String, String, Value) {
    let system = spawn_system_with(options).await;
    let email = unique_email(name);
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let first = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await
        .body;
    (system, email, user_id, first)
}

/// The user logs in again from `d1`, the device of `a_first_code`: the answer.
async fn log_in_again(system: &TestSystem, email: &str) -> Value {
    system
        .login(email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await
        .body
}

/// A password login with the answer's `Retry-After` header.
async fn login_with_headers(
    system: &TestSystem,
    email: &str,
    device: &str,
) -> (Value, Option<String>) {
    let response = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&system.api_key)
        .json(&json!({
            "email": email, "password": PASSWORD, "platform": "dashboard",
            "context": { "ip": HOME_IP, "user_agent": CHROME_WINDOWS, "device_id": device },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.json().await.unwrap(), retry_after)
}

fn challenge_of(answer: &Value) -> String {
    assert_eq!(answer["status"], "mfa_required", "{answer}");
    answer["challenge_id"].as_str().unwrap().to_owned()
}

fn attempt_of(answer: &Value) -> &str {
    answer["attempt_id"].as_str().unwrap()
}

/// Five wrong codes: the challenge is locked.
async fn lock(system: &TestSystem, challenge: &str, code: &str) {
    for _ in 0..5 {
        system.verify(challenge, wrong_code(code)).await;
    }
    let locked = system.verify(challenge, code).await;
    assert_eq!(locked.body["error"], "too_many_attempts", "{}", locked.body);
}

/// Waits until the risk worker has seen `closed` of the user's challenges end (the verifier's
/// and the admins' events reach it a Kafka hop after the call that ended them).
async fn wait_until_closed(system: &TestSystem, user_id: &str, closed: i64) {
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_challenges WHERE user_id = $1 AND closed_at IS NOT NULL",
            user_id,
            |n| n >= closed,
        )
        .await;
}

/// Polls `GET /v1/logins/{attempt_id}` until its status is `status` (the code worker acts a
/// Kafka hop after the call that set it off), and returns the answer.
async fn wait_for_final(system: &TestSystem, attempt_id: &str, status: &str) -> Value {
    let mut answer = Value::Null;
    for _ in 0..200 {
        answer = system.get_login(attempt_id).await.body;
        if answer["status"] == status {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("attempt {attempt_id} never became {status}: {answer}");
}

/// Issue 11.2: the verifier says "Log in again" after five wrong codes; doing so within the
/// 30 s gap gets a new code (it used to be refused `too_many_codes`), which works. The locked
/// attempt ends `rejected` (`code_locked`), and the new one `approved` (11.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_again_after_a_lock_gets_a_new_code_within_the_gap() {
    let (system, email, user_id, first) = a_first_code(production_caps(), "relock").await;
    let locked = challenge_of(&first);
    let code = system.mail.wait_for_code(&email, 1).await;
    assert_eq!(
        system.get_login(attempt_of(&first)).await.body["status"],
        "mfa_required",
        "waiting while its code can be used"
    );
    lock(&system, &locked, &code).await;
    let settled = system.get_login(attempt_of(&first)).await.body;
    assert_eq!(settled["status"], "rejected", "{settled}");
    assert_eq!(settled["reason"], "code_locked");

    wait_until_closed(&system, &user_id, 1).await;
    let again = log_in_again(&system, &email).await;
    let renewed = challenge_of(&again);
    assert_ne!(renewed, locked, "{again}");
    assert_eq!(again["code_recently_sent"], false);
    let new_code = system.mail.wait_for_code(&email, 2).await;
    assert_eq!(system.verify(&renewed, &new_code).await.status, 200);
    assert_eq!(
        system.get_login(attempt_of(&again)).await.body["status"],
        "approved"
    );
    // The locked attempt stays rejected for its own reason.
    assert_eq!(
        wait_for_final(&system, attempt_of(&first), "rejected").await["reason"],
        "code_locked"
    );
}

/// Issues 11.2 and 11.3: logging in again from the same device within the gap shares the
/// pending challenge, and the code passed approves both attempts (the second used to stay
/// `mfa_required` forever). Another device never shares it: passing a challenge approves
/// every attempt waiting on it, so a second device (an attacker holding the password, logging
/// in while the user does) would be let in by the code the user typed. Within the gap it is
/// told how long to wait; afterwards it gets a code of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_shared_only_by_its_own_device_and_passing_it_approves_that_devices_attempts() {
    let (system, email, user_id, laptop) = a_first_code(production_caps(), "shared").await;
    let challenge = challenge_of(&laptop);
    let (phone, retry_after) = login_with_headers(&system, &email, "phone").await;
    assert_eq!(phone["status"], "rejected", "{phone}");
    assert_eq!(phone["reason"], "code_pending_elsewhere");
    assert!(phone.get("challenge_id").is_none(), "{phone}");
    let wait = phone["retry_after_secs"].as_u64().unwrap();
    assert!((1..=30).contains(&wait), "{phone}");
    assert_eq!(retry_after, Some(wait.to_string()));
    let laptop_again = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await
        .body;
    assert_eq!(challenge_of(&laptop_again), challenge);
    assert_eq!(laptop_again["code_recently_sent"], true);

    let code = system.mail.wait_for_code(&email, 1).await;
    let verified = system.verify(&challenge, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    // The verify answer names the attempt the challenge was issued for.
    assert_eq!(verified.body["attempt_id"], attempt_of(&laptop));
    for attempt in [&laptop, &laptop_again] {
        let answer = system.get_login(attempt_of(attempt)).await.body;
        assert_eq!(answer["status"], "approved", "{answer}");
        assert_eq!(answer["approved_after_mfa"], true);
    }
    // Once the verifier's approval has reached login-intake too, it is stored so; the phone's
    // attempt was never given the challenge, and stays refused.
    let stored = "SELECT count(*) FROM login_attempts
                  WHERE challenge_id = $1 AND status = 'approved' AND approved_after_mfa";
    system.wait_for_count(stored, &challenge, |n| n == 2).await;
    let phone_now = system.get_login(attempt_of(&phone)).await.body;
    assert_eq!(phone_now["status"], "rejected", "{phone_now}");
    assert_eq!(phone_now["reason"], "code_pending_elsewhere");

    // The last code was used: the phone, seconds later, gets a code of its own.
    wait_until_closed(&system, &user_id, 1).await;
    let phone_later = system
        .login(
            &email,
            PASSWORD,
            Some("phone"),
            "203.0.113.5",
            SAFARI_IPHONE,
        )
        .await
        .body;
    let renewed = challenge_of(&phone_later);
    assert_ne!(renewed, challenge);
    assert_eq!(phone_later["code_recently_sent"], false);
    let new_code = system.mail.wait_for_code(&email, 2).await;
    assert_eq!(system.verify(&renewed, &new_code).await.status, 200);
}

/// Issues 11.2 and 11.3: disabling the account revokes the pending code; once enabled, the
/// next login, within the gap, gets a new one. The revoked attempt ends `revoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_disable_and_enable_the_next_login_gets_a_new_code_and_the_old_attempt_is_revoked() {
    let (system, email, user_id, first) = a_first_code(production_caps(), "revoked").await;
    let revoked = challenge_of(&first);
    let code = system.mail.wait_for_code(&email, 1).await;
    for action in ["disable", "enable"] {
        let status = system
            .http
            .post(format!(
                "{}/v1/admin/users/{user_id}/{action}",
                system.intake_url
            ))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204, "{action}");
    }
    let settled = wait_for_final(&system, attempt_of(&first), "rejected").await;
    assert_eq!(settled["reason"], "revoked", "{settled}");

    wait_until_closed(&system, &user_id, 1).await;
    let again = log_in_again(&system, &email).await;
    let renewed = challenge_of(&again);
    assert_ne!(renewed, revoked);
    let new_code = system.mail.wait_for_code(&email, 2).await;
    assert_eq!(
        system.verify(&revoked, &code).await.body["error"],
        "revoked"
    );
    assert_eq!(system.verify(&renewed, &new_code).await.status, 200);
}

/// Issue 11.2: locking challenges on purpose buys no more code emails than the hourly cap;
/// past it, the refusal says how long to wait, in the body and in `Retry-After`, and the
/// attempt's later answer says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_hourly_cap_the_refusal_says_how_long_to_wait() {
    let mut options = production_caps();
    options.code_caps.emails_per_hour = 2;
    let system = spawn_system_with(options).await;
    let email = unique_email("capped");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    for nth in 1..=2 {
        let (answer, retry_after) = login_with_headers(&system, &email, "d1").await;
        assert_eq!(retry_after, None);
        let challenge = challenge_of(&answer);
        lock(
            &system,
            &challenge,
            &system.mail.wait_for_code(&email, nth).await,
        )
        .await;
        wait_until_closed(&system, &user_id, nth as i64).await;
    }
    let (refused, retry_after) = login_with_headers(&system, &email, "d1").await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(refused["reason"], "too_many_codes");
    let wait = refused["retry_after_secs"].as_u64().unwrap();
    // The first email left seconds ago: it leaves the hour in a little less than an hour.
    assert!((3300..=3600).contains(&wait), "{refused}");
    assert_eq!(retry_after, Some(wait.to_string()));
    // Two code emails (each locked code also got its "someone has your password" notice).
    let emails = system.mail.emails_to(&email).await;
    let codes = emails
        .iter()
        .filter(|e| mfa_testkit::mail::code_in(&e.text).is_some());
    assert_eq!(codes.count(), 2);

    let response = system
        .http
        .get(format!(
            "{}/v1/logins/{}",
            system.intake_url,
            attempt_of(&refused)
        ))
        .bearer_auth(&system.api_key)
        .send()
        .await
        .unwrap();
    let header: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let later: Value = response.json().await.unwrap();
    assert_eq!(later["reason"], "too_many_codes");
    assert_eq!(later["retry_after_secs"], header);
    assert!(header <= wait && header + 5 >= wait, "{later}");
}

/// Issue 11.3: an attempt whose code was superseded by a newer one, or expired, ends
/// `rejected` with that reason instead of staying `mfa_required`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_and_expired_attempts_end_rejected_with_their_reason() {
    let (system, email, _, older) = a_first_code(short_codes(), "ends").await;
    challenge_of(&older);
    system.mail.wait_for_emails(&email, 1).await;
    let newer = system
        .login(&email, PASSWORD, Some("d2"), "203.0.113.5", CHROME_WINDOWS)
        .await
        .body;
    challenge_of(&newer);
    let superseded = wait_for_final(&system, attempt_of(&older), "rejected").await;
    assert_eq!(superseded["reason"], "superseded", "{superseded}");
    assert_eq!(
        system.get_login(attempt_of(&newer)).await.body["status"],
        "mfa_required"
    );

    let expired = wait_for_final(&system, attempt_of(&newer), "rejected").await;
    assert_eq!(expired["reason"], "code_expired", "{expired}");
    assert!(expired.get("challenge_id").is_none());
}

/// 4. Wrong codes count down; the fifth locks the challenge, and then even the right code is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_codes_lock_the_challenge() {
    let system = spawn_system().await;
    let email = unique_email("guess");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge_id = login.body["challenge_id"].as_str().unwrap().to_owned();
    let code = system.mail.wait_for_code(&email, 1).await;
    let wrong = wrong_code(&code);

    for remaining in (1..=4).rev() {
        let answer = system.verify(&challenge_id, wrong).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert_eq!(answer.body["error"], "invalid_code");
        assert_eq!(answer.body["attempts_remaining"], remaining);
    }
    let fifth = system.verify(&challenge_id, wrong).await;
    assert_eq!(fifth.status, 403);
    assert_eq!(fifth.body["error"], "too_many_attempts");
    assert!(fifth.body["message"]
        .as_str()
        .unwrap()
        .contains("Log in again"));

    let right = system.verify(&challenge_id, &code).await;
    assert_eq!(right.body["error"], "too_many_attempts", "{}", right.body);

    // A malformed code is refused without using a try, and says why.
    let malformed = system.verify(&challenge_id, "12ab").await;
    assert_eq!(malformed.status, 422);
    assert_eq!(malformed.body["error"], "invalid_request");
}

/// 5. An expired code is refused; a used code can't be used again; a newer challenge
/// invalidates the older code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_used_and_superseded_codes_are_refused() {
    let (system, email, _, login) = a_first_code(short_codes(), "expiry").await;
    let code = system.mail.wait_for_code(&email, 1).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let expired = system
        .verify(login["challenge_id"].as_str().unwrap(), &code)
        .await;
    assert_eq!(expired.status, 410, "{}", expired.body);
    assert_eq!(expired.body["error"], "expired_code");
    assert!(expired.body["message"]
        .as_str()
        .unwrap()
        .contains("Log in again"));

    // Logging in again sends a new code, which works once.
    let again = log_in_again(&system, &email).await;
    let challenge = again["challenge_id"].as_str().unwrap().to_owned();
    let code = system.mail.wait_for_code(&email, 2).await;
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    let reused = system.verify(&challenge, &code).await;
    assert_eq!(reused.status, 409);
    assert_eq!(reused.body["error"], "already_used");

    let older = system
        .login(&email, PASSWORD, Some("d2"), "203.0.113.5", CHROME_WINDOWS)
        .await;
    let older_code = system.mail.wait_for_code(&email, 3).await;
    let newer = system
        .login(&email, PASSWORD, Some("d3"), "203.0.113.9", CHROME_WINDOWS)
        .await;
    let newer_code = system.mail.wait_for_code(&email, 4).await;
    let superseded = system
        .verify(older.body["challenge_id"].as_str().unwrap(), &older_code)
        .await;
    assert_eq!(superseded.status, 410, "{}", superseded.body);
    assert_eq!(superseded.body["error"], "superseded");
    assert!(superseded.body["message"]
        .as_str()
        .unwrap()
        .contains("log in again"));
    assert_eq!(
        system
            .verify(newer.body["challenge_id"].as_str().unwrap(), &newer_code)
            .await
            .status,
        200
    );

    // An id that names no challenge.
    let unknown = system
        .verify(&uuid::Uuid::new_v4().to_string(), "123456")
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"], "unknown_challenge");
}
