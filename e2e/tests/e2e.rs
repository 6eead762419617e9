//! The whole login flow across the four services, against the real broker, PostgreSQL and
//! SMTP server. Each test starts its own system (own database, own topics).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::kafka::{produce, read_topic, wait_for_message};
use support::secrets::digit_runs;
use support::*;

const HOME_IP: &str = "198.51.100.23";

fn events_of(system: &TestSystem, topics: &[&str]) -> Vec<Value> {
    topics
        .iter()
        .flat_map(|topic| read_topic(&system.kafka, topic))
        .map(|(_, value)| value)
        .collect()
}

fn all_events(system: &TestSystem) -> Vec<Value> {
    let topics = system.kafka.topics();
    events_of(system, &topics.event_topics())
}

/// 1. First login: mfa_required, the code arrives by email, verifying it approves the login,
/// and the event log holds the whole chain under one attempt_id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_login_requires_mfa_and_the_emailed_code_approves_it() {
    let system = spawn_system().await;
    let email = unique_email("first");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let login = system
        .login(&email, PASSWORD, Some("laptop-1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.body["status"], "mfa_required");
    let attempt_id = login.body["attempt_id"].as_str().unwrap().to_owned();
    let challenge_id = login.body["challenge_id"].as_str().unwrap().to_owned();
    assert!(login.body["expires_at"].is_string());

    let emails = system.mail.wait_for_emails(&email, 1).await;
    let code = support::mail::code_in(&emails[0].text).expect("the email holds the code");
    assert!(emails[0].text.contains("10 minutes"), "{}", emails[0].text);
    assert!(emails[0].text.contains("web Dashboard"));
    assert!(emails[0].text.contains("Chrome"));
    assert!(emails[0].text.contains(HOME_IP));
    assert!(emails[0].text.contains("Not you?"));
    assert!(emails[0].html.contains(&code));
    assert!(
        emails[0].message_id.contains(&challenge_id),
        "stable Message-ID: {}",
        emails[0].message_id
    );

    let verified = system.verify(&challenge_id, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["status"], "approved");
    assert_eq!(verified.body["attempt_id"], attempt_id.as_str());
    assert_eq!(verified.body["user_id"], user_id.as_str());

    // The stored decision follows, once login-intake read the final approval.
    let mut approved = Value::Null;
    for _ in 0..100 {
        approved = system.get_login(&attempt_id).await.body;
        if approved["approved_after_mfa"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(approved["status"], "approved", "{approved}");
    assert_eq!(approved["approved_after_mfa"], true);

    let chain: Vec<Value> = all_events(&system)
        .into_iter()
        .filter(|event| event["attempt_id"] == attempt_id.as_str())
        .collect();
    let types: Vec<&str> = chain
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "LoginAttempted",
        "MfaRequired",
        "CodeSent",
        "MfaSucceeded",
        "LoginApproved",
    ] {
        assert_eq!(
            types.iter().filter(|t| **t == expected).count(),
            1,
            "{expected} once in {types:?}"
        );
    }
    // Each event names its cause, back to the LoginAttempted, whose cause is null.
    let by_id = |id: &Value| chain.iter().find(|e| &e["event_id"] == id).cloned();
    let approval = chain
        .iter()
        .find(|e| e["event_type"] == "LoginApproved")
        .unwrap();
    assert_eq!(approval["payload"]["approved_after_mfa"], true);
    let mut walked = vec![];
    let mut current = approval.clone();
    while !current["causation_id"].is_null() {
        walked.push(current["event_type"].as_str().unwrap().to_owned());
        current = by_id(&current["causation_id"]).expect("the cause is in the log");
    }
    walked.push(current["event_type"].as_str().unwrap().to_owned());
    assert_eq!(
        walked,
        [
            "LoginApproved",
            "MfaSucceeded",
            "MfaRequired",
            "LoginAttempted"
        ]
    );
}

/// 2 and 3. The same device, network and browser again: approved with no email. What a
/// stranger would look like (a device and a network the user never had): mfa_required. The
/// risk model (issue 3) tells a user's own changes from a stranger: a known device on a new
/// network (ISP churn) is approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_context_is_approved_and_a_new_device_is_challenged() {
    let system = spawn_system().await;
    let (email, _) = system
        .enrolled_user("laptop-1", HOME_IP, CHROME_WINDOWS)
        .await;

    // Another address in the same /24, and a newer Chrome: still the same context.
    let again = system
        .login(
            &email,
            PASSWORD,
            Some("laptop-1"),
            "198.51.100.99",
            &CHROME_WINDOWS.replace("120.0", "121.0"),
        )
        .await;
    assert_eq!(again.body["status"], "approved", "{}", again.body);
    assert_eq!(again.body["approved_after_mfa"], false);

    let new_device = system
        .login(
            &email,
            PASSWORD,
            Some("laptop-2"),
            "203.0.113.5",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        new_device.body["status"], "mfa_required",
        "{}",
        new_device.body
    );
    let no_device_new_browser = system
        .login(&email, PASSWORD, None, "192.0.2.44", FIREFOX_LINUX)
        .await;
    assert_eq!(
        no_device_new_browser.body["status"], "mfa_required",
        "{}",
        no_device_new_browser.body
    );
    let known_device_elsewhere = system
        .login(
            &email,
            PASSWORD,
            Some("laptop-1"),
            "203.0.113.77",
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        known_device_elsewhere.body["status"], "approved",
        "{}",
        known_device_elsewhere.body
    );

    // One email for enrolment, one per challenge; none for the approved logins.
    system.mail.wait_for_emails(&email, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(system.mail.emails_to(&email).await.len(), 3);
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

/// 6. A wrong password and an unknown email get the same answer, and no email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_look_the_same() {
    let system = spawn_system().await;
    let email = unique_email("victim");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let wrong = system
        .login(
            &email,
            "not the password",
            Some("d1"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    let unknown = system
        .login(
            &unique_email("nobody"),
            PASSWORD,
            Some("d1"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    let strip = |mut body: Value| {
        body.as_object_mut().unwrap().remove("attempt_id");
        body
    };
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.status, 200);
    assert_eq!(strip(wrong.body.clone()), strip(unknown.body.clone()));
    assert_eq!(wrong.body["status"], "rejected");
    assert_eq!(wrong.body["reason"], "invalid_credentials");

    // Rejections never lead to a challenge, so no email can follow.
    let events = all_events(&system);
    for attempt in [&wrong.body["attempt_id"], &unknown.body["attempt_id"]] {
        let types: Vec<&str> = events
            .iter()
            .filter(|e| &e["attempt_id"] == attempt)
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types.iter().filter(|t| **t == "LoginRejected").count(),
            1,
            "{types:?}"
        );
        assert!(!types.contains(&"MfaRequired"));
    }
    assert!(system.mail.emails_to(&email).await.is_empty());
}

/// 7. SSO: a privileged user on a new device must do MFA; a non-privileged user is approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_sso_users_do_mfa_and_others_do_not() {
    let system = spawn_system().await;
    let admin = unique_email("admin");
    let member = unique_email("member");
    system.create_user(&admin, None, "acme", true).await;
    system.create_user(&member, None, "acme", false).await;

    for method in ["sso", "google"] {
        let sso = |email: &str| {
            json!({ "email": email, "auth_method": method, "platform": "workspace",
                    "context": { "ip": HOME_IP, "user_agent": CHROME_WINDOWS, "device_id": format!("new-{method}") } })
        };
        let admin_login = system.post_login(sso(&admin)).await;
        assert_eq!(
            admin_login.body["status"], "mfa_required",
            "{}",
            admin_login.body
        );
        let member_login = system.post_login(sso(&member)).await;
        assert_eq!(
            member_login.body["status"], "approved",
            "{}",
            member_login.body
        );
    }
    system.mail.wait_for_emails(&admin, 2).await;

    // A password is never accepted alongside SSO, and a password login needs one.
    let with_password = system
        .post_login(
            json!({ "email": admin, "auth_method": "sso", "password": "x", "platform": "ios",
                            "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE } }),
        )
        .await;
    assert_eq!(with_password.status, 422);
    let without = system
        .post_login(json!({ "email": admin, "platform": "ios", "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE } }))
        .await;
    assert_eq!(without.status, 422);
    assert_eq!(without.body["error"], "invalid_request");
}

/// 8. Every platform is accepted; bad requests get clear 4xx errors and the service keeps
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_and_bad_requests() {
    let system = spawn_system().await;
    let email = unique_email("platforms");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    for platform in ["dashboard", "workspace", "ios", "android"] {
        let answer = system
            .post_login(json!({ "email": email, "password": PASSWORD, "platform": platform,
                                "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE, "device_id": platform } }))
            .await;
        assert_eq!(answer.status, 200, "{platform}: {}", answer.body);
        assert_eq!(answer.body["status"], "mfa_required");
    }

    let url = format!("{}/v1/logins", system.intake_url);
    let valid = json!({ "email": email, "password": PASSWORD, "platform": "ios",
                        "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE } });
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
    let still = system.post_login(valid).await;
    assert_eq!(
        still.status, 200,
        "the service keeps serving: {}",
        still.body
    );

    // Health, readiness and the API documents.
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

/// 9. A redelivered MfaRequired sends one email, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_mfa_required_sends_one_email() {
    let system = spawn_system().await;
    let email = unique_email("redelivery");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge_id = login.body["challenge_id"].as_str().unwrap().to_owned();
    system.mail.wait_for_emails(&email, 1).await;
    let topics = system.kafka.topics();
    let code_sent = |v: &Value| {
        v["event_type"] == "CodeSent" && v["payload"]["challenge_id"] == challenge_id.as_str()
    };
    wait_for_message(&system.kafka, &topics.challenges, code_sent).await;

    let required = read_topic(&system.kafka, &topics.risk_decisions)
        .into_iter()
        .find(|(_, v)| {
            v["event_type"] == "MfaRequired"
                && v["payload"]["challenge_id"] == challenge_id.as_str()
        })
        .expect("the MfaRequired is on the topic");
    produce(
        &system.kafka,
        &topics.risk_decisions,
        &user_id,
        required.1.to_string().as_bytes(),
    )
    .await;

    // The code worker answers the duplicate by publishing the recorded CodeSent again: once
    // two are on the topic, it has handled the duplicate.
    for _ in 0..100 {
        let sent = read_topic(&system.kafka, &topics.challenges)
            .into_iter()
            .filter(|(_, v)| code_sent(v))
            .count();
        if sent >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent: Vec<Value> = read_topic(&system.kafka, &topics.challenges)
        .into_iter()
        .map(|(_, v)| v)
        .filter(code_sent)
        .collect();
    assert_eq!(sent.len(), 2, "the duplicate was handled");
    assert_eq!(
        sent[0]["event_id"], sent[1]["event_id"],
        "the same CodeSent, republished"
    );
    assert_eq!(
        system.mail.emails_to(&email).await.len(),
        1,
        "one email, not two"
    );
}

/// 10. The event topics hold only documented event types, each valid against its committed
/// JSON Schema, and no code or password anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_is_schema_valid_and_holds_no_secrets() {
    let system = spawn_system().await;
    let email = unique_email("audit");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    let code = system.mail.wait_for_code(&email, 1).await;
    let wrong = wrong_code(&code);
    system.verify(&challenge, wrong).await;
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    system
        .login(
            &email,
            "a wrong password",
            Some("d1"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    let second = system
        .login(&email, PASSWORD, Some("d2"), "203.0.113.5", FIREFOX_LINUX)
        .await;
    let second_code = system.mail.wait_for_code(&email, 2).await;
    let topics = system.kafka.topics();
    let second_challenge = second.body["challenge_id"].as_str().unwrap().to_owned();
    wait_for_message(&system.kafka, &topics.challenges, |v| {
        v["payload"]["challenge_id"] == second_challenge.as_str()
    })
    .await;

    let schemas_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let events = all_events(&system);
    assert!(events.len() >= 10, "{} events", events.len());
    let mut seen = HashSet::new();
    for event in &events {
        let event_type = event["event_type"]
            .as_str()
            .expect("every event has a type");
        seen.insert(event_type.to_owned());
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(schemas_dir.join(format!("{event_type}.schema.json")))
                .unwrap_or_else(|_| panic!("{event_type} is not a documented event type")),
        )
        .unwrap();
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        let errors: Vec<String> = validator
            .iter_errors(event)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{event_type} does not match its schema: {errors:?}\n{event}"
        );

        let text = event.to_string();
        for secret in [PASSWORD, "a wrong password"] {
            assert!(!text.contains(secret), "a password in {text}");
        }
        for code in [&code, &second_code, &wrong.to_owned()] {
            assert!(!digit_runs(event).contains(code), "a code in {text}");
        }
    }
    for expected in [
        "LoginAttempted",
        "MfaRequired",
        "CodeSent",
        "MfaFailed",
        "MfaSucceeded",
        "LoginApproved",
        "LoginRejected",
    ] {
        assert!(seen.contains(expected), "{expected} missing from {seen:?}");
    }
}

/// 11. A client backend publishes an SSO login straight to Kafka and gets its decision on the
/// decisions topic; a malformed request goes to the dead-letter topic with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_logins_published_to_kafka_get_a_decision() {
    let system = spawn_system().await;
    let member = unique_email("kafka-member");
    let admin = unique_email("kafka-admin");
    let member_id = system.create_user(&member, None, "sso-co", false).await;
    system.create_user(&admin, None, "sso-co", true).await;
    let topics = system.kafka.topics();

    // Publishes an SSO login request as a client backend would; returns its request_id.
    let request = |email: String, company: &'static str| {
        let kafka = system.kafka.clone();
        let topic = topics.login_requests.clone();
        async move {
            let request_id = uuid::Uuid::now_v7().to_string();
            let body = json!({ "request_id": request_id, "email": email, "company_id": company, "auth_method": "sso",
                               "platform": "android", "context": { "ip": HOME_IP, "user_agent": "AcmeApp/5.2 (Android 14)", "device_id": "phone-1" } });
            produce(&kafka, &topic, "any-key", body.to_string().as_bytes()).await;
            request_id
        }
    };
    let member_request = request(member.clone(), "sso-co").await;
    let admin_request = request(admin.clone(), "sso-co").await;
    let wrong_company = request(member.clone(), "other-co").await;
    produce(
        &system.kafka,
        &topics.login_requests,
        "any-key",
        br#"{"email":"x@example.com","auth_method":"password","password":"hunter2"}"#,
    )
    .await;

    let decision_for = |id: String| move |v: &Value| v["attempt_id"] == id.as_str();
    let member_decision = wait_for_message(
        &system.kafka,
        &topics.risk_decisions,
        decision_for(member_request),
    )
    .await;
    assert_eq!(member_decision["event_type"], "LoginApproved");
    assert_eq!(member_decision["payload"]["user_id"], member_id.as_str());
    let admin_decision = wait_for_message(
        &system.kafka,
        &topics.risk_decisions,
        decision_for(admin_request),
    )
    .await;
    assert_eq!(admin_decision["event_type"], "MfaRequired");
    let wrong_decision = wait_for_message(
        &system.kafka,
        &topics.risk_decisions,
        decision_for(wrong_company),
    )
    .await;
    assert_eq!(
        wrong_decision["event_type"], "LoginRejected",
        "an account outside the named company is unknown"
    );

    // The LoginAttempted was built by login-intake: privileged looked up, time stamped.
    let attempted = read_topic(&system.kafka, &topics.login_attempts)
        .into_iter()
        .map(|(_, v)| v)
        .find(|v| v["attempt_id"] == admin_decision["attempt_id"])
        .unwrap();
    assert_eq!(attempted["payload"]["privileged"], true);
    assert_eq!(attempted["payload"]["auth_method"], "sso");
    assert_eq!(attempted["producer"], "login-intake");

    let dead = wait_for_message(&system.kafka, &topics.dead_letters, |v| {
        v["source_topic"] == topics.login_requests.as_str()
    })
    .await;
    assert!(
        dead["reason"]
            .as_str()
            .unwrap()
            .contains("invalid login request"),
        "{dead}"
    );
    assert!(
        !dead.to_string().contains("hunter2"),
        "dead letters do not copy the message"
    );
}

/// Housekeeping prunes the short-lived tables, and only the rows no reader needs any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_prunes_only_rows_nobody_needs() {
    let system = spawn_system().await;
    let pool = &system.pool;
    let now = chrono::Utc::now();
    let ago = |hours: i64| now - chrono::Duration::hours(hours);
    let id = uuid::Uuid::new_v4;
    // (table, insert taking a row id and a timestamp, how old the stale row is)
    let tables: [(&str, &str, chrono::DateTime<chrono::Utc>); 8] = [
        ("rate_limit_counters", "INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES ($1::text, $2, 1)", ago(3)),
        ("login_attempts", "INSERT INTO login_attempts (attempt_id, created_at) VALUES ($1, $2)", ago(8 * 24)),
        ("risk_failed_attempts", "INSERT INTO risk_failed_attempts (attempt_id, account, ip, occurred_at) VALUES ($1, $1::text, '10.0.0.1', $2)", ago(2)),
        ("risk_failed_codes", "INSERT INTO risk_failed_codes (event_id, user_id, occurred_at) VALUES ($1, $1, $2)", ago(25)),
        ("risk_challenges", "INSERT INTO risk_challenges (challenge_id, user_id, issued_at, expires_at) VALUES ($1, $1, $2, $2)", ago(3)),
        ("risk_decisions", "INSERT INTO risk_decisions (attempt_id, decision_event, created_at) VALUES ($1, '{}', $2)", ago(8 * 24)),
        ("risk_login_history", "INSERT INTO risk_login_history (attempt_id, user_id, occurred_at, features) VALUES ($1, $1, $2, '{}')", ago(181 * 24)),
        ("challenges", "INSERT INTO challenges (challenge_id, attempt_id, user_id, code_hash, expires_at, mfa_required_event_id, created_at) VALUES ($1, $1, $1, '\\x00', $2, $1, $2)", ago(26)),
    ];
    for (_, insert, stale) in &tables {
        for at in [*stale, now] {
            sqlx::query(insert)
                .bind(id())
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
    }

    let mut sweeps = login_intake::housekeeping::sweeps(&Options::default().rate_limits);
    sweeps.extend(risk_worker::housekeeping::sweeps(
        &risk_worker::rules::Policy::default(),
    ));
    sweeps.extend(code_worker::housekeeping::sweeps());
    let removed = mfa_store::housekeeping::sweep_once(pool, &sweeps, now)
        .await
        .unwrap();

    for (table, _, _) in &tables {
        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(left, 1, "{table}: only the fresh row stays");
        assert!(removed.contains(&(*table, 1)), "{table}: {removed:?}");
    }
}

/// A retry with the same Idempotency-Key gets the first answer again and repeats nothing: no
/// second attempt or email for a login, no extra try for a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_an_idempotency_key_repeat_nothing() {
    let system = spawn_system().await;
    let email = unique_email("retry");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let body = json!({ "email": email, "password": PASSWORD, "platform": "ios",
                       "context": { "ip": HOME_IP, "user_agent": SAFARI_IPHONE, "device_id": "phone" } });
    let send = |url: String, key: &'static str, body: Value| {
        system
            .http
            .post(url)
            .bearer_auth(&system.api_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let login_url = format!("{}/v1/logins", system.intake_url);

    let first = send(login_url.clone(), "login-1", body.clone())
        .await
        .unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = send(login_url.clone(), "login-1", body.clone())
        .await
        .unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first, "the same answer, the same attempt");
    let attempts = read_topic(&system.kafka, &system.kafka.topics().login_attempts).len();
    assert_eq!(attempts, 1, "one LoginAttempted for two requests");

    let mut other = body.clone();
    other["platform"] = "android".into();
    let reused = send(login_url, "login-1", other).await.unwrap();
    assert_eq!(reused.status(), 422);
    let reused: Value = reused.json().await.unwrap();
    assert_eq!(reused["error"], "idempotency_key_reused");

    // A wrong code retried with its key spends one try, not two.
    let challenge = first["challenge_id"].as_str().unwrap();
    let code = system.mail.wait_for_code(&email, 1).await;
    let wrong = wrong_code(&code);
    let verify_url = format!("{}/v1/challenges/{challenge}/verify", system.verifier_url);
    for _ in 0..2 {
        let answer: Value = send(verify_url.clone(), "verify-1", json!({ "code": wrong }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["attempts_remaining"], 4, "{answer}");
    }
    let next: Value = send(verify_url.clone(), "verify-2", json!({ "code": wrong }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        next["attempts_remaining"], 3,
        "a new key is a new try: {next}"
    );
    for _ in 0..2 {
        let approved = send(verify_url.clone(), "verify-3", json!({ "code": code }))
            .await
            .unwrap();
        assert_eq!(
            approved.status(),
            200,
            "a retried success is replayed, not already_used"
        );
    }
    assert_eq!(system.mail.emails_to(&email).await.len(), 1);
}

/// Issue 3: `risk-worker replay` over the event log decides exactly as the live worker did:
/// the same decision type and the same risk (score, level, reasons, model version) for
/// every login, learning from the same approvals and MFA results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_worker_and_replay_decide_alike() {
    use risk_worker::geo::GeoIp;
    use risk_worker::replay::Replay;
    use shared::events::Envelope;

    // No email throttling: replay does not cap emails, so every challenge is a new code.
    let system = spawn_system_with(Options {
        code_caps: CodeCaps {
            min_gap: Duration::ZERO,
            emails_per_hour: 1000,
            ..CodeCaps::default()
        },
        ..Options::default()
    })
    .await;
    let alice = unique_email("alice");
    let alice_id = system
        .create_user(&alice, Some(PASSWORD), "acme", false)
        .await;
    let bob = unique_email("bob");
    let bob_id = system
        .create_user(&bob, Some(PASSWORD), "acme", false)
        .await;
    let mut driver = LoginDriver::default();
    // (who, device, address, browser, passes the challenge if asked)
    let (a, b) = ((&alice, &alice_id), (&bob, &bob_id));
    let steps = [
        (a, Some("laptop"), HOME_IP, CHROME_WINDOWS, true),
        (b, Some("phone"), "192.0.2.10", SAFARI_IPHONE, true),
        (a, Some("laptop"), HOME_IP, CHROME_WINDOWS, true),
        (a, Some("tablet"), "203.0.113.5", FIREFOX_LINUX, true),
        (b, Some("phone"), "192.0.2.10", SAFARI_IPHONE, true),
        (a, None, "203.0.113.66", CHROME_WINDOWS, false),
        (a, Some("laptop"), "192.0.2.200", CHROME_WINDOWS, true),
    ];
    let mut statuses = Vec::new();
    for ((email, user), device, ip, user_agent, pass) in steps {
        let status = driver
            .step(&system, email, user, device, ip, user_agent, pass)
            .await;
        statuses.push(status);
    }
    // Wrong passwords from an attacker's address (a burst: 5 in 15 minutes), then its login
    // with the right one.
    for _ in 0..5 {
        let wrong = system
            .login(
                &alice,
                "not the password",
                None,
                "203.0.113.66",
                CHROME_WINDOWS,
            )
            .await;
        assert_eq!(wrong.body["status"], "rejected");
    }
    statuses.push(
        driver
            .step(
                &system,
                &alice,
                &alice_id,
                Some("x"),
                "203.0.113.66",
                CHROME_WINDOWS,
                false,
            )
            .await,
    );
    assert!(statuses.contains(&"approved".to_owned()), "{statuses:?}");
    assert!(
        statuses.contains(&"mfa_required".to_owned()),
        "{statuses:?}"
    );

    // The event log, as an auditor would replay it: what the risk worker consumed, in time
    // order (the live worker consumed each before the next login, as awaited above).
    let topics = system.kafka.topics();
    let mut input: Vec<Envelope> =
        events_of(&system, &[&topics.login_attempts, &topics.verifications])
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
    input.sort_by_key(|e| (e.occurred_at, e.event_id));
    let live: std::collections::HashMap<String, Value> =
        events_of(&system, &[&topics.risk_decisions])
            .into_iter()
            .map(|v| (v["attempt_id"].as_str().unwrap().to_owned(), v))
            .collect();
    let lines: Vec<u8> = input
        .iter()
        .flat_map(|e| [e.to_json(), b"\n".to_vec()].concat())
        .collect();
    let mut output = Vec::new();
    let policy = risk_worker::rules::Policy {
        code_ttl: Options::default().code_ttl,
        ..Default::default()
    };
    Replay::new(policy, std::sync::Arc::new(GeoIp::none()))
        .run(&lines[..], &mut output)
        .unwrap();
    let replayed: Vec<Value> = output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(replayed.len(), 5 + statuses.len());
    let last = &replayed[replayed.len() - 1]["payload"]["risk"];
    assert!(
        last["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("failed_attempts_burst")),
        "{last}"
    );
    for decision in &replayed {
        let attempt = decision["attempt_id"].as_str().unwrap();
        let live = &live[attempt];
        assert_eq!(live["event_type"], decision["event_type"], "{attempt}");
        assert_eq!(
            live["payload"]["risk"], decision["payload"]["risk"],
            "{attempt}"
        );
        assert!(decision["payload"]["risk"]["score"].is_number());
    }
    // Nothing stuck in the outbox (the relay marks a row just after the broker took it).
    system
        .wait_for_count(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND $1::uuid IS NOT NULL",
            &alice_id,
            |stuck| stuck == 0,
        )
        .await;
}

/// Logs users in, passes the challenges of those meant to pass, and waits each time until
/// the risk worker learned what it should, so the next login is decided on that history.
#[derive(Default)]
struct LoginDriver {
    emails: std::collections::HashMap<String, usize>,
    learned: std::collections::HashMap<String, i64>,
}

impl LoginDriver {
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &mut self,
        system: &TestSystem,
        email: &str,
        user: &str,
        device: Option<&str>,
        ip: &str,
        user_agent: &str,
        pass: bool,
    ) -> String {
        let login = system.login(email, PASSWORD, device, ip, user_agent).await;
        let known = self.learned.entry(user.to_owned()).or_default();
        match login.body["status"].as_str().unwrap() {
            "mfa_required" => {
                let sent = self.emails.entry(email.to_owned()).or_default();
                *sent += 1;
                let code = system.mail.wait_for_code(email, *sent).await;
                if pass {
                    let challenge = login.body["challenge_id"].as_str().unwrap();
                    assert_eq!(system.verify(challenge, &code).await.status, 200);
                    *known += 1;
                }
            }
            "approved" => *known += 1,
            other => panic!("unexpected {other}: {}", login.body),
        }
        let expected = *known;
        system
            .wait_for_count(
                "SELECT count(*) FROM risk_login_history WHERE user_id = $1",
                user,
                |n| n == expected,
            )
            .await;
        login.body["status"].as_str().unwrap().to_owned()
    }
}

/// Issue 5, graceful shutdown: on the shutdown signal (what SIGTERM fires, see
/// `mfa_runtime::shutdown`) the request in flight still gets its answer, every service stops
/// within 10 s without error, and no new request is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_request_in_flight_and_stops_within_ten_seconds() {
    let system = spawn_system().await;
    let email = unique_email("shutdown");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let request = system
        .http
        .post(format!("{}/v1/logins", system.intake_url))
        .bearer_auth(&system.api_key)
        .json(
            &json!({ "email": email, "password": PASSWORD, "platform": "dashboard",
                       "context": { "ip": HOME_IP, "user_agent": CHROME_WINDOWS } }),
        );
    let in_flight = tokio::spawn(request.send());
    // The login is accepted (recorded) before the signal comes.
    system
        .wait_for_count(
            "SELECT count(*) FROM login_attempts WHERE user_id = $1",
            &user_id,
            |n| n == 1,
        )
        .await;
    let (intake_url, http) = (system.intake_url.clone(), system.http.clone());
    let stopped = system.shut_down().await;

    let answer = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert!(
        [200, 202].contains(&answer.status().as_u16()),
        "{}",
        answer.status()
    );
    for (service, outcome) in stopped {
        let (took, clean) = outcome.unwrap_or_else(|| panic!("{service} still runs after 15 s"));
        println!("{service} stopped {took:?} after the signal");
        assert!(took < Duration::from_secs(10), "{service} took {took:?}");
        assert!(clean, "{service} ended with an error");
    }
    assert!(
        http.get(format!("{intake_url}/healthz"))
            .send()
            .await
            .is_err(),
        "no new connection is taken after shutdown"
    );
}

/// Issue 5: with the database hanging or gone, login-intake answers 503 with a clear error
/// within 2 s and never hangs, its readiness says so, and it recovers by itself when the
/// database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_or_missing_database_gets_a_quick_503_and_the_service_recovers() {
    use std::time::Instant;
    use support::proxy::Mode;

    let system = spawn_system().await;
    let (email, _) = system
        .enrolled_user("laptop-1", HOME_IP, CHROME_WINDOWS)
        .await;
    let readyz = format!("{}/readyz", system.intake_url);
    for outage in [Mode::Hang, Mode::Refuse] {
        system.database_proxy.set(outage);
        let started = Instant::now();
        let login = system
            .login(&email, PASSWORD, Some("laptop-1"), HOME_IP, CHROME_WINDOWS)
            .await;
        let took = started.elapsed();
        assert_eq!(login.status, 503, "{outage:?}: {}", login.body);
        assert!(
            ["dependency_timeout", "service_unavailable"]
                .contains(&login.body["error"].as_str().unwrap_or_default()),
            "{outage:?}: {}",
            login.body
        );
        assert!(
            took < Duration::from_secs(2),
            "{outage:?}: answered after {took:?}"
        );

        let started = Instant::now();
        let ready = system.http.get(&readyz).send().await.unwrap();
        assert_eq!(ready.status(), 503, "{outage:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{outage:?}");

        system.database_proxy.set(Mode::Forward);
        let started = Instant::now();
        loop {
            let login = system
                .login(&email, PASSWORD, Some("laptop-1"), HOME_IP, CHROME_WINDOWS)
                .await;
            if login.status == 200 && login.body["status"] == "approved" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{outage:?}: not recovered: {} {}",
                login.status,
                login.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(system.http.get(&readyz).send().await.unwrap().status(), 200);
    }
}

/// Issue 5, SMTP outage: while the server is unreachable the code email waits and is retried
/// with back-off (the consumer is not held up: other logins still get their decisions); once
/// it is back the email goes out once, with `CodeSent`. An email that can't go out within the
/// retry window ends in `CodeDeliveryFailed`, and nothing is sent later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_the_email_and_a_long_one_ends_in_code_delivery_failed() {
    use support::proxy::Mode;

    let system = spawn_system_with(Options {
        email_retry: code_worker::sender::RetryPolicy {
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(500),
            retry_window: Duration::from_secs(4),
        },
        ..Options::default()
    })
    .await;
    let topics = system.kafka.topics();
    let outcome_of = |challenge: &str| {
        read_topic(&system.kafka, &topics.challenges)
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| v["payload"]["challenge_id"] == challenge)
            .map(|v| v["event_type"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // A short outage: the email arrives after it, once.
    system.smtp_proxy.set(Mode::Refuse);
    let email = unique_email("smtp-short");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(system.mail.emails_to(&email).await.is_empty());
    assert!(
        outcome_of(&challenge).is_empty(),
        "no outcome while retrying"
    );
    // Meanwhile the consumer is free: another user's login is decided.
    let other = unique_email("smtp-other");
    system
        .create_user(&other, Some(PASSWORD), "acme", false)
        .await;
    let other_login = system
        .login(&other, PASSWORD, Some("d9"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(other_login.body["status"], "mfa_required");
    system.smtp_proxy.set(Mode::Forward);
    let code = system.mail.wait_for_code(&email, 1).await;
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    wait_for_message(&system.kafka, &topics.challenges, |v| {
        v["event_type"] == "CodeSent" && v["payload"]["challenge_id"] == challenge.as_str()
    })
    .await;

    // A long outage: past the retry window, CodeDeliveryFailed, and no late email.
    system.smtp_proxy.set(Mode::Refuse);
    let email = unique_email("smtp-long");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    let failed = wait_for_message(&system.kafka, &topics.challenges, |v| {
        v["event_type"] == "CodeDeliveryFailed"
            && v["payload"]["challenge_id"] == challenge.as_str()
    })
    .await;
    assert!(
        failed["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("tries"),
        "{failed}"
    );
    system.smtp_proxy.set(Mode::Forward);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        system.mail.emails_to(&email).await.is_empty(),
        "nothing sent after giving up"
    );
    assert_eq!(outcome_of(&challenge), ["CodeDeliveryFailed"]);
}

/// Issue 5, transactional outbox: an event enqueued with a change leaves only if the change
/// commits; while the broker can't take it, it waits in the outbox (the change stays done),
/// and it is published, once, when a relay reaches the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_publishes_committed_events_once_the_broker_takes_them() {
    use mfa_bus::kafka::KafkaPublisher;
    use mfa_store::outbox::{self, OutboxRelay};
    use shared::events::{AccountChange, AccountChanged, Envelope, Event};
    use std::sync::Arc;

    let system = spawn_system().await;
    let topic = system.kafka.topics().accounts;
    let event = |n: u128| {
        Envelope::new(
            "outbox-test",
            shared::domain::AttemptId::new(),
            None,
            chrono::Utc::now(),
            Event::AccountChanged(AccountChanged {
                user_id: shared::domain::UserId::from_uuid(uuid::Uuid::from_u128(n)),
                change: AccountChange::Enabled,
            }),
        )
    };
    let (committed, rolled_back) = (event(1), event(2));
    let mut tx = system.pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, "outbox-test", &topic, "k", &committed)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = system.pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, "outbox-test", &topic, "k", &rolled_back)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    // No broker at this address: the row stays, unpublished.
    let mut unreachable = system.kafka.clone();
    unreachable.brokers = "127.0.0.1:1".into();
    let down = OutboxRelay {
        pool: system.pool.clone(),
        publisher: Arc::new(
            KafkaPublisher::with_timeout(&unreachable, Duration::from_millis(500)).unwrap(),
        ),
        producer: "outbox-test",
    };
    assert!(down.publish_batch().await.is_err());
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE producer = 'outbox-test' AND published_at IS NULL",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(waiting, 1, "only the committed event, waiting");

    let up = OutboxRelay {
        pool: system.pool.clone(),
        publisher: Arc::new(KafkaPublisher::new(&system.kafka).unwrap()),
        producer: "outbox-test",
    };
    assert_eq!(up.publish_batch().await.unwrap(), 1);
    assert_eq!(up.publish_batch().await.unwrap(), 0, "published once");
    wait_for_message(&system.kafka, &topic, |v| {
        v["event_id"] == committed.event_id.to_string()
    })
    .await;
    let on_topic: Vec<Value> = read_topic(&system.kafka, &topic)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["producer"] == "outbox-test")
        .collect();
    assert_eq!(on_topic.len(), 1, "{on_topic:?}");
    assert_eq!(on_topic[0]["event_id"], committed.event_id.to_string());
}
