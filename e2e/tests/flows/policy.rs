//! Issue 17, policy per company: `PUT`/`GET /v1/admin/companies/{company_id}/risk-policy`
//! (validated, versioned, announced as `RiskPolicyChanged`), and the risk worker deciding the
//! company's next logins under it: a trusted network, observe-only (approved, the would-have
//! decision in the log, no email, nothing learned), a threshold.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::kafka::wait_for_message;
use crate::support::*;

const FIREFOX_MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0";

async fn put_policy(
    system: &TestSystem,
    company: &str,
    key: Option<&str>,
    body: Value,
) -> Response {
    let mut request = system
        .http
        .put(format!(
            "{}/v1/admin/companies/{company}/risk-policy",
            system.intake_url
        ))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    Response {
        status,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

async fn get_policy(system: &TestSystem, company: &str, key: Option<&str>) -> Response {
    let mut request = system.http.get(format!(
        "{}/v1/admin/companies/{company}/risk-policy",
        system.intake_url
    ));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    Response {
        status,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

/// Sets `acme`'s policy and waits until the risk worker consumed it (its own table, which
/// its decisions read): the announcement is a Kafka hop after the answer.
pub(crate) async fn set_and_wait(system: &TestSystem, body: Value) -> u64 {
    let set = put_policy(system, "acme", Some(ADMIN_KEY), body).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let version = set.body["version"].as_u64().unwrap();
    for _ in 0..200 {
        let learned: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM risk_company_policies WHERE company_id = 'acme'",
        )
        .fetch_optional(&system.pool)
        .await
        .unwrap();
        if learned == Some(version as i64) {
            return version;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the risk worker never learned policy version {version}");
}

/// The risk decision of a login, as the log (the risk-decisions topic) holds it.
async fn decision_of(system: &TestSystem, response: &Response) -> Value {
    let attempt = response.body["attempt_id"].as_str().unwrap().to_owned();
    wait_for_message(
        &system.kafka,
        &system.kafka.topics().risk_decisions,
        move |v| v["attempt_id"] == attempt.as_str(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_validates_versions_and_announces_a_companys_risk_policy() {
    let system = spawn_system().await;
    let policy = json!({
        "medium_threshold": 0.5, "high_threshold": 3.0, "challenge_levels": ["high", "medium"],
        "trusted_networks": ["203.0.113.0/24"], "device_known_days": 30, "observe_only": true,
    });
    // The admin key, and nothing else, may read or set it.
    assert_eq!(
        put_policy(&system, "acme", None, policy.clone())
            .await
            .status,
        401
    );
    assert_eq!(
        put_policy(&system, "acme", Some(&system.api_key), policy.clone())
            .await
            .status,
        401
    );
    assert_eq!(get_policy(&system, "acme", None).await.status, 401);
    let unknown = get_policy(&system, "nobody-here", Some(ADMIN_KEY)).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"], "unknown_company");

    let set = put_policy(&system, "acme", Some(ADMIN_KEY), policy.clone()).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["version"], 1);
    assert_eq!(
        set.body["policy"]["challenge_levels"],
        json!(["medium", "high"])
    );
    let read = get_policy(&system, "acme", Some(ADMIN_KEY)).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, set.body);
    // The same policy again changes nothing; another is version 2.
    let again = put_policy(&system, "acme", Some(ADMIN_KEY), policy.clone()).await;
    assert_eq!(again.body["version"], 1);
    let changed = put_policy(
        &system,
        "acme",
        Some(ADMIN_KEY),
        json!({"observe_only": false}),
    )
    .await;
    assert_eq!(changed.body["version"], 2);
    assert_eq!(changed.body["policy"], json!({"observe_only": false}));

    // Refused strictly, each problem with its code; nothing changes.
    for (body, code) in [
        (
            json!({"trusted_networks": ["203.0.113.1/24"]}),
            "invalid_cidr",
        ),
        (json!({"trusted_networks": ["office"]}), "invalid_cidr"),
        (
            json!({"trusted_networks": ["0.0.0.0/0"]}),
            "network_too_broad",
        ),
        (json!({"medium_threshold": 11}), "threshold_out_of_range"),
        (
            json!({"medium_threshold": 2, "high_threshold": 1}),
            "thresholds_out_of_order",
        ),
        (json!({"challenge_levels": []}), "no_challenge_level"),
        (
            json!({"challenge_levels": ["low"]}),
            "unknown_challenge_level",
        ),
        (
            json!({"device_known_days": 0}),
            "device_known_days_out_of_range",
        ),
        (json!({"observe": true}), "invalid_request"),
        (json!({"observe_only": "yes"}), "invalid_request"),
    ] {
        let refused = put_policy(&system, "acme", Some(ADMIN_KEY), body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(refused.body["error"], code, "{body}: {}", refused.body);
    }
    let invalid_company = put_policy(&system, "not a company!", Some(ADMIN_KEY), json!({})).await;
    assert_eq!(invalid_company.status, 422);
    assert_eq!(
        get_policy(&system, "acme", Some(ADMIN_KEY)).await.body["version"],
        2
    );

    // Each change announced on the accounts topic, keyed by the company.
    let topics = system.kafka.topics();
    let announced = wait_for_message(&system.kafka, &topics.accounts, |v| {
        v["event_type"] == "RiskPolicyChanged" && v["payload"]["version"] == 2
    })
    .await;
    assert_eq!(announced["payload"]["company_id"], "acme");
    assert_eq!(
        announced["payload"]["policy"],
        json!({"observe_only": false})
    );
    assert_eq!(announced["producer"], "login-intake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companys_policy_decides_its_next_logins() {
    let system = spawn_system().await;
    let (email, user_id) = system
        .enrolled_user("laptop", HOME_IP, CHROME_WINDOWS)
        .await;
    let known = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(known.body["status"], "approved", "{}", known.body);
    let plain = decision_of(&system, &known).await;
    assert!(
        plain["payload"]["risk"].get("policy_version").is_none(),
        "{plain}"
    );

    // A trusted network: a new device from the office is approved, and says under which
    // version.
    let v1 = set_and_wait(&system, json!({"trusted_networks": ["203.0.113.0/24"]})).await;
    let office = system
        .login(&email, PASSWORD, Some("phone"), "203.0.113.10", FIREFOX_MAC)
        .await;
    assert_eq!(office.body["status"], "approved", "{}", office.body);
    let decided = decision_of(&system, &office).await;
    assert_eq!(decided["payload"]["risk"]["policy_version"], v1);
    assert!(decided["payload"]["risk"]["reasons"]
        .as_array()
        .unwrap()
        .contains(&"new_device".into()));

    // Observe-only: a new device elsewhere is approved, the log says a code would have been
    // asked for, and no code is emailed; the device is not learned (asked about again).
    let v2 = set_and_wait(&system, json!({"observe_only": true})).await;
    for _ in 0..2 {
        let observed = system
            .login(&email, PASSWORD, Some("tablet"), "192.0.2.50", FIREFOX_MAC)
            .await;
        assert_eq!(observed.body["status"], "approved", "{}", observed.body);
        let decided = decision_of(&system, &observed).await;
        assert_eq!(decided["event_type"], "LoginApproved");
        let risk = &decided["payload"]["risk"];
        assert_eq!(risk["policy_version"], v2, "{decided}");
        assert_eq!(risk["observed"]["would_have"], "mfa_required", "{decided}");
        assert!(risk["reasons"]
            .as_array()
            .unwrap()
            .contains(&"new_device".into()));
    }

    // A threshold: with medium risk from a score of -10, even the known laptop is asked.
    let v3 = set_and_wait(&system, json!({"medium_threshold": -10})).await;
    let asked = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(asked.body["status"], "mfa_required", "{}", asked.body);
    let decided = decision_of(&system, &asked).await;
    assert_eq!(decided["payload"]["risk"]["policy_version"], v3);
    assert_eq!(decided["payload"]["risk"]["level"], "medium");
    // Its code is the second email the user got: the observed logins emailed nothing.
    system.mail.wait_for_code(&email, 2).await;
    assert_eq!(system.mail.emails_to(&email).await.len(), 2);
    // Only the enrolment and the trusted office login were learned.
    let learned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM risk_login_history WHERE user_id = $1")
            .bind(uuid::Uuid::parse_str(&user_id).unwrap())
            .fetch_one(&system.pool)
            .await
            .unwrap();
    assert_eq!(
        learned, 3,
        "enrolment, the known login and the office phone"
    );

    let read = get_policy(&system, "acme", Some(ADMIN_KEY)).await;
    assert_eq!(read.body["version"], v3);
    assert_eq!(read.body["policy"], json!({"medium_threshold": -10.0}));
}
