//! Flow 8: every platform is accepted; bad requests get clear 4xx errors (a status and
//! a machine-readable code, with a message) and the service keeps serving. One test per
//! kind of bad request.

use serde_json::{json, Value};

use crate::support::*;

/// A user of `acme` with the test password, for the requests to name.
async fn a_user(system: &TestSystem) -> String {
    let email = unique_email("platforms");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    email
}

/// A login request the service accepts.
fn valid_login(email: &str) -> Value {
    json!({ "email": email, "password": PASSWORD, "platform": "ios",
            "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE } })
}

/// Sends each request and checks its status, its error code and that it explains itself.
async fn each_is_refused_with_its_code(cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)>) {
    for (name, request, status, error) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|_| panic!("{name}: JSON error body"));
        assert_eq!(body["error"], error, "{name}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {body}"
        );
    }
}

/// `POST /v1/logins`, and verify on a challenge that does not exist.
fn login_and_verify_urls(system: &TestSystem) -> (String, String) {
    let logins = format!("{}/v1/logins", system.intake_url);
    let verify = format!(
        "{}/v1/challenges/{}/verify",
        system.verifier_url,
        uuid::Uuid::new_v4()
    );
    (logins, verify)
}

async fn still_serving(system: &TestSystem, valid: Value) {
    let still = system.post_login(valid).await;
    assert_eq!(
        still.status, 200,
        "the service keeps serving: {}",
        still.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_platform_is_accepted() {
    let system = spawn_system().await;
    let email = a_user(&system).await;
    for platform in ["dashboard", "workspace", "ios", "android"] {
        let answer = system
            .post_login(json!({ "email": email, "password": PASSWORD, "platform": platform,
                                "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE, "device_id": platform } }))
            .await;
        assert_eq!(answer.status, 200, "{platform}: {}", answer.body);
        assert_eq!(answer.body["status"], "mfa_required");
    }
}

/// Bodies that are not a valid request: refused before anything is done with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_a_clear_4xx_and_the_service_keeps_serving() {
    let system = spawn_system().await;
    let email = a_user(&system).await;
    let url = format!("{}/v1/logins", system.intake_url);
    let valid = valid_login(&email);
    let mut unknown_platform = valid.clone();
    unknown_platform["platform"] = "smart_tv".into();
    let mut missing = valid.clone();
    missing["context"].as_object_mut().unwrap().remove("ip");
    let mut unknown_field = valid.clone();
    unknown_field["privileged"] = true.into();
    let mut bad_ip = valid.clone();
    bad_ip["context"]["ip"] = "300.1.1.1".into();
    let mut bad_email = valid.clone();
    bad_email["email"] = "not-an-email".into();
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "unknown platform",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .json(&unknown_platform),
            422,
            "invalid_request",
        ),
        (
            "missing field",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .json(&missing),
            422,
            "invalid_request",
        ),
        (
            "unknown field",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .json(&unknown_field),
            422,
            "invalid_request",
        ),
        (
            "bad ip",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .json(&bad_ip),
            422,
            "invalid_request",
        ),
        (
            "bad email",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .json(&bad_email),
            422,
            "invalid_request",
        ),
        (
            "malformed JSON",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .header("content-type", "application/json")
                .body("{\"email\":"),
            400,
            "malformed_json",
        ),
        (
            "not JSON",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .body("email=x"),
            415,
            "unsupported_media_type",
        ),
        (
            "oversized",
            system
                .http
                .post(&url)
                .bearer_auth(&system.api_key)
                .header("content-type", "application/json")
                .body(format!("{{\"email\":\"{}\"}}", "a".repeat(64 * 1024))),
            413,
            "payload_too_large",
        ),
        (
            "verify unknown field",
            system
                .http
                .post(format!(
                    "{}/v1/challenges/{}/verify",
                    system.verifier_url,
                    uuid::Uuid::new_v4()
                ))
                .bearer_auth(&system.api_key)
                .json(&json!({"code": "123456", "x": 1})),
            422,
            "invalid_request",
        ),
    ];
    each_is_refused_with_its_code(cases).await;
    still_serving(&system, valid).await;
}

/// Requests without a key, with a wrong one or with a client key on the admin API, and a
/// path that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_keys_and_unknown_paths_get_a_clear_4xx() {
    let system = spawn_system().await;
    let email = a_user(&system).await;
    let url = format!("{}/v1/logins", system.intake_url);
    let valid = valid_login(&email);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "no API key",
            system.http.post(&url).json(&valid),
            401,
            "missing_api_key",
        ),
        (
            "wrong API key",
            system.http.post(&url).bearer_auth("wrong").json(&valid),
            401,
            "invalid_api_key",
        ),
        (
            "client key on admin API",
            system
                .http
                .post(format!("{}/v1/admin/users", system.intake_url))
                .bearer_auth(&system.api_key)
                .json(&json!({})),
            401,
            "invalid_api_key",
        ),
        (
            "unknown path",
            system.http.get(format!("{}/v1/nothing", system.intake_url)),
            404,
            "not_found",
        ),
        (
            "verify without key",
            system
                .http
                .post(format!(
                    "{}/v1/challenges/{}/verify",
                    system.verifier_url,
                    uuid::Uuid::new_v4()
                ))
                .json(&json!({"code": "123456"})),
            401,
            "missing_api_key",
        ),
    ];
    each_is_refused_with_its_code(cases).await;
    still_serving(&system, valid).await;
}

/// Health, readiness and the API documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_the_api_documents_answer() {
    let system = spawn_system().await;
    for base in [&system.intake_url, &system.verifier_url] {
        assert_eq!(
            system
                .http
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            system
                .http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let doc: Value = system
            .http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert!(!doc["paths"].as_object().unwrap().is_empty());
    }
}

/// Issue 11, item 5: answers a client can rely on, whatever went wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_json_with_a_request_id_and_the_right_status() {
    let system = spawn_system().await;
    let email = a_user(&system).await;
    let (logins, verify) = login_and_verify_urls(&system);
    let mut null_platform = valid_login(&email);
    null_platform["platform"] = Value::Null;
    let mut numeric_platform = valid_login(&email);
    numeric_platform["platform"] = json!(1);
    each_is_refused_with_its_code(vec![
        // A wrong method is 405 before any header check: no key is sent.
        (
            "GET on a POST route",
            system.http.get(&logins),
            405,
            "method_not_allowed",
        ),
        (
            "PUT on verify",
            system.http.put(&verify),
            405,
            "method_not_allowed",
        ),
        (
            "DELETE on the companies route",
            system
                .http
                .delete(format!("{}/v1/admin/companies/acme", system.intake_url)),
            405,
            "method_not_allowed",
        ),
        // Valid JSON of the wrong type names the field; it is not "malformed".
        (
            "platform null",
            system
                .http
                .post(&logins)
                .bearer_auth(&system.api_key)
                .json(&null_platform),
            422,
            "invalid_request",
        ),
        (
            "platform 1",
            system
                .http
                .post(&logins)
                .bearer_auth(&system.api_key)
                .json(&numeric_platform),
            422,
            "invalid_request",
        ),
        (
            "an unknown query parameter",
            system
                .http
                .get(format!(
                    "{}/v1/admin/api-keys?colour=red",
                    system.intake_url
                ))
                .bearer_auth(ADMIN_KEY),
            400,
            "invalid_request",
        ),
    ])
    .await;
    let null = system
        .http
        .post(&logins)
        .bearer_auth(&system.api_key)
        .json(&null_platform)
        .send()
        .await
        .unwrap();
    let body: Value = null.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().starts_with("platform"),
        "{body}"
    );

    // The scheme is case-insensitive, and every answer carries a request id, the caller's
    // own when it sent one.
    let lower = system
        .http
        .post(&logins)
        .header("authorization", format!("bearer {}", system.api_key))
        .header("x-request-id", "client-chosen-42")
        .json(&valid_login(&email))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);
    assert_eq!(lower.headers()["x-request-id"], "client-chosen-42");
    let refused = system.http.get(&logins).send().await.unwrap();
    let id = refused.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    still_serving(&system, valid_login(&email)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_a_json_431_and_the_service_keeps_serving() {
    let system = spawn_system().await;
    let email = a_user(&system).await;
    let (logins, verify) = login_and_verify_urls(&system);
    // Over the count (hyper's own default limit, where it used to answer an empty 431).
    let mut many = system
        .http
        .post(&logins)
        .bearer_auth(&system.api_key)
        .json(&valid_login(&email));
    for n in 0..150 {
        many = many.header(format!("x-padding-{n}"), "1");
    }
    // Over the size, in one header.
    let huge = system
        .http
        .post(&verify)
        .bearer_auth(&system.api_key)
        .header("x-padding", "a".repeat(40 * 1024))
        .json(&json!({ "code": "123456" }));
    for (name, request) in [("150 headers", many), ("a 40 KiB header", huge)] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 431, "{name}");
        assert!(response.headers().contains_key("x-request-id"), "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "headers_too_large", "{name}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("at most"),
            "{name}: {body}"
        );
    }
    // Within the limits, a request with many headers is served.
    let mut fifty = system
        .http
        .post(&logins)
        .bearer_auth(&system.api_key)
        .json(&valid_login(&email));
    for n in 0..50 {
        fifty = fifty.header(format!("x-padding-{n}"), "1");
    }
    assert_eq!(fifty.send().await.unwrap().status(), 200);
    still_serving(&system, valid_login(&email)).await;
}
