//! Issue 11.1: a client key's holder claiming an SSO or Google login. A company accepts the
//! first factors an admin set (passwords only until then); an account can be limited further.

use serde_json::{json, Value};

use crate::support::kafka::{produce, read_topic, wait_for_message};
use crate::support::*;

const ANDROID_APP: &str = "AcmeApp/5.2 (Android 14)";

fn federated(email: &str, method: &str, device: &str) -> Value {
    json!({ "email": email, "auth_method": method, "platform": "workspace",
            "context": { "ip": HOME_IP, "user_agent": CHROME_WINDOWS, "device_id": device } })
}

impl TestSystem {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.intake_url))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Response { status, body }
    }

    async fn set_company_factors(&self, company: &str, factors: &[&str]) {
        let path = format!("/v1/admin/companies/{company}");
        let set = self
            .admin(
                reqwest::Method::PUT,
                &path,
                Some(json!({ "first_factors": factors })),
            )
            .await;
        assert_eq!(set.status, 200, "{}", set.body);
    }
}

/// The decision event (on the risk-decisions topic) of the attempt.
async fn decision_of(system: &TestSystem, attempt_id: &str) -> Value {
    let topic = system.kafka.topics().risk_decisions;
    wait_for_message(&system.kafka, &topic, |v| v["attempt_id"] == attempt_id).await
}

/// The bypass: a non-privileged user with a password, of a company that logs in with
/// passwords only, "logged in with SSO" (or Google) by whoever holds a client key, on a new
/// device and network, was approved with no factor at all. Now it is rejected with its own
/// reason, for a known and an unknown email alike (no enumeration), the attempt and its
/// decision are on the event log, and no approval is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_claim_for_a_company_that_accepts_only_passwords_is_rejected() {
    let system = spawn_system().await;
    let victim = unique_email("victim");
    system
        .create_user(&victim, Some(PASSWORD), "acme", false)
        .await;

    let mut attempts = Vec::new();
    for (email, method) in [
        (victim.clone(), "sso"),
        (victim.clone(), "google"),
        (unique_email("ghost"), "sso"),
    ] {
        let claimed = system
            .post_login(federated(&email, method, "attacker-laptop"))
            .await;
        assert_eq!(claimed.status, 200, "{}", claimed.body);
        assert_eq!(
            claimed.body["status"], "rejected",
            "{method}: {}",
            claimed.body
        );
        assert_eq!(claimed.body["reason"], "auth_method_not_allowed");
        let attempt_id = claimed.body["attempt_id"].as_str().unwrap().to_owned();
        let decision = decision_of(&system, &attempt_id).await;
        assert_eq!(decision["event_type"], "LoginRejected");
        assert_eq!(decision["payload"]["reason"], "auth_method_not_allowed");
        attempts.push(attempt_id);
    }
    let attempted: Vec<Value> = read_topic(&system.kafka, &system.kafka.topics().login_attempts)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| attempts.contains(&v["attempt_id"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(attempted.len(), 3, "each attempt is recorded");
    for attempt in &attempted {
        assert_eq!(attempt["payload"]["primary_factor"], "not_accepted");
    }
    let approvals = read_topic(&system.kafka, &system.kafka.topics().risk_decisions)
        .into_iter()
        .filter(|(_, v)| v["event_type"] == "LoginApproved")
        .count();
    assert_eq!(approvals, 0, "nothing was approved");
    assert!(system.mail.emails_to(&victim).await.is_empty());

    // The victim's own password still works.
    let login = system
        .login(
            &victim,
            PASSWORD,
            Some("own-laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
}

/// A company that accepts SSO: its non-privileged SSO logins are approved at low risk as
/// before, its privileged ones still need a code, and Google, which it does not accept, is
/// rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_that_accepts_sso_approves_non_privileged_sso_logins() {
    let system = spawn_system().await;
    system
        .set_company_factors("acme", &["password", "sso"])
        .await;
    // Known device, network and browser: low risk.
    let (member, _) = system
        .enrolled_user("laptop", HOME_IP, CHROME_WINDOWS)
        .await;
    let admin = unique_email("admin");
    system
        .create_user(&admin, Some(PASSWORD), "acme", true)
        .await;

    let approved = system.post_login(federated(&member, "sso", "laptop")).await;
    assert_eq!(approved.body["status"], "approved", "{}", approved.body);
    let challenged = system
        .post_login(federated(&admin, "sso", "new-laptop"))
        .await;
    assert_eq!(
        challenged.body["status"], "mfa_required",
        "{}",
        challenged.body
    );
    let google = system
        .post_login(federated(&member, "google", "laptop"))
        .await;
    assert_eq!(google.body["status"], "rejected", "{}", google.body);
    assert_eq!(google.body["reason"], "auth_method_not_allowed");
}

/// An account limited to passwords, in a company that accepts SSO: an SSO claim for it is
/// answered exactly like one for an email nobody has (`invalid_credentials`), so the answer
/// tells a key holder nothing about the account; its password still logs it in. Lifting the
/// limit lets SSO in again; each change is announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_limited_to_passwords_refuses_sso_like_an_unknown_email() {
    let system = spawn_system().await;
    system
        .set_company_factors("acme", &["password", "sso"])
        .await;
    let (limited, user_id) = system.enrolled_user("own", HOME_IP, CHROME_WINDOWS).await;
    let path = format!("/v1/admin/users/{user_id}/first-factors");
    let limit = system
        .admin(
            reqwest::Method::PUT,
            &path,
            Some(json!({ "first_factors": ["password"] })),
        )
        .await;
    assert_eq!(limit.status, 200, "{}", limit.body);
    assert_eq!(limit.body["first_factors"], json!(["password"]));
    assert_eq!(limit.body["accepted"], json!(["password"]));

    let claimed = system
        .post_login(federated(&limited, "sso", "attacker"))
        .await;
    let unknown = system
        .post_login(federated(&unique_email("ghost"), "sso", "attacker"))
        .await;
    for answer in [&claimed, &unknown] {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["status"], "rejected", "{}", answer.body);
        assert_eq!(answer.body["reason"], "invalid_credentials");
    }
    let same_shape = |body: &Value| {
        let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(same_shape(&claimed.body), same_shape(&unknown.body));
    let login = system
        .login(&limited, PASSWORD, Some("own"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.body["status"], "approved", "{}", login.body);

    let lifted = system
        .admin(
            reqwest::Method::PUT,
            &path,
            Some(json!({ "first_factors": null })),
        )
        .await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert_eq!(lifted.body["first_factors"], Value::Null);
    assert_eq!(lifted.body["accepted"], json!(["password", "sso"]));
    let sso = system.post_login(federated(&limited, "sso", "own")).await;
    assert_eq!(sso.body["status"], "approved", "{}", sso.body);

    let accounts = system.kafka.topics().accounts;
    for accepted in [json!(["password"]), json!(["password", "sso"])] {
        let announced = wait_for_message(&system.kafka, &accounts, |v| {
            v["payload"]["user_id"] == user_id.as_str()
                && v["payload"]["change"]["first_factors_changed"]["accepted"] == accepted
        })
        .await;
        assert_eq!(announced["producer"], "login-intake");
    }
}

/// The Kafka ingress: a client backend's SSO request for a company that accepts only
/// passwords gets `LoginRejected` (`auth_method_not_allowed`) on the decisions topic; once
/// the company accepts SSO, the same request is approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_login_requests_obey_the_companys_first_factors() {
    let system = spawn_system().await;
    let (member, _) = system.enrolled_user("phone-1", HOME_IP, ANDROID_APP).await;
    let topics = system.kafka.topics();
    let request = |email: String| {
        let kafka = system.kafka.clone();
        let topic = topics.login_requests.clone();
        async move {
            let request_id = uuid::Uuid::now_v7().to_string();
            let body = json!({ "request_id": request_id, "email": email, "company_id": "acme", "auth_method": "sso",
                               "platform": "android", "context": { "ip": HOME_IP, "user_agent": ANDROID_APP, "device_id": "phone-1" } });
            produce(&kafka, &topic, "any-key", body.to_string().as_bytes()).await;
            request_id
        }
    };

    let refused = request(member.clone()).await;
    let decision = decision_of(&system, &refused).await;
    assert_eq!(decision["event_type"], "LoginRejected", "{decision}");
    assert_eq!(decision["payload"]["reason"], "auth_method_not_allowed");

    system
        .set_company_factors("acme", &["password", "sso"])
        .await;
    let accepted = request(member.clone()).await;
    let decision = decision_of(&system, &accepted).await;
    assert_eq!(decision["event_type"], "LoginApproved", "{decision}");
}

/// The admin API for first factors: an unknown factor or an empty list is a 422 with a code,
/// a company is read back as set, an unknown company or user is a 404, a new company accepts
/// passwords only, and `company_uses_sso` still means passwords and SSO. A company's change is
/// announced to each of its accounts whose accepted set changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_validates_and_announces_first_factors() {
    use reqwest::Method;

    let system = spawn_system().await;
    for (body, fragment) in [
        (
            json!({ "first_factors": ["password", "saml"] }),
            "unknown variant",
        ),
        (json!({ "first_factors": [] }), "at least one"),
        (json!({ "first_factors": "sso" }), "invalid type"),
        (
            json!({ "first_factors": ["sso"], "extra": 1 }),
            "unknown field",
        ),
        (json!({}), "missing field"),
    ] {
        let refused = system
            .admin(Method::PUT, "/v1/admin/companies/acme", Some(body.clone()))
            .await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(refused.body["error"], "invalid_request", "{body}");
        let message = refused.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(fragment), "{body}: {message}");
    }
    let bad_id = system
        .admin(
            Method::PUT,
            "/v1/admin/companies/Not%20A%20Company",
            Some(json!({ "first_factors": ["sso"] })),
        )
        .await;
    assert_eq!(bad_id.status, 422, "{}", bad_id.body);
    assert_eq!(bad_id.body["error"], "invalid_request");

    let acme = system
        .admin(Method::GET, "/v1/admin/companies/acme", None)
        .await;
    assert_eq!(acme.status, 200, "{}", acme.body);
    assert_eq!(
        acme.body["first_factors"],
        json!(["password"]),
        "a new company"
    );
    let unknown = system
        .admin(Method::GET, "/v1/admin/companies/nobody-co", None)
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"], "unknown_company");

    let first = unique_email("first");
    let second = unique_email("second");
    let first_id = system
        .create_user(&first, Some(PASSWORD), "acme", false)
        .await;
    let second_id = system
        .create_user(&second, Some(PASSWORD), "acme", false)
        .await;
    let path = format!("/v1/admin/users/{second_id}/first-factors");
    for body in [
        json!({ "first_factors": [] }),
        json!({ "first_factors": ["otp"] }),
    ] {
        let refused = system.admin(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(refused.body["error"], "invalid_request");
    }
    let nobody = system
        .admin(
            Method::PUT,
            &format!("/v1/admin/users/{}/first-factors", uuid::Uuid::now_v7()),
            Some(json!({ "first_factors": ["password"] })),
        )
        .await;
    assert_eq!(nobody.status, 404);
    assert_eq!(nobody.body["error"], "unknown_user");
    let limited = system
        .admin(
            Method::PUT,
            &path,
            Some(json!({ "first_factors": ["password"] })),
        )
        .await;
    assert_eq!(limited.status, 200, "{}", limited.body);

    let set = system
        .admin(
            Method::PUT,
            "/v1/admin/companies/acme",
            Some(json!({ "first_factors": ["google", "password", "google"] })),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["first_factors"], json!(["password", "google"]));
    let acme = system
        .admin(Method::GET, "/v1/admin/companies/acme", None)
        .await;
    assert_eq!(acme.body["first_factors"], json!(["password", "google"]));

    // Only the account whose accepted set changed is told (the other is limited to
    // passwords, which acme accepted before and after).
    let accounts = system.kafka.topics().accounts;
    let changed = wait_for_message(&system.kafka, &accounts, |v| {
        v["payload"]["user_id"] == first_id.as_str()
    })
    .await;
    assert_eq!(changed["event_type"], "AccountChanged");
    assert_eq!(
        changed["payload"]["change"],
        json!({ "first_factors_changed": { "accepted": ["password", "google"] } })
    );
    let of_second = read_topic(&system.kafka, &accounts)
        .into_iter()
        .filter(|(_, v)| v["payload"]["user_id"] == second_id.as_str())
        .count();
    assert_eq!(of_second, 0, "the limited account's set did not change");

    // The compatibility flag: a company created with it accepts passwords and SSO; false
    // leaves a company as it is.
    let sso_user = unique_email("sso-co");
    let created = system
        .admin(
            Method::POST,
            "/v1/admin/users",
            Some(json!({ "email": sso_user, "company_id": "sso-co", "company_uses_sso": true })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let sso_co = system
        .admin(Method::GET, "/v1/admin/companies/sso-co", None)
        .await;
    assert_eq!(sso_co.body["first_factors"], json!(["password", "sso"]));
    system
        .create_user(&unique_email("plain"), Some(PASSWORD), "acme", false)
        .await;
    let acme = system
        .admin(Method::GET, "/v1/admin/companies/acme", None)
        .await;
    assert_eq!(acme.body["first_factors"], json!(["password", "google"]));

    // The OpenAPI document describes the new routes.
    let openapi: Value = system
        .http
        .get(format!("{}/openapi.json", system.intake_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for route in [
        "/v1/admin/companies/{company_id}",
        "/v1/admin/users/{user_id}/first-factors",
    ] {
        assert!(openapi["paths"][route].is_object(), "{route} documented");
    }
    assert!(openapi["paths"]["/v1/admin/companies/{company_id}"]["get"].is_object());
}
