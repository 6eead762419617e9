//! Issue 11, the risk side: a non-privileged SSO or Google login is scored like any other,
//! and a high-risk one asks for a code (medium and low stay approved: company policy).

use serde_json::{json, Value};

use crate::support::kafka::wait_for_message;
use crate::support::*;

/// The address of a password-spraying run: wrong passwords on five accounts from it make
/// every login from it high risk (`many_accounts_from_ip`).
const SPRAYING_IP: &str = "203.0.113.150";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_risk_non_privileged_sso_login_asks_for_a_code() {
    let system = spawn_system().await;
    let member = unique_email("sso-risk");
    system.create_user(&member, None, "acme", false).await;
    let accepts = system
        .http
        .put(format!("{}/v1/admin/companies/acme", system.intake_url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "first_factors": ["password", "sso", "google"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepts.status(), 200);
    let sso = |method: &str, ip: &str, device: &str| {
        json!({ "email": member, "auth_method": method, "platform": "workspace",
                "context": { "ip": ip, "user_agent": CHROME_WINDOWS, "device_id": device } })
    };

    // A first SSO login from home: scored (medium: a first login), and approved.
    let usual = system.post_login(sso("sso", HOME_IP, "laptop")).await;
    assert_eq!(usual.body["status"], "approved", "{}", usual.body);
    let topics = system.kafka.topics();
    let decision_of = |response: &Response| {
        let attempt = response.body["attempt_id"].as_str().unwrap().to_owned();
        wait_for_message(&system.kafka, &topics.risk_decisions, move |v: &Value| {
            v["attempt_id"] == attempt.as_str()
        })
    };
    let approved = decision_of(&usual).await;
    assert_eq!(approved["payload"]["risk"]["level"], "medium", "{approved}");

    // Password spraying from an address: five accounts that do not exist.
    for i in 0..5 {
        let sprayed = system
            .login(
                &unique_email(&format!("sprayed-{i}")),
                "Summer2026!",
                None,
                SPRAYING_IP,
                CHROME_WINDOWS,
            )
            .await;
        assert_eq!(sprayed.body["status"], "rejected", "{}", sprayed.body);
    }

    // The member's identity used from there, on a new device: high risk, so a code, for
    // SSO and Google alike; the code approves the login.
    for (sent, method) in ["sso", "google"].into_iter().enumerate() {
        let risky = system
            .post_login(sso(method, SPRAYING_IP, &format!("new-{method}")))
            .await;
        assert_eq!(risky.body["status"], "mfa_required", "{}", risky.body);
        let decision = decision_of(&risky).await;
        let risk = &decision["payload"]["risk"];
        assert_eq!(risk["level"], "high", "{decision}");
        assert!(
            risk["reasons"]
                .as_array()
                .unwrap()
                .contains(&json!("many_accounts_from_ip")),
            "{decision}"
        );
        let code = system.mail.wait_for_code(&member, sent + 1).await;
        let challenge = risky.body["challenge_id"].as_str().unwrap();
        let verified = system.verify(challenge, &code).await;
        assert_eq!(verified.status, 200, "{}", verified.body);
    }
}
