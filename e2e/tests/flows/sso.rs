//! SSO logins (no password): over HTTP, privileged users do MFA; over Kafka, a client
//! backend gets its decision on the decisions topic.

use serde_json::{json, Value};

use crate::support::kafka::{produce, read_topic, wait_for_message};
use crate::support::*;

/// 7. SSO: a privileged user on a new device must do MFA; a non-privileged user is approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_sso_users_do_mfa_and_others_do_not() {
    let system = spawn_system().await;
    let admin = unique_email("admin");
    let member = unique_email("member");
    system.create_user(&admin, None, "acme", true).await;
    system.create_user(&member, None, "acme", false).await;
    // acme logs in with SSO and Google (a company accepts passwords only until told).
    let accepts = system
        .http
        .put(format!("{}/v1/admin/companies/acme", system.intake_url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "first_factors": ["password", "sso", "google"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepts.status(), 200);

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
