//! `GET /v1/admin/users/{user_id}/export` (issue 14, the right of access): everything the
//! services hold on a user, from every service's tables, and none of it left once the user is
//! deleted.

use serde_json::Value;

use crate::support::*;

async fn export(system: &TestSystem, user_id: &str, key: Option<&str>) -> (u16, Value) {
    system
        .intake_get(&format!("/v1/admin/users/{user_id}/export"), key)
        .await
}

/// The tables that hold rows about one user, and the column naming them.
const USER_TABLES: [(&str, &str); 8] = [
    ("users", "user_id"),
    ("login_attempts", "user_id"),
    ("risk_decisions", "user_id"),
    ("risk_login_history", "user_id"),
    ("risk_challenges", "user_id"),
    ("risk_failed_codes", "user_id"),
    ("challenges", "user_id"),
    ("risk_failed_attempts", "account"),
];

async fn rows_left(system: &TestSystem, user_id: &str) -> Vec<(&'static str, i64)> {
    let mut left = Vec::new();
    for (table, column) in USER_TABLES {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {column}::text = $1"
        ))
        .bind(user_id)
        .fetch_one(&system.pool)
        .await
        .unwrap();
        if count > 0 {
            left.push((table, count));
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_what_every_service_keeps_on_the_user_and_nothing_once_deleted() {
    let system = spawn_system().await;
    let email = unique_email("export");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    // A first login with its code, then a wrong password.
    let first = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(first.body["status"], "mfa_required", "{}", first.body);
    let code = system.mail.wait_for_code(&email, 1).await;
    let challenge_id = first.body["challenge_id"].as_str().unwrap().to_owned();
    assert_eq!(system.verify(&challenge_id, &code).await.status, 200);
    system.wait_until_learned(&user_id).await;
    let wrong = system
        .login(
            &email,
            "not the password",
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(wrong.body["status"], "rejected", "{}", wrong.body);
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_failed_attempts WHERE account = $1::text",
            &user_id,
            |n| n == 1,
        )
        .await;

    let (status, body) = export(&system, &user_id, Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], user_id.as_str());
    assert_eq!(body["account"]["email"], email.as_str());
    let logins = body["logins"].as_array().unwrap();
    assert_eq!(logins.len(), 2, "{body}");
    assert_eq!(logins[0]["attempt_id"], first.body["attempt_id"]);
    assert_eq!(logins[0]["ip"], HOME_IP);
    assert_eq!(logins[0]["user_agent"], CHROME_WINDOWS);
    assert_eq!(logins[0]["device_id"], "laptop");
    assert!(logins[0]["approved_after_mfa"].as_bool().unwrap(), "{body}");
    assert_eq!(logins[1]["status"], "rejected", "{body}");
    let decisions = body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "{body}");
    assert_eq!(decisions[0]["decision"]["event_type"], "MfaRequired");
    // Sealed on the log, in the clear for the user.
    assert_eq!(decisions[0]["decision"]["payload"]["ip"], HOME_IP, "{body}");
    assert_eq!(
        decisions[0]["decision"]["payload"]["user_agent"],
        CHROME_WINDOWS
    );
    let history = body["login_history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        1,
        "the approved login the model learned: {body}"
    );
    assert_eq!(history[0]["attempt_id"], first.body["attempt_id"]);
    let challenges = body["challenges"].as_array().unwrap();
    assert_eq!(challenges.len(), 1, "{body}");
    assert_eq!(challenges[0]["challenge_id"], challenge_id.as_str());
    assert_eq!(challenges[0]["status"], "used");
    assert_eq!(body["issued_codes"].as_array().unwrap().len(), 1, "{body}");
    let failed = body["failed_passwords"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["attempt_id"], wrong.body["attempt_id"]);
    // Secrets are not the person's data: no password hash, no code hash, no sealed code.
    let text = body.to_string();
    for secret in ["password_hash", "code_hash", "sealed", "$argon2"] {
        assert!(!text.contains(secret), "{secret} in the export: {text}");
    }

    // Only for the admin key, and only for an account that exists.
    assert_eq!(export(&system, &user_id, None).await.0, 401);
    assert_eq!(
        export(&system, &user_id, Some(&system.api_key)).await.0,
        401
    );
    let (status, body) = export(&system, &uuid::Uuid::now_v7().to_string(), Some(ADMIN_KEY)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_user"))
    );
    assert_eq!(export(&system, "not-a-uuid", Some(ADMIN_KEY)).await.0, 404);

    // Deleted: every service's rows about the user go (the workers' once they read the
    // announcement), and the export knows no such user.
    let deleted = system
        .http
        .delete(format!("{}/v1/admin/users/{user_id}", system.intake_url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let mut left = rows_left(&system, &user_id).await;
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = rows_left(&system, &user_id).await;
    }
    assert!(left.is_empty(), "rows left after the delete: {left:?}");
    assert_eq!(export(&system, &user_id, Some(ADMIN_KEY)).await.0, 404);
}
