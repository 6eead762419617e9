//! `timeline` with the deployment's data keys, on the stack's PostgreSQL: logins sealed as
//! login-intake seals them read in the clear, and as erased once their user's keys are
//! destroyed (`erase_subject`, as the user's deletion does), while the logins still count; a
//! key that cannot be read is said for its login, and the command still tells the rest.

// Test set-up: a step that fails is the test failing, and says where.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use mfa_audit::synth::{LogBuilder, SynthKeys};
use mfa_store::data_keys::{erase_subject, DataKeys};
use mfa_testkit::stack::{create_database, DataProtectionKeys};
use secrecy::SecretString;
use serde_json::Value;
use shared::domain::{
    AttemptId, AuthMethod, CompanyId, DeviceId, Locale, Platform, PrimaryFactor, UserAgent, UserId,
};
use shared::events::{Envelope, Event, EventType, LoginApproved, LoginAttempted, LoginClient};
use shared::personal::{DataKeyId, MasterKeys, Subject};

use crate::support::{audit_with, text};

const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// A deployment's key store: a database of the test's own, migrated, and fresh master keys.
struct Deployment {
    database_url: String,
    protection: DataProtectionKeys,
    keys: DataKeys,
}

impl Deployment {
    async fn new() -> Self {
        let database_url = create_database().await;
        let pool = mfa_store::db::connect(&SecretString::from(database_url.clone()), 2)
            .await
            .unwrap();
        mfa_store::db::migrate(&pool).await.unwrap();
        let protection = DataProtectionKeys::generate();
        let keys = DataKeys::new(pool, protection.config().master_keys);
        Self {
            database_url,
            protection,
            keys,
        }
    }
}

/// A login of `user` from `ip`, its client sealed under the user's key for the month as
/// login-intake seals it, and the risk worker's approval.
async fn sealed_login(keys: &DataKeys, user: UserId, at: DateTime<Utc>, ip: &str) -> [Envelope; 2] {
    let attempt = AttemptId::new();
    let client = LoginClient {
        ip: ip.parse().unwrap(),
        user_agent: UserAgent::parse(FIREFOX).unwrap(),
        device_id: Some(DeviceId::parse("laptop").unwrap()),
    };
    let client = keys
        .seal(
            Subject::User(user),
            at,
            &client,
            EventType::LoginAttempted.seal_context(attempt),
        )
        .await
        .unwrap();
    let login = Envelope::new(
        "login-intake",
        attempt,
        None,
        at,
        Event::LoginAttempted(LoginAttempted {
            user_id: Some(user),
            company_id: Some(CompanyId::parse("acme").unwrap()),
            auth_method: AuthMethod::Password,
            primary_factor: PrimaryFactor::Succeeded,
            privileged: false,
            platform: Platform::Ios,
            client,
            locale: Locale::default(),
        }),
    );
    let approved = Envelope::caused_by(
        &login,
        "risk-worker",
        at + chrono::Duration::milliseconds(20),
        Event::LoginApproved(LoginApproved {
            counted: None,
            user_id: user,
            approved_after_mfa: false,
            challenge_id: None,
            risk: None,
        }),
    );
    [login, approved]
}

fn write_export(dir: &std::path::Path, events: &[Envelope]) -> String {
    let mut builder = LogBuilder::new("mfa", &SynthKeys::generate());
    for event in events {
        builder.event(event, &event.attempt_id.to_string()).unwrap();
    }
    let mut lines = Vec::new();
    for record in builder.records() {
        record.encode_line(&mut lines);
    }
    let path = dir.join("log.jsonl");
    std::fs::write(&path, lines).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The one login of `user` the timeline finds, as JSON, and the table's text.
fn timeline(export: &str, user: UserId, settings: &[(&str, &str)]) -> (Value, String) {
    let user = user.to_string();
    let args = ["timeline", "--user", &user, "--from", export, "--quiet"];
    let table = audit_with(&args, settings);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table.stderr));
    let json = audit_with(&[&args[..], &["--json"]].concat(), settings);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let logins = json["logins"].as_array().unwrap();
    assert_eq!(logins.len(), 1, "{json:#}");
    (logins[0].clone(), text(&table.stdout))
}

#[tokio::test]
async fn a_deleted_users_logins_read_erased_after_reading_in_the_clear() {
    let Deployment {
        database_url,
        protection,
        keys,
    } = Deployment::new().await;
    let (deleted, kept) = (UserId::new(), UserId::new());
    let at = Utc::now();
    let mut events = Vec::new();
    events.extend(sealed_login(&keys, deleted, at, "203.0.113.7").await);
    events.extend(
        sealed_login(
            &keys,
            kept,
            at + chrono::Duration::seconds(1),
            "198.51.100.5",
        )
        .await,
    );
    let dir = tempfile::tempdir().unwrap();
    let export = write_export(dir.path(), &events);
    let with_keys = [
        ("MFA_MASTER_KEYS", protection.master_keys.as_str()),
        ("MFA_DATABASE_URL", database_url.as_str()),
    ];
    let deleted_key = DataKeyId::new(Subject::User(deleted), at).to_string();

    // Before the deletion: the deployment's keys open it.
    let (login, table) = timeline(&export, deleted, &with_keys);
    assert_eq!(login["origin"]["state"], "clear", "{login:#}");
    assert_eq!(login["origin"]["ip"], "203.0.113.7");
    assert_eq!(login["origin"]["key"], deleted_key.as_str());
    assert_eq!(login["client"], "Firefox on Windows 10");
    assert!(
        table.contains("from 203.0.113.7 with Firefox on Windows 10 (device laptop)"),
        "{table}"
    );
    // A copy of the log, without the keys, shows it sealed.
    let (login, table) = timeline(&export, deleted, &[]);
    assert_eq!(login["origin"]["state"], "sealed", "{login:#}");
    assert!(!table.contains("203.0.113.7"), "{table}");
    assert!(
        table.contains(&format!("from where it is sealed (data key {deleted_key})")),
        "{table}"
    );

    // The user's deletion destroys their keys: the same log now reads erased, never fails.
    // From a connection and a transaction of its own, as login-intake deletes an account.
    let pool = mfa_store::db::connect(&SecretString::from(database_url.clone()), 1)
        .await
        .unwrap();
    let mut deletion = pool.begin().await.unwrap();
    let erased = erase_subject(&mut deletion, Subject::User(deleted), Utc::now())
        .await
        .unwrap();
    deletion.commit().await.unwrap();
    assert_eq!(erased, 1);
    let (login, table) = timeline(&export, deleted, &with_keys);
    assert_eq!(login["origin"]["state"], "erased", "{login:#}");
    assert_eq!(login["origin"]["key"], deleted_key.as_str());
    assert!(login["origin"].get("ip").is_none(), "{login:#}");
    assert_eq!(login["client"], "erased");
    assert_eq!(login["outcome"]["state"], "approved", "{login:#}");
    assert!(!table.contains("203.0.113.7"), "{table}");
    assert!(
        table.contains(&format!(
            "from where it is erased (data key {deleted_key} destroyed)"
        )),
        "{table}"
    );
    assert!(
        table.contains("1 login(s), 1 with their personal data erased"),
        "{table}"
    );
    // The other user's data is intact.
    let (login, _) = timeline(&export, kept, &with_keys);
    assert_eq!(login["origin"]["state"], "clear", "{login:#}");
    assert_eq!(login["origin"]["ip"], "198.51.100.5");
    // And the erased login still counts in the report.
    let day = at.date_naive().to_string();
    let report = audit_with(
        &[
            "report",
            "--from",
            &day,
            "--to",
            &day,
            "--log-file",
            &export,
            "--json",
            "--quiet",
        ],
        &with_keys,
    );
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["totals"]["logins"], 2, "{report:#}");
    assert_eq!(report["totals"]["approved"], 2, "{report:#}");
}

#[tokio::test]
async fn a_key_that_cannot_be_read_is_said_for_its_login_and_the_story_is_still_told() {
    let Deployment {
        database_url,
        protection,
        keys,
    } = Deployment::new().await;
    let user = UserId::new();
    let events = sealed_login(&keys, user, Utc::now(), "203.0.113.7").await;
    let dir = tempfile::tempdir().unwrap();
    let export = write_export(dir.path(), &events);
    let unreadable = |settings: &[(&str, &str)]| {
        let (login, table) = timeline(&export, user, settings);
        assert_eq!(login["origin"]["state"], "unreadable", "{login:#}");
        assert_eq!(login["outcome"]["state"], "approved", "{login:#}");
        assert!(!table.contains("203.0.113.7"), "{table}");
        assert!(
            table.contains("1 login(s), 1 whose personal data could not be read"),
            "{table}"
        );
        login["origin"]["error"].as_str().unwrap().to_owned()
    };

    // Another key under the same id: the stored key does not unwrap.
    let same_id = MasterKeys::generate_entry("test-1");
    let error = unreadable(&[
        ("MFA_MASTER_KEYS", &same_id),
        ("MFA_DATABASE_URL", &database_url),
    ]);
    assert!(error.contains("does not unwrap"), "{error}");
    // The master key it was wrapped under is not configured.
    let other_id = MasterKeys::generate_entry("test-2");
    let error = unreadable(&[
        ("MFA_MASTER_KEYS", &other_id),
        ("MFA_DATABASE_URL", &database_url),
    ]);
    assert!(
        error.contains("\"test-1\", which is not configured"),
        "{error}"
    );
    // The key database does not answer (nothing listens on the discard port).
    let error = unreadable(&[
        ("MFA_MASTER_KEYS", &protection.master_keys),
        ("MFA_DATABASE_URL", "postgres://mfa:mfa@127.0.0.1:9/mfa"),
    ]);
    assert!(
        error.contains("cannot reach the data keys' database (MFA_DATABASE_URL)"),
        "{error}"
    );
    // Not a setting that can be used: said before the log is read.
    let refused = audit_with(
        &["timeline", "--user", &user.to_string(), "--from", &export],
        &[("MFA_MASTER_KEYS", &protection.master_keys)],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("MFA_DATABASE_URL"),
        "{}",
        text(&refused.stderr)
    );
}
