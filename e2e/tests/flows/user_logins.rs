//! `GET /v1/admin/users/{user_id}/logins` (issue 13): a support desk reads a user's logins,
//! newest first, with the decision, the risk reasons, the code's fate and how each ended.

use std::time::Duration;

use mfa_audit::envelopes::for_each_event;
use mfa_audit::kafka_source::{KafkaSource, KafkaSourceConfig};
use mfa_audit::timeline::{Filter, Outcome, Stories};
use serde_json::Value;

use crate::support::*;

/// Every login of the user, `limit` a page, in the pages' order.
async fn every_page(system: &TestSystem, user_id: &str, limit: u32) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/admin/users/{user_id}/logins?limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = system.intake_get(&path, Some(ADMIN_KEY)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["user_id"], user_id);
        pages.push(body["logins"].as_array().unwrap().clone());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 50, "the pages never end");
    }
}

/// The user's logins once `settled` accepts them: the code worker records the email's
/// outcome a moment after the mail server took it.
async fn logins_once(
    system: &TestSystem,
    user_id: &str,
    settled: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..100 {
        let logins: Vec<Value> = every_page(system, user_id, 200).await.concat();
        if settled(&logins) {
            return logins;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the logins never settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_desk_reads_a_users_logins_newest_first() {
    let system = spawn_system().await;
    let email = unique_email("story");
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    // 1. The first login asks for a code; the user passes it.
    let first = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(first.body["status"], "mfa_required", "{}", first.body);
    let code = system.mail.wait_for_code(&email, 1).await;
    let passed = system
        .verify(first.body["challenge_id"].as_str().unwrap(), &code)
        .await;
    assert_eq!(passed.status, 200, "{}", passed.body);
    system.wait_until_learned(&user_id).await;
    // 2. Known device, network and browser: approved.
    let known = system
        .login(&email, PASSWORD, Some("laptop"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(known.body["status"], "approved", "{}", known.body);
    // 3. A wrong password.
    let wrong_password = system
        .login(
            &email,
            "not the password",
            Some("laptop"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(
        wrong_password.body["status"], "rejected",
        "{}",
        wrong_password.body
    );
    // 4. Someone else, with the password: a code, and a wrong guess at it.
    let stranger = system
        .login(
            &email,
            PASSWORD,
            Some("attacker"),
            "203.0.113.66",
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(stranger.body["status"], "mfa_required", "{}", stranger.body);
    let stranger_code = system.mail.wait_for_code(&email, 2).await;
    let guessed = system
        .verify(
            stranger.body["challenge_id"].as_str().unwrap(),
            wrong_code(&stranger_code),
        )
        .await;
    assert_eq!(guessed.status, 401, "{}", guessed.body);

    let logins = logins_once(&system, &user_id, |logins| {
        logins.len() == 4 && logins[0]["code"]["delivery"] == "sent"
    })
    .await;
    let ids: Vec<&str> = logins
        .iter()
        .map(|l| l["attempt_id"].as_str().unwrap())
        .collect();
    let attempt = |response: &Response| response.body["attempt_id"].as_str().unwrap().to_owned();
    assert_eq!(
        ids,
        [
            attempt(&stranger),
            attempt(&wrong_password),
            attempt(&known),
            attempt(&first)
        ],
        "newest first"
    );
    let times: Vec<&str> = logins
        .iter()
        .map(|l| l["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let stranger_challenge = stranger.body["challenge_id"].clone();
    let [stranger, wrong_password, known, first] = &logins[..] else {
        unreachable!()
    };
    // The first login: a code for a first login, sent and passed.
    assert_eq!(first["decision"], "mfa_required", "{first}");
    assert_eq!(first["platform"], "dashboard");
    assert_eq!(first["auth_method"], "password");
    assert_eq!(first["ip"], HOME_IP);
    assert_eq!(first["user_agent"], CHROME_WINDOWS);
    assert_eq!(first["client"], "Chrome on Windows 10");
    assert_eq!(first["device_id"], "laptop");
    assert!(
        first["risk"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&"first_login".into()),
        "{first}"
    );
    assert_eq!(first["code"]["delivery"], "sent", "{first}");
    assert!(first["code"]["sent_at"].is_string(), "{first}");
    assert_eq!(first["code"]["new_email"], true);
    assert_eq!(first["code"]["wrong_codes"], 0);
    assert_eq!(first["code"]["outcome"], "succeeded");
    assert_eq!(first["final_state"], "approved_after_mfa");
    assert!(first["final_reason"].is_null());

    // Known: approved at low risk, no code.
    assert_eq!(known["decision"], "approved", "{known}");
    assert_eq!(known["risk"]["level"], "low", "{known}");
    assert!(known["code"].is_null(), "{known}");
    assert_eq!(known["final_state"], "approved");

    // The wrong password: rejected for it.
    assert_eq!(wrong_password["decision"], "rejected", "{wrong_password}");
    assert_eq!(wrong_password["rejection_reason"], "invalid_credentials");
    assert_eq!(wrong_password["final_state"], "rejected");
    assert_eq!(wrong_password["final_reason"], "invalid_credentials");
    assert!(wrong_password["code"].is_null());

    // The stranger: a code for a new device and network, one wrong guess, still waiting.
    assert_eq!(stranger["decision"], "mfa_required", "{stranger}");
    assert_eq!(stranger["ip"], "203.0.113.66");
    assert_eq!(stranger["device_id"], "attacker");
    assert_ne!(stranger["risk"]["level"], "low", "{stranger}");
    let reasons = stranger["risk"]["reasons"].as_array().unwrap();
    assert!(reasons.contains(&"new_device".into()), "{stranger}");
    assert_eq!(stranger["code"]["wrong_codes"], 1, "{stranger}");
    assert_eq!(stranger["code"]["outcome"], "pending");
    assert_eq!(stranger["code"]["challenge_id"], stranger_challenge);
    assert_eq!(stranger["final_state"], "awaiting_code");

    // Pages of any size give the same logins in the same order, each once.
    for limit in [1, 3] {
        let pages = every_page(&system, &user_id, limit).await;
        assert_eq!(
            pages.len(),
            4_usize.div_ceil(limit as usize),
            "limit {limit}"
        );
        let paged: Vec<&Value> = pages.iter().flatten().map(|l| &l["attempt_id"]).collect();
        let all: Vec<&Value> = logins.iter().map(|l| &l["attempt_id"]).collect();
        assert_eq!(paged, all, "limit {limit}");
    }

    // The admin key only; an unknown user; a cursor this list did not hand out.
    let path = format!("/v1/admin/users/{user_id}/logins");
    let (status, body) = system.intake_get(&path, None).await;
    assert_eq!(
        (status, &body["error"]),
        (401, &Value::from("missing_api_key"))
    );
    let (status, _) = system.intake_get(&path, Some(&system.api_key)).await;
    assert_eq!(status, 401, "a client key is not an admin key");
    for unknown in [uuid::Uuid::now_v7().to_string(), "not-a-user".to_owned()] {
        let (status, body) = system
            .intake_get(
                &format!("/v1/admin/users/{unknown}/logins"),
                Some(ADMIN_KEY),
            )
            .await;
        assert_eq!(
            (status, &body["error"]),
            (404, &Value::from("unknown_user")),
            "{unknown}"
        );
    }
    let (_, users) = system
        .intake_get("/v1/admin/users?limit=1", Some(ADMIN_KEY))
        .await;
    let users_cursor = users["next_cursor"].as_str().unwrap_or("0101ff").to_owned();
    for cursor in ["zz", "00", users_cursor.as_str()] {
        let (status, body) = system
            .intake_get(&format!("{path}?cursor={cursor}"), Some(ADMIN_KEY))
            .await;
        assert_eq!(
            (status, &body["error"]),
            (400, &Value::from("invalid_cursor")),
            "{cursor}"
        );
    }
    let (status, body) = system
        .intake_get(&format!("{path}?limit=0"), Some(ADMIN_KEY))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &Value::from("invalid_request"))
    );

    // The event log tells the auditor the same story (mfa-audit timeline).
    let from_log = story_in_the_log(&system, &user_id, logins.len()).await;
    for (listed, told) in logins.iter().zip(&from_log) {
        assert_eq!(listed["attempt_id"], told.story.attempt_id.to_string());
        let decision = told.story.decision.as_ref().unwrap();
        assert_eq!(listed["decision"], decision.decision.name(), "{listed}");
        let reasons: Vec<&str> = decision
            .risk
            .as_ref()
            .map(|risk| risk.reasons.iter().map(|r| r.as_str()).collect())
            .unwrap_or_default();
        let listed_reasons: Vec<&str> = listed["risk"]["reasons"]
            .as_array()
            .map(|reasons| reasons.iter().map(|r| r.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(listed_reasons, reasons, "{listed}");
        let outcome = match &told.outcome {
            Outcome::Approved => ("approved", None),
            Outcome::ApprovedAfterMfa => ("approved_after_mfa", None),
            Outcome::AwaitingCode => ("awaiting_code", None),
            Outcome::Rejected(reason) => ("rejected", Some(reason.as_str())),
            Outcome::Undecided => ("pending", None),
        };
        assert_eq!(
            (
                listed["final_state"].as_str().unwrap(),
                listed["final_reason"].as_str()
            ),
            outcome,
            "{listed}"
        );
        let wrong = told.code.as_ref().map(|code| code.wrong_codes.len() as u64);
        assert_eq!(listed["code"]["wrong_codes"].as_u64(), wrong, "{listed}");
    }
}

/// The user's logins as `mfa-audit timeline` reads them from the broker, newest first; read
/// again until the last events (published by the relays after their commits) are in.
async fn story_in_the_log(
    system: &TestSystem,
    user_id: &str,
    expected: usize,
) -> Vec<mfa_audit::timeline::Login> {
    let user = shared::domain::UserId::parse(user_id).unwrap();
    let mut config = KafkaSourceConfig::new(&system.kafka.brokers, &system.kafka.namespace);
    config.quiet = true;
    for _ in 0..20 {
        let config = config.clone();
        let mut logins = tokio::task::spawn_blocking(move || {
            let mut source = KafkaSource::connect(&config).unwrap();
            let mut stories = Stories::new(Filter::User(user));
            for_each_event(
                &mut source,
                &config.namespace,
                &mut std::io::sink(),
                |event| stories.apply(event),
            )
            .unwrap();
            stories.finish()
        })
        .await
        .unwrap();
        logins.reverse();
        let wrong_code_in = logins
            .first()
            .and_then(|l| l.code.as_ref())
            .is_some_and(|code| !code.wrong_codes.is_empty());
        if logins.len() == expected && wrong_code_in {
            return logins;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the log never held the user's {expected} logins");
}
