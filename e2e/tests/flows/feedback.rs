//! The user's own word (issue 17): a password login whose code is never used (it expires, or
//! locks after too many wrong codes) gets a "someone has your password" email with two signed,
//! single-use, expiring links; following "this wasn't me" publishes `LoginFeedback` and makes
//! that network high risk for the user; "this was me" lets the model learn the device. Client
//! backends and admins give the same feedback over the API.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::kafka::wait_for_message;
use crate::support::mail::ReceivedEmail;
use crate::support::*;

const NOTICE_SUBJECT: &str = "Someone has your password";

fn short_codes() -> Options {
    Options {
        code_ttl: Duration::from_secs(3),
        ..Default::default()
    }
}

/// The two links of a notification email's text: (was me, wasn't me).
fn links_in(text: &str) -> (String, String) {
    let link_after = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{label}: ")))
            .unwrap_or_else(|| panic!("no {label:?} link in {text}"))
            .trim()
            .to_owned()
    };
    (link_after("This was me"), link_after("This wasn't me"))
}

/// The notifications among the emails to `email`.
async fn notices(system: &TestSystem, email: &str) -> Vec<ReceivedEmail> {
    system
        .mail
        .emails_to(email)
        .await
        .into_iter()
        .filter(|received| received.subject == NOTICE_SUBJECT)
        .collect()
}

/// Waits for the first notification to `email`.
async fn wait_for_notice(system: &TestSystem, email: &str) -> ReceivedEmail {
    for _ in 0..150 {
        if let Some(notice) = notices(system, email).await.into_iter().next() {
            return notice;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no notification reached {email}");
}

/// A page's status and `data-code`.
async fn follow(system: &TestSystem, method: reqwest::Method, link: &str) -> (u16, String) {
    let response = system
        .http
        .request(method, link)
        .send()
        .await
        .expect("the verifier answers");
    let status = response.status().as_u16();
    let html = response.text().await.unwrap();
    let code = html
        .split("data-code=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no data-code in {html}"))
        .to_owned();
    (status, code)
}

/// The risk decision's reasons for `attempt_id`.
async fn reasons_of(system: &TestSystem, attempt_id: &str) -> Vec<String> {
    let decision: Value =
        sqlx::query_scalar("SELECT decision_event FROM risk_decisions WHERE attempt_id = $1::uuid")
            .bind(attempt_id)
            .fetch_one(&system.pool)
            .await
            .unwrap();
    decision["payload"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_expired_code_notifies_and_wasnt_me_makes_that_network_high_risk() {
    let system = spawn_system_with(short_codes()).await;
    let (email, user_id) = system.enrolled_user("d1", HOME_IP, CHROME_WINDOWS).await;
    let attack = system
        .login(
            &email,
            PASSWORD,
            Some("attacker"),
            "203.0.113.66",
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(attack.body["status"], "mfa_required", "{}", attack.body);
    let attack_id = attack.body["attempt_id"].as_str().unwrap().to_owned();
    system.mail.wait_for_code(&email, 2).await;

    // The code expires unused: the notification names the login and carries both links.
    let notice = wait_for_notice(&system, &email).await;
    // A documentation address, which no GeoIP data places.
    for needed in [
        "203.0.113.66",
        "Firefox on Linux",
        "has expired",
        "UTC",
        "Place (from the address, approximate): not known",
    ] {
        assert!(notice.text.contains(needed), "{needed}: {}", notice.text);
    }
    assert!(
        notice.message_id.contains("notice-"),
        "{}",
        notice.message_id
    );
    let (was_me, wasnt_me) = links_in(&notice.text);
    assert!(wasnt_me.starts_with(&system.verifier_url), "{wasnt_me}");

    // Tampered: refused. A GET only asks to confirm; the POST records it, once.
    let tampered = format!("{}0", &wasnt_me[..wasnt_me.len() - 1]);
    let tampered = if tampered == wasnt_me {
        format!("{}1", &wasnt_me[..wasnt_me.len() - 1])
    } else {
        tampered
    };
    assert_eq!(
        follow(&system, reqwest::Method::GET, &tampered).await,
        (404, "invalid_link".into())
    );
    assert_eq!(
        follow(&system, reqwest::Method::POST, &tampered).await,
        (404, "invalid_link".into())
    );
    assert_eq!(
        follow(&system, reqwest::Method::GET, &wasnt_me).await,
        (200, "confirm".into())
    );
    assert_eq!(
        follow(&system, reqwest::Method::POST, &wasnt_me).await,
        (200, "recorded".into())
    );
    assert_eq!(
        follow(&system, reqwest::Method::POST, &wasnt_me).await,
        (409, "already_used".into())
    );
    assert_eq!(
        follow(&system, reqwest::Method::POST, &was_me).await,
        (409, "already_used".into())
    );
    assert_eq!(
        follow(&system, reqwest::Method::GET, &was_me).await,
        (409, "already_used".into())
    );

    let feedback = wait_for_message(&system.kafka, &system.kafka.topics().accounts, |event| {
        event["event_type"] == "LoginFeedback" && event["attempt_id"] == attack_id.as_str()
    })
    .await;
    assert_eq!(feedback["producer"], "verifier");
    assert_eq!(feedback["payload"]["verdict"], "wasnt_me");
    assert_eq!(feedback["payload"]["source"], "email_link");
    assert_eq!(feedback["payload"]["user_id"], user_id.as_str());
    // The reported address, sealed under the user's data key.
    assert!(feedback["payload"].get("ip").is_none(), "{feedback}");
    let sealed: shared::personal::Personal<shared::events::ReportedClient> =
        serde_json::from_value(feedback["payload"].clone()).unwrap();
    let reported = mfa_store::data_keys::DataKeys::new(
        system.pool.clone(),
        system.data_protection.master_keys.clone(),
    )
    .open(
        &sealed,
        shared::events::EventType::LoginFeedback
            .seal_context(shared::domain::AttemptId::parse(&attack_id).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(
        reported.fields().and_then(|r| r.ip),
        Some("203.0.113.66".parse().unwrap())
    );
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_reported WHERE user_id = $1",
            &user_id,
            |n| n == 2,
        )
        .await;

    // The user's own known device, from the reported network: challenged, with the reason.
    let next = system
        .login(&email, PASSWORD, Some("d1"), "203.0.113.77", CHROME_WINDOWS)
        .await;
    assert_eq!(next.body["status"], "mfa_required", "{}", next.body);
    let reasons = reasons_of(&system, next.body["attempt_id"].as_str().unwrap()).await;
    assert!(
        reasons.contains(&"reported_network".to_owned()),
        "{reasons:?}"
    );
    // Still approved at home.
    let home = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(home.body["status"], "approved", "{}", home.body);
}

#[tokio::test]
async fn a_locked_code_notifies_and_was_me_learns_the_device() {
    let system = spawn_system().await;
    let (email, user_id) = system.enrolled_user("d1", HOME_IP, CHROME_WINDOWS).await;
    let (challenge, code) = system.attacker_challenge(&email, 2).await;
    for _ in 0..5 {
        let answer = system.verify(&challenge, wrong_code(&code)).await;
        assert!(matches!(answer.status, 401 | 403), "{}", answer.body);
    }
    let notice = wait_for_notice(&system, &email).await;
    assert!(
        notice.text.contains("too many wrong codes"),
        "{}",
        notice.text
    );
    let (was_me, _) = links_in(&notice.text);
    assert_eq!(
        follow(&system, reqwest::Method::POST, &was_me).await,
        (200, "recorded".into())
    );
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_login_history WHERE user_id = $1",
            &user_id,
            |n| n == 2,
        )
        .await;
    // The device of that login is known now: approved.
    let again = system
        .login(
            &email,
            PASSWORD,
            Some("attacker"),
            "203.0.113.66",
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(again.body["status"], "approved", "{}", again.body);
}

#[tokio::test]
async fn a_superseded_code_does_not_notify_and_an_expired_link_is_refused() {
    let system = spawn_system_with(Options {
        feedback_link_ttl: Duration::from_secs(4),
        ..short_codes()
    })
    .await;
    let (email, _) = system.enrolled_user("d1", HOME_IP, CHROME_WINDOWS).await;
    let first = system
        .login(&email, PASSWORD, Some("x1"), "203.0.113.66", FIREFOX_LINUX)
        .await;
    assert_eq!(first.body["status"], "mfa_required", "{}", first.body);
    system.mail.wait_for_code(&email, 2).await;
    // A newer login's code supersedes the first before it expires.
    let second = system
        // A real address (Google's public resolver), which the GeoIP data places.
        .login(&email, PASSWORD, Some("x2"), "8.8.8.8", FIREFOX_LINUX)
        .await;
    assert_eq!(second.body["status"], "mfa_required", "{}", second.body);
    system.mail.wait_for_code(&email, 3).await;
    let notice = wait_for_notice(&system, &email).await;
    // One notification: the second challenge's (it expired), none for the superseded one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = notices(&system, &email).await;
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|n| &n.text).collect::<Vec<_>>()
    );
    assert!(notice.text.contains("8.8.8.8"), "{}", notice.text);
    let place = notice
        .text
        .lines()
        .find_map(|line| line.strip_prefix("- Place (from the address, approximate): "));
    if std::env::var_os("MFA_GEOIP_CITY_DB").is_some() {
        assert!(
            place.is_some_and(|place| place == "US" || place.ends_with(", US")),
            "{}",
            notice.text
        );
    }
    // The links lived 4 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, wasnt_me) = links_in(&notice.text);
    assert_eq!(
        follow(&system, reqwest::Method::GET, &wasnt_me).await,
        (410, "link_expired".into())
    );
    assert_eq!(
        follow(&system, reqwest::Method::POST, &wasnt_me).await,
        (410, "link_expired".into())
    );
}

async fn post_feedback(system: &TestSystem, path: &str, key: &str, body: Value) -> Response {
    let response = system
        .http
        .post(format!("{}{path}", system.intake_url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    Response {
        status,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

#[tokio::test]
async fn client_backends_and_admins_give_feedback_once_per_login() {
    let system = spawn_system().await;
    let (email, user_id) = system.enrolled_user("d1", HOME_IP, CHROME_WINDOWS).await;
    let login = system
        .login(
            &email,
            PASSWORD,
            Some("stranger"),
            "203.0.113.90",
            FIREFOX_LINUX,
        )
        .await;
    let attempt = login.body["attempt_id"].as_str().unwrap().to_owned();
    let client = format!("/v1/logins/{attempt}/feedback");
    let key = system.api_key.clone();

    let given = post_feedback(&system, &client, &key, json!({"verdict": "wasnt_me"})).await;
    assert_eq!(given.status, 200, "{}", given.body);
    assert_eq!(given.body["verdict"], "wasnt_me");
    assert_eq!(given.body["source"], "client");
    assert_eq!(given.body["user_id"], user_id.as_str());
    // The same again is the same answer; the other verdict, from anyone, a conflict.
    let again = post_feedback(&system, &client, &key, json!({"verdict": "wasnt_me"})).await;
    assert_eq!(
        (again.status, &again.body["given_at"]),
        (200, &given.body["given_at"])
    );
    let other = post_feedback(&system, &client, &key, json!({"verdict": "was_me"})).await;
    assert_eq!(
        (other.status, other.body["error"].as_str()),
        (409, Some("feedback_already_given"))
    );
    let admin_path = format!("/v1/admin/logins/{attempt}/feedback");
    let admin_other = post_feedback(
        &system,
        &admin_path,
        ADMIN_KEY,
        json!({"verdict": "was_me"}),
    )
    .await;
    assert_eq!(admin_other.status, 409, "{}", admin_other.body);

    let bad = post_feedback(&system, &client, &key, json!({"verdict": "maybe"})).await;
    assert_eq!(
        (bad.status, bad.body["error"].as_str()),
        (422, Some("invalid_request"))
    );
    let unknown = format!("/v1/logins/{}/feedback", uuid::Uuid::now_v7());
    let missing = post_feedback(&system, &unknown, &key, json!({"verdict": "was_me"})).await;
    assert_eq!(
        (missing.status, missing.body["error"].as_str()),
        (404, Some("unknown_attempt"))
    );
    let other_company = system.create_api_key("globex", None).await;
    let foreign = post_feedback(
        &system,
        &client,
        &other_company,
        json!({"verdict": "was_me"}),
    )
    .await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    let no_admin_key =
        post_feedback(&system, &admin_path, &key, json!({"verdict": "was_me"})).await;
    assert_eq!(no_admin_key.status, 401);

    // An admin's word on another login of the user.
    let second = system
        .login(
            &email,
            PASSWORD,
            Some("stranger2"),
            "192.0.2.10",
            FIREFOX_LINUX,
        )
        .await;
    let second_attempt = second.body["attempt_id"].as_str().unwrap().to_owned();
    let by_admin = post_feedback(
        &system,
        &format!("/v1/admin/logins/{second_attempt}/feedback"),
        ADMIN_KEY,
        json!({"verdict": "wasnt_me"}),
    )
    .await;
    assert_eq!(
        (by_admin.status, by_admin.body["source"].as_str()),
        (200, Some("admin"))
    );

    for (attempt, source) in [(&attempt, "client"), (&second_attempt, "admin")] {
        let event = wait_for_message(&system.kafka, &system.kafka.topics().accounts, |event| {
            event["event_type"] == "LoginFeedback" && event["attempt_id"] == attempt.as_str()
        })
        .await;
        assert_eq!(event["producer"], "login-intake");
        assert_eq!(event["payload"]["source"], source);
    }
    // The reported device, from home: challenged with the reason.
    system
        .wait_for_count(
            "SELECT count(*) FROM risk_reported WHERE user_id = $1 AND level = 'device'",
            &user_id,
            |n| n == 2,
        )
        .await;
    let from_home = system
        .login(&email, PASSWORD, Some("stranger"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(
        from_home.body["status"], "mfa_required",
        "{}",
        from_home.body
    );
    let reasons = reasons_of(&system, from_home.body["attempt_id"].as_str().unwrap()).await;
    assert!(
        reasons.contains(&"reported_device".to_owned()),
        "{reasons:?}"
    );
}

/// Issue 17, per company policy: under `password_change_on_takeover_report`, "wasn't me" (here
/// an admin's, after the user called support) means the password leaked. The next login with
/// the right password, from the user's own known laptop at home, is refused
/// `password_change_required` (the attacker has the password, and may have the network too);
/// a wrong one is still `invalid_credentials`. Once an admin sets a new password (what a
/// client backend does after its own email-verified reset), the new one logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasnt_me_under_the_policy_refuses_the_password_until_it_is_changed() {
    let system = spawn_system().await;
    let (email, user_id) = system
        .enrolled_user("laptop", HOME_IP, CHROME_WINDOWS)
        .await;
    let policy_url = format!("{}/v1/admin/companies/acme/risk-policy", system.intake_url);
    let put_policy = |body: Value| {
        system
            .http
            .put(&policy_url)
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    // A switch is a JSON boolean.
    let wrong_type = put_policy(json!({"password_change_on_takeover_report": "yes"}))
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 422);
    let refused: Value = wrong_type.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_request", "{refused}");
    // The risk worker learns it a Kafka hop later.
    crate::policy::set_and_wait(&system, json!({"password_change_on_takeover_report": true})).await;

    // Someone with the password, on a device of their own: challenged; the admin reports it.
    let attack = system
        .login(
            &email,
            PASSWORD,
            Some("attacker"),
            "203.0.113.66",
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(attack.body["status"], "mfa_required", "{}", attack.body);
    let attacker_code = system.mail.wait_for_code(&email, 2).await;
    let attempt = attack.body["attempt_id"].as_str().unwrap().to_owned();
    let reported = post_feedback(
        &system,
        &format!("/v1/admin/logins/{attempt}/feedback"),
        ADMIN_KEY,
        json!({"verdict": "wasnt_me"}),
    )
    .await;
    assert_eq!(reported.status, 200, "{}", reported.body);
    let marked = "SELECT count(*) FROM risk_password_change_required WHERE user_id = $1";
    system.wait_for_count(marked, &user_id, |n| n == 1).await;
    // The code emailed for the reported login no longer works, whoever reads that inbox.
    let revoked = "SELECT count(*) FROM challenges WHERE user_id = $1 AND status = 'revoked'";
    system.wait_for_count(revoked, &user_id, |n| n == 1).await;
    let challenge = attack.body["challenge_id"].as_str().unwrap().to_owned();
    let late = system.verify(&challenge, &attacker_code).await;
    assert_eq!(late.status, 410, "{}", late.body);
    assert_eq!(late.body["error"], "revoked", "{}", late.body);
    let export_path = format!("/v1/admin/users/{user_id}/export");
    let (status, export) = system.intake_get(&export_path, Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(
        export["password_change_required"][0]["attempt_id"], attempt,
        "{export}"
    );

    // The right password, her own laptop, her own network: refused until it changes.
    let home = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert_eq!(home.body["status"], "rejected", "{}", home.body);
    assert_eq!(
        home.body["reason"], "password_change_required",
        "{}",
        home.body
    );
    assert!(home.body.get("retry_after_secs").is_none(), "{}", home.body);
    let read = system
        .get_login(home.body["attempt_id"].as_str().unwrap())
        .await;
    assert_eq!(
        read.body["reason"], "password_change_required",
        "{}",
        read.body
    );
    // No word of it for a wrong password: nobody without the password learns anything.
    let wrong = system
        .login(
            &email,
            "not the password",
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        wrong.body["reason"], "invalid_credentials",
        "{}",
        wrong.body
    );

    let new_password = "a brand new passphrase";
    let changed = system
        .http
        .put(format!(
            "{}/v1/admin/users/{user_id}/password",
            system.intake_url
        ))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "password": new_password }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    system.wait_for_count(marked, &user_id, |n| n == 0).await;
    let (_, export) = system.intake_get(&export_path, Some(ADMIN_KEY)).await;
    assert_eq!(export["password_change_required"], json!([]), "{export}");
    let old = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(old.body["reason"], "invalid_credentials", "{}", old.body);
    // Her laptop is still known: approved, no code.
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
}
