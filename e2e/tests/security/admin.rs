//! What a support team does after a compromise, and that it takes effect in every service.

use serde_json::Value;

use crate::capture_logs;
use crate::support::kafka::read_topic;
use crate::support::*;

async fn admin(
    system: &TestSystem,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    let mut request = system
        .http
        .request(method, format!("{}{path}", system.intake_url))
        .bearer_auth(ADMIN_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

/// What a support team does after a compromise: a new password (pending codes stop working),
/// forgetting learned devices, disabling and enabling, deleting (rows go, events keep ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_take_effect_in_every_service() {
    use reqwest::Method;
    capture_logs();
    let system = spawn_system().await;
    let (email, user_id) = system
        .enrolled_user("laptop", HOME_IP, CHROME_WINDOWS)
        .await;

    // An attacker's pending challenge dies with the password change.
    let (challenge, code) = system.attacker_challenge(&email, 2).await;
    let new_password = "a brand new passphrase";
    let status = admin(
        &system,
        Method::PUT,
        &format!("/v1/admin/users/{user_id}/password"),
        Some(serde_json::json!({ "password": new_password })),
    )
    .await;
    assert_eq!(status, 204);
    system
        .wait_for_count(
            "SELECT count(*) FROM challenges WHERE challenge_id = $1 AND status = 'revoked'",
            &challenge,
            |n| n == 1,
        )
        .await;
    let dead = system.verify(&challenge, &code).await;
    // Not "superseded": no newer code was sent; the message says what happened.
    assert!(
        dead.body["message"]
            .as_str()
            .unwrap()
            .contains("password was changed"),
        "{}",
        dead.body
    );
    assert_eq!(dead.body["error"], "revoked", "{}", dead.body);
    let old = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(old.body["reason"], "invalid_credentials");
    let new = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(new.body["status"], "approved", "{}", new.body);

    // Forgetting the learned devices: the owner's laptop is asked for a code again.
    assert_eq!(
        admin(
            &system,
            Method::POST,
            &format!("/v1/admin/users/{user_id}/reset-history"),
            None
        )
        .await,
        204
    );
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_login_history WHERE user_id = $1",
            &user_id,
            |n| n == 0,
        )
        .await;
    let after_reset = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        after_reset.body["status"], "mfa_required",
        "{}",
        after_reset.body
    );

    // Disabled: refused like a wrong password; enabled: back.
    assert_eq!(
        admin(
            &system,
            Method::POST,
            &format!("/v1/admin/users/{user_id}/disable"),
            None
        )
        .await,
        204
    );
    let disabled = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        disabled.body["reason"], "invalid_credentials",
        "{}",
        disabled.body
    );
    assert_eq!(
        admin(
            &system,
            Method::POST,
            &format!("/v1/admin/users/{user_id}/enable"),
            None
        )
        .await,
        204
    );
    let enabled = system
        .login(
            &email,
            new_password,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(enabled.body["status"], "mfa_required", "{}", enabled.body);

    // Deleted: every service's rows go; the events keep only the id.
    assert_eq!(
        admin(
            &system,
            Method::DELETE,
            &format!("/v1/admin/users/{user_id}"),
            None
        )
        .await,
        204
    );
    system
        .wait_for_count(
            "SELECT count(*) FROM challenges WHERE user_id = $1",
            &user_id,
            |n| n == 0,
        )
        .await;
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_decisions WHERE user_id = $1",
            &user_id,
            |n| n == 0,
        )
        .await;
    // The user's row among the global counts' users learned.
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_global_values WHERE level = 'user' AND value = ($1::uuid)::text",
            &user_id,
            |n| n == 0,
        )
        .await;
    for table in [
        "users",
        "login_attempts",
        "risk_login_history",
        "risk_challenges",
    ] {
        system
            .wait_for_count(
                &format!("SELECT count(*) FROM {table} WHERE user_id = $1"),
                &user_id,
                |n| n == 0,
            )
            .await;
    }
    let changes: Vec<Value> = read_topic(&system.kafka, &system.kafka.topics().accounts)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["payload"]["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "password_changed",
            "history_reset",
            "disabled",
            "enabled",
            "deleted"
        ]
    );
    assert!(
        changes.iter().all(|c| !c.to_string().contains(&email)),
        "events keep only ids"
    );
    assert_eq!(
        admin(
            &system,
            Method::DELETE,
            &format!("/v1/admin/users/{user_id}"),
            None
        )
        .await,
        404
    );
}

/// Issue 11, item 7: one mailbox is one account, and an address cannot pass itself off as
/// another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_that_are_the_same_person_or_pretend_to_be_are_refused() {
    capture_logs();
    let system = spawn_system().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    // The status and error code of creating `email`.
    let refusal = |email: String| {
        let request = system
            .http
            .post(format!("{}/v1/admin/users", system.intake_url))
            .bearer_auth(ADMIN_KEY)
            .json(
                &serde_json::json!({ "email": email, "password": PASSWORD, "company_id": "acme" }),
            )
            .send();
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    system
        .create_user(
            &format!("alice{tag}@example.com"),
            Some(PASSWORD),
            "acme",
            false,
        )
        .await;
    // A Cyrillic `а` (U+0430) in the local part, or in the domain.
    let mixed = refusal(format!("\u{0430}lice{tag}@example.com")).await;
    assert_eq!(mixed, (422, "email_mixed_script".to_owned()));
    let confusable = refusal(format!("alice{tag}@ex\u{0430}mple.com")).await;
    assert_eq!(confusable, (422, "email_confusable_domain".to_owned()));
    // A domain's Unicode and IDNA spellings, and NFC and NFD, are one account.
    system
        .create_user(&format!("r{tag}@bücher.de"), Some(PASSWORD), "acme", false)
        .await;
    let punycode = refusal(format!("r{tag}@xn--bcher-kva.de")).await;
    assert_eq!(punycode, (409, "email_taken".to_owned()));
    system
        .create_user(
            &format!("j\u{00fc}rgen{tag}@example.com"),
            Some(PASSWORD),
            "acme",
            false,
        )
        .await;
    let nfd = refusal(format!("ju\u{0308}rgen{tag}@example.com")).await;
    assert_eq!(nfd, (409, "email_taken".to_owned()));
    // And the user logs in under either spelling.
    let login = system
        .login(
            &format!("r{tag}@xn--bcher-kva.de"),
            PASSWORD,
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
}
