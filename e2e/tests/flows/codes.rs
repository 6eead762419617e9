//! The emailed codes: wrong ones count down and lock the challenge; expired, used and
//! superseded ones are refused.

use std::time::Duration;

use crate::support::*;

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
    let system = spawn_system_with(Options {
        code_ttl: Duration::from_secs(3),
        ..Default::default()
    })
    .await;

    let email = unique_email("expiry");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let code = system.mail.wait_for_code(&email, 1).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let expired = system
        .verify(login.body["challenge_id"].as_str().unwrap(), &code)
        .await;
    assert_eq!(expired.status, 410, "{}", expired.body);
    assert_eq!(expired.body["error"], "expired_code");
    assert!(expired.body["message"]
        .as_str()
        .unwrap()
        .contains("Log in again"));

    // Logging in again sends a new code, which works once.
    let again = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge = again.body["challenge_id"].as_str().unwrap().to_owned();
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
