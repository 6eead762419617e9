//! Issue 10.4: login-intake's admin actions announce their `AccountChanged` through the
//! outbox, in the change's transaction, and each producer prunes only its own published rows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::kafka::read_topic;
use crate::support::proxy::{Mode, TcpProxy};
use crate::support::*;

/// A Tansu broker of this test's own (in-memory storage), which the services reach only
/// through a proxy: it advertises the proxy's address, so every connection a client opens,
/// bootstrap or not, goes through it, and cutting the proxy is a broker outage for this test
/// alone.
struct PrivateBroker {
    proxy: TcpProxy,
    tansu: Child,
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.tansu.kill();
        let _ = self.tansu.wait();
    }
}

impl PrivateBroker {
    async fn start() -> Self {
        let port = mfa_testkit::net::free_port().expect("a free port for the broker");
        let proxy = TcpProxy::start(([127, 0, 0, 1], port).into())
            .await
            .expect("the broker proxy starts");
        let listener = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://{}", proxy.addr);
        let tansu = Command::new(tansu_binary())
            .args(["broker", "--cluster-id", "e2e-private"])
            .args(["--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"])
            // As scripts/stack starts it: no .env of ours, no generic settings from the
            // environment, only these flags.
            .current_dir("/")
            .env_remove("CLUSTER_ID")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tansu starts");
        let broker = Self { proxy, tansu };
        mfa_testkit::net::wait_for_port(port, Duration::from_secs(30), "tansu")
            .await
            .expect("tansu listens");
        broker
    }

    fn address(&self) -> String {
        self.proxy.addr.to_string()
    }
}

/// Where `scripts/install-tools` put Tansu (it answers at once when nothing is missing).
fn tansu_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e lives in the repository")
        .to_path_buf();
    let output = std::process::Command::new(root.join("scripts/install-tools"))
        .arg("--print")
        .output()
        .expect("scripts/install-tools runs");
    assert!(
        output.status.success(),
        "scripts/install-tools --print failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("TANSU_BIN="))
        .map(PathBuf::from)
        .expect("install-tools prints TANSU_BIN")
}

async fn count(system: &TestSystem, query: &str, user_id: &str) -> i64 {
    sqlx::query_scalar(query)
        .bind(uuid::Uuid::parse_str(user_id).unwrap())
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

const RISK_ROWS: &str = "SELECT (SELECT count(*) FROM risk_login_history WHERE user_id = $1)
                              + (SELECT count(*) FROM risk_decisions WHERE user_id = $1)";
const UNPUBLISHED: &str = "SELECT count(*) FROM outbox
                           WHERE producer = 'login-intake' AND published_at IS NULL
                             AND $1::uuid IS NOT NULL";

/// Issue 10.4: the broker is unreachable at the moment an admin deletes a user. The delete
/// still answers 204 (it committed, with its announcement in the outbox); once the broker is
/// back the `AccountChanged` reaches the accounts topic and the risk worker deletes the
/// user's rows. (Before: the delete committed, its publish failed with a 503, the retry
/// answered 404, and the workers kept the user's rows forever.) A disable during the same
/// outage is announced too, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_announcements_survive_a_broker_outage_at_the_moment_of_the_change() {
    let broker = PrivateBroker::start().await;
    let system = spawn_system_with(Options {
        kafka_brokers: Some(broker.address()),
        ..Default::default()
    })
    .await;
    let (_, deleted_id) = system
        .enrolled_user("laptop-1", HOME_IP, CHROME_WINDOWS)
        .await;
    let (_, disabled_id) = system
        .enrolled_user("laptop-2", HOME_IP, CHROME_WINDOWS)
        .await;
    system.wait_until_learned(&deleted_id).await;
    assert!(count(&system, RISK_ROWS, &deleted_id).await > 0);

    broker.proxy.set(Mode::Refuse);
    let admin = |method: reqwest::Method, path: String| {
        system
            .http
            .request(method, format!("{}{path}", system.intake_url))
            .bearer_auth(ADMIN_KEY)
            .send()
    };
    let disable = admin(
        reqwest::Method::POST,
        format!("/v1/admin/users/{disabled_id}/disable"),
    )
    .await
    .unwrap();
    assert_eq!(
        disable.status(),
        204,
        "the disable commits without the broker"
    );
    let delete = admin(
        reqwest::Method::DELETE,
        format!("/v1/admin/users/{deleted_id}"),
    )
    .await
    .unwrap();
    assert_eq!(
        delete.status(),
        204,
        "the delete commits without the broker"
    );
    let gone: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE user_id = $1")
        .bind(uuid::Uuid::parse_str(&deleted_id).unwrap())
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(gone, 0, "the delete committed");
    // The announcements wait in the outbox while the broker is away; the workers still have
    // the user's rows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&system, UNPUBLISHED, &deleted_id).await, 2);
    assert!(count(&system, RISK_ROWS, &deleted_id).await > 0);

    broker.proxy.set(Mode::Forward);
    let started = Instant::now();
    while count(&system, RISK_ROWS, &deleted_id).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the risk worker never deleted the user's rows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count(&system, UNPUBLISHED, &deleted_id).await, 0);

    let announced: Vec<Value> = read_topic(&system.kafka, &system.kafka.topics().accounts)
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    let change_of = |user_id: &str| -> Vec<Value> {
        announced
            .iter()
            .filter(|v| v["payload"]["user_id"] == user_id)
            .map(|v| v["payload"]["change"].clone())
            .collect()
    };
    assert_eq!(change_of(&deleted_id), vec![Value::from("deleted")]);
    assert_eq!(change_of(&disabled_id), vec![Value::from("disabled")]);
    for event in &announced {
        assert_eq!(event["event_type"], "AccountChanged");
        assert_eq!(event["producer"], "login-intake");
    }
}

/// Each producer's housekeeping prunes its own published outbox rows, once they are an hour
/// old, and nobody else's: not another service's, and never an unpublished row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_producer_prunes_only_its_own_published_outbox_rows() {
    let system = spawn_system().await;
    let pool = &system.pool;
    let now = chrono::Utc::now();
    let two_hours_ago = now - chrono::Duration::hours(2);
    let producers = ["login-intake", "risk-worker", "verifier", "someone-else"];
    // For each producer: an old published row, a fresh published row, an old unpublished row.
    for producer in producers {
        for (created, published) in [
            (two_hours_ago, Some(two_hours_ago)),
            (now, Some(now)),
            (two_hours_ago, None),
        ] {
            sqlx::query(
                "INSERT INTO outbox (event_id, producer, topic, key, payload, created_at, published_at)
                 VALUES ($1, $2, 'topic', 'key', '\\x00', $3, $4)",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(producer)
            .bind(created)
            .bind(published)
            .execute(pool)
            .await
            .unwrap();
        }
    }
    let left = |producer: &'static str| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE producer = $1")
            .bind(producer)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    let sweeps_of = [
        (
            "login-intake",
            login_intake::housekeeping::sweeps(&Options::default().rate_limits),
        ),
        (
            "risk-worker",
            risk_worker::housekeeping::sweeps(&risk_worker::rules::Policy::default()),
        ),
        ("verifier", verifier::housekeeping::sweeps()),
    ];
    let mut pruned = Vec::new();
    for (producer, sweeps) in sweeps_of {
        let outbox: Vec<_> = sweeps.into_iter().filter(|s| s.table == "outbox").collect();
        assert_eq!(outbox.len(), 1, "{producer} sweeps its outbox rows");
        let removed = mfa_store::housekeeping::sweep_once(pool, &outbox, now)
            .await
            .unwrap();
        assert_eq!(removed, vec![("outbox", 1)], "{producer}: its one old row");
        pruned.push(producer);
        for other in producers {
            let expected = if pruned.contains(&other) { 2 } else { 3 };
            assert_eq!(
                left(other).await,
                expected,
                "{other} after {producer}'s sweep"
            );
        }
    }
    // The code worker writes no outbox rows, so it has no outbox sweep.
    assert!(code_worker::housekeeping::sweeps()
        .iter()
        .all(|s| s.table != "outbox"));
}
