//! No secret in any log line or event.

use std::time::Duration;

use serde_json::Value;

use crate::support::kafka::read_topic;
use crate::support::secrets::digit_runs;
use crate::support::*;
use crate::{capture_logs, LOGS};

/// Codes, passwords, API keys and the HMAC secret appear in no log line (any level) and no
/// event, through a whole flow: MFA with a wrong then a right code, a wrong password, an
/// unknown email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_or_an_event() {
    capture_logs();
    let system = spawn_system().await;
    let email = unique_email("leak");
    let wrong_password = "Tr0ub4dor&3-wrong";
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let login = system
        .login(&email, PASSWORD, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    let challenge = login.body["challenge_id"].as_str().unwrap().to_owned();
    let code = system.mail.wait_for_code(&email, 1).await;
    // Not `wrong_code`: a run of zeros could appear in a log line's numbers by chance.
    let wrong = if code == "424242" { "424243" } else { "424242" };
    assert_eq!(system.verify(&challenge, wrong).await.status, 401);
    assert_eq!(system.verify(&challenge, &code).await.status, 200);
    let rejected = system
        .login(&email, wrong_password, Some("d1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(rejected.body["status"], "rejected");
    let unknown = system
        .login(
            &unique_email("nobody"),
            wrong_password,
            None,
            HOME_IP,
            FIREFOX_LINUX,
        )
        .await;
    assert_eq!(unknown.body["status"], "rejected");
    let second = system
        .login(&email, PASSWORD, Some("d2"), "203.0.113.5", FIREFOX_LINUX)
        .await;
    let second_code = system.mail.wait_for_code(&email, 2).await;
    assert_eq!(
        system
            .verify(second.body["challenge_id"].as_str().unwrap(), &second_code)
            .await
            .status,
        200
    );
    // Let the consumers finish what the last calls set off.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())))
        .collect();
    assert!(
        lines.len() > 50,
        "trace logging captured only {} lines",
        lines.len()
    );
    let topics = system.kafka.topics();
    let mut records: Vec<Value> = lines;
    for topic in topics.all() {
        records.extend(read_topic(&system.kafka, topic).into_iter().map(|(_, v)| v));
    }

    let texts = [
        PASSWORD,
        wrong_password,
        &system.api_key,
        ADMIN_KEY,
        HMAC_SECRET,
    ];
    let codes = [code.as_str(), wrong, second_code.as_str()];
    for record in &records {
        let text = record.to_string();
        for secret in texts {
            assert!(!text.contains(secret), "{secret:?} leaked in {text}");
        }
        let runs = digit_runs(record);
        for code in codes {
            assert!(
                !runs.iter().any(|run| run == code),
                "code {code} leaked in {text}"
            );
        }
    }
}
