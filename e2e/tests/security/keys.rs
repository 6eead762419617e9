//! Client API keys: bound to their company and platforms, revocable, never shown again.

use serde_json::Value;

use crate::capture_logs;
use crate::support::*;

/// A key of one company can't log in, read a decision of, or verify a challenge of another
/// company's user; a key limited to some platforms can't speak for the others; a revoked key
/// stops working at once; listing keys never shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_bound_to_their_company_and_platforms() {
    capture_logs();
    let system = spawn_system().await;
    let email = unique_email("tenant");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let other_company = system.create_api_key("globex", None).await;
    let as_other = |path: String| {
        system
            .http
            .post(format!("{}{path}", system.intake_url))
            .bearer_auth(&other_company)
    };

    // acme's user through globex's key: as unknown as an unknown email.
    let login = serde_json::json!({ "email": email, "password": PASSWORD, "platform": "dashboard",
        "context": { "ip": HOME_IP, "user_agent": CHROME_WINDOWS, "device_id": "d1" } });
    let foreign: Value = as_other("/v1/logins".into())
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(foreign["status"], "rejected", "{foreign}");
    assert_eq!(foreign["reason"], "invalid_credentials");

    // The right key starts a challenge; globex's key can neither read nor verify it.
    let own = system.post_login(login.clone()).await;
    assert_eq!(own.body["status"], "mfa_required", "{}", own.body);
    let attempt = own.body["attempt_id"].as_str().unwrap();
    let challenge = own.body["challenge_id"].as_str().unwrap();
    let code = system.mail.wait_for_code(&email, 1).await;
    let read = system
        .http
        .get(format!("{}/v1/logins/{attempt}", system.intake_url))
        .bearer_auth(&other_company)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 404);
    let stolen = system
        .http
        .post(format!(
            "{}/v1/challenges/{challenge}/verify",
            system.verifier_url
        ))
        .bearer_auth(&other_company)
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["error"], "unknown_challenge");
    // ...and using it did not spend a try: the owner's right code still works.
    assert_eq!(system.verify(challenge, &code).await.status, 200);

    // A key limited to the mobile apps.
    let mobile = system
        .create_api_key("acme", Some(&["ios", "android"]))
        .await;
    let dashboard: Value = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&mobile)
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dashboard["error"], "platform_not_allowed", "{dashboard}");

    // Listing shows prefixes, never keys; revoking works at once.
    let keys: Value = system
        .http
        .get(format!(
            "{}/v1/admin/api-keys?company_id=acme",
            system.intake_url
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = keys.to_string();
    assert!(
        !listed.contains(&system.api_key) && !listed.contains(&mobile),
        "{listed}"
    );
    let mobile_id = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            mobile.starts_with(k["key_prefix"].as_str().unwrap())
                && k["platforms"].as_array().unwrap().len() == 2
        })
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = system
        .http
        .delete(format!(
            "{}/v1/admin/api-keys/{mobile_id}",
            system.intake_url
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let after: Value = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&mobile)
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["error"], "invalid_api_key", "{after}");
}

/// The answer that carries a new API key is never cached (issue 11, item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_api_key_is_answered_with_no_store() {
    let system = spawn_system().await;
    let response = system
        .http
        .post(format!("{}/v1/admin/api-keys", system.intake_url))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({ "company_id": "acme", "name": "cache check" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
}
