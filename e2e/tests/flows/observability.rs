//! What an operator sees (issue 15): each service's `/metrics` moves as logins go through,
//! one login is one trace across the four services (exported over OTLP to a collector the
//! test runs), and a real Prometheus scrapes the services and evaluates every alert rule and
//! every dashboard panel's query, which may name only series the services expose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::metrics::Scrape;
use crate::support::otlp::{CollectedSpan, Collector};
use crate::support::*;

/// Scrapes every service until `check` accepts the figures (the workers count a Kafka hop
/// after the call that set them off answered), or fails with the last ones.
async fn wait_for_figures(
    system: &TestSystem,
    what: &str,
    check: impl Fn(&BTreeMap<&'static str, Scrape>) -> bool,
) -> BTreeMap<&'static str, Scrape> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut scrapes = BTreeMap::new();
        for (service, url) in system.metrics_urls() {
            scrapes.insert(service, Scrape::of(&system.http, &url).await);
        }
        if check(&scrapes) {
            return scrapes;
        }
        assert!(Instant::now() < deadline, "{what}: never seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new user's first login, on a laptop at home: `mfa_required`, and the emailed code.
struct FirstLogin {
    email: String,
    user_id: String,
    attempt_id: String,
    challenge: String,
    code: String,
}

async fn first_login(system: &TestSystem, label: &str) -> FirstLogin {
    let email = unique_email(label);
    let user_id = system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;
    let login = system
        .login(&email, PASSWORD, Some("laptop-1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(login.body["status"], "mfa_required", "{}", login.body);
    let code = system.mail.wait_for_code(&email, 1).await;
    FirstLogin {
        attempt_id: login.body["attempt_id"].as_str().unwrap().to_owned(),
        challenge: login.body["challenge_id"].as_str().unwrap().to_owned(),
        email,
        user_id,
        code,
    }
}

/// A first login with MFA (one wrong code, then the right one), the same login again
/// (approved), a wrong password: each moves its own figures, in the service that counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_figure_moves_as_logins_go_through_the_four_services() {
    let system = spawn_system().await;
    let before = wait_for_figures(&system, "the first scrape", |_| true).await;
    let FirstLogin {
        email,
        user_id,
        challenge,
        code,
        ..
    } = first_login(&system, "metrics").await;
    let after_mfa = wait_for_figures(&system, "the code email counted", |s| {
        s["code-worker"].sum("mfa_code_deliveries_total", &[("outcome", "sent")]) >= 1.0
            && s["code-worker"].sum("mfa_code_delivery_seconds_count", &[]) >= 1.0
    })
    .await;
    let intake = &after_mfa["login-intake"];
    let mfa_logins = [
        ("platform", "dashboard"),
        ("auth_method", "password"),
        ("decision", "mfa_required"),
    ];
    assert_eq!(intake.sum("mfa_logins_total", &mfa_logins), 1.0);
    assert!(
        intake.sum(
            "mfa_login_decision_seconds_count",
            &[("auth_method", "password")]
        ) >= 1.0
    );
    assert!(intake.sum("mfa_argon2_hash_seconds_count", &[]) >= 1.0);
    assert!(intake.sum("mfa_argon2_wait_seconds_count", &[]) >= 1.0);
    assert!(
        intake.sum(
            "mfa_http_requests_total",
            &[
                ("route", "/v1/logins"),
                ("method", "POST"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    let risk = &after_mfa["risk-worker"];
    assert_eq!(risk.sum("mfa_risk_decisions_total", &mfa_logins), 1.0);
    assert_eq!(
        risk.sum("mfa_risk_reasons_total", &[("reason", "first_login")]),
        1.0
    );
    assert!(risk.sum("mfa_risk_levels_total", &[]) >= 1.0);
    let code_worker = &after_mfa["code-worker"];
    assert!(code_worker.sum("mfa_email_send_attempts_total", &[]) >= 1.0);
    assert_eq!(code_worker.sum("mfa_email_send_failures_total", &[]), 0.0);

    // A wrong code, then the right one.
    let wrong = system.verify(&challenge, wrong_code(&code)).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let verified = system.verify(&challenge, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    let verifier = &wait_for_figures(&system, "the verifications counted", |s| {
        s["verifier"].sum("mfa_verifications_total", &[("outcome", "verified")]) >= 1.0
    })
    .await["verifier"];
    assert_eq!(
        verifier.sum("mfa_verifications_total", &[("outcome", "wrong_code")]),
        1.0
    );
    assert_eq!(
        verifier.sum("mfa_verifications_total", &[("outcome", "verified")]),
        1.0
    );
    system.wait_until_learned(&user_id).await;

    // The same context again: approved, no code; a wrong password: rejected.
    let again = system
        .login(&email, PASSWORD, Some("laptop-1"), HOME_IP, CHROME_WINDOWS)
        .await;
    assert_eq!(again.body["status"], "approved", "{}", again.body);
    let refused = system
        .login(
            &email,
            "not the password",
            Some("laptop-1"),
            HOME_IP,
            CHROME_WINDOWS,
        )
        .await;
    assert_eq!(refused.body["status"], "rejected", "{}", refused.body);
    let after = wait_for_figures(&system, "the approval and the refusal counted", |s| {
        s["risk-worker"].sum("mfa_risk_decisions_total", &[("decision", "rejected")]) >= 1.0
    })
    .await;
    let intake = &after["login-intake"];
    assert_eq!(
        intake.sum("mfa_logins_total", &[("decision", "approved")]),
        1.0
    );
    assert_eq!(
        intake.sum(
            "mfa_logins_total",
            &[("decision", "rejected"), ("reason", "invalid_credentials")]
        ),
        1.0
    );
    let risk = &after["risk-worker"];
    assert_eq!(
        risk.sum(
            "mfa_risk_decisions_total",
            &[("decision", "rejected"), ("reason", "invalid_credentials")]
        ),
        1.0
    );
    assert_eq!(
        risk.sum("mfa_risk_decisions_total", &[("decision", "approved")]),
        1.0
    );
    // The logins' HTTP figures moved; the argon2 pool checked three passwords.
    assert!(intake.sum("mfa_argon2_hash_seconds_count", &[]) >= 3.0);

    // Every service reads its pool and published nothing in error; those with consumers
    // (the verifier has none: it reads the code worker's table) consumed, and nothing was
    // dead-lettered.
    for (service, scrape) in &after {
        assert!(
            scrape.sum("mfa_db_pool_max_connections", &[]) >= 1.0,
            "{service}"
        );
        assert!(
            scrape.has("mfa_db_pool_acquire_duration_seconds_count"),
            "{service}"
        );
        assert_eq!(
            scrape.sum("mfa_producer_errors_total", &[]),
            0.0,
            "{service}"
        );
        assert!(
            scrape.unbounded_labels().is_empty(),
            "{service}: personal values as labels: {:?}",
            scrape.unbounded_labels()
        );
        if *service == "verifier" {
            continue;
        }
        let handled = scrape.sum("mfa_consumer_messages_total", &[("outcome", "handled")]);
        let handled_before =
            before[service].sum("mfa_consumer_messages_total", &[("outcome", "handled")]);
        assert!(handled > handled_before, "{service} consumed nothing");
        assert_eq!(
            scrape.sum(
                "mfa_consumer_messages_total",
                &[("outcome", "dead_lettered")]
            ),
            0.0,
            "{service}"
        );
        assert!(
            scrape.sum("mfa_consumer_handle_duration_seconds_count", &[]) >= 1.0,
            "{service}"
        );
    }
    // Publishing follows the commit (the relays, the code worker's outcome loop): waited for.
    let after = wait_for_figures(&system, "every producer's publishes", |s| {
        ["login-intake", "risk-worker", "code-worker"]
            .iter()
            .all(|service| s[service].sum("mfa_producer_messages_total", &[]) >= 1.0)
            && ["risk-worker", "verifier", "code-worker"]
                .iter()
                .all(|service| s[service].sum("mfa_outbox_published_total", &[]) >= 1.0)
    })
    .await;
    for service in ["login-intake", "risk-worker", "code-worker"] {
        assert!(
            after[service].sum("mfa_producer_messages_total", &[]) >= 1.0,
            "{service} published"
        );
    }
    // The code worker's outbox is its email outcomes waiting in `challenges`.
    for service in ["risk-worker", "verifier", "code-worker"] {
        assert!(
            after[service].sum("mfa_outbox_published_total", &[]) >= 1.0,
            "{service}'s outbox"
        );
        assert!(after[service].has("mfa_outbox_pending_rows"), "{service}");
        assert!(
            after[service].has("mfa_outbox_oldest_pending_age_seconds"),
            "{service}"
        );
    }
    // The lag is measured every 5 s: each consumer reports its partitions'.
    wait_for_figures(&system, "the consumer lag of every consumer", |s| {
        ["login-intake", "risk-worker", "code-worker"]
            .iter()
            .all(|service| s[service].has("mfa_consumer_lag_messages"))
    })
    .await;
}

/// The login's spans, all in one trace: the request to login-intake is the root, and the risk
/// worker's and the code worker's consumer spans, the code email's, the verifier's check of
/// the code and login-intake's reading of the approval descend from it, through the Kafka
/// record headers, the outbox rows and the challenge. The verify request itself (a trace of
/// its own: its caller knows nothing of the login's) is linked with the check. Exported by
/// the real OTLP exporter to a collector of the test's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_is_one_trace_across_the_four_services() {
    let (collector, traces_url) = Collector::start().await;
    let telemetry = mfa_runtime::telemetry::init_with(
        "e2e",
        mfa_runtime::telemetry::TraceExport {
            otlp_endpoint: Some(traces_url),
            captured_log_lines: true,
        },
    )
    .unwrap();
    let system = spawn_system().await;
    let FirstLogin {
        attempt_id,
        challenge,
        code,
        ..
    } = first_login(&system, "trace").await;
    let verified = system.verify(&challenge, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);

    const VERIFY_REQUEST: &str = "POST /v1/challenges/{challenge_id}/verify";
    // The last hop: login-intake reads the verifier's approval.
    let deadline = Instant::now() + Duration::from_secs(30);
    let login_spans = loop {
        telemetry.flush();
        let spans: Vec<CollectedSpan> = collector
            .spans()
            .into_iter()
            .filter(|s| s.attributes.get("attempt_id") == Some(&attempt_id))
            .filter(|s| s.name != VERIFY_REQUEST)
            .collect();
        let groups: BTreeSet<String> = spans
            .iter()
            .filter_map(|s| s.attributes.get("messaging.consumer.group.name").cloned())
            .collect();
        let seen = |suffix: &str| groups.iter().any(|g| g.ends_with(suffix));
        if seen(".risk-worker")
            && seen(".code-worker")
            && seen(".login-intake")
            && spans.iter().any(|s| s.name == "verify code")
            // login-intake reading the verifier's approval: the last hop.
            && spans.iter().any(|s| {
                s.name.ends_with(".verifications process")
                    && s.attributes
                        .get("messaging.consumer.group.name")
                        .is_some_and(|g| g.ends_with(".login-intake"))
            })
            && spans.iter().any(|s| s.name == "send code email")
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "the login's spans never all arrived: consumer groups {groups:?}, spans {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let trace_ids: BTreeSet<&str> = login_spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(trace_ids.len(), 1, "one trace: {trace_ids:?}");
    let trace_id = *trace_ids.iter().next().unwrap();
    // Every span of that trace (the attempt_id is on the steps, not on each inner span).
    let trace: BTreeMap<String, CollectedSpan> = collector
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .map(|s| (s.span_id.clone(), s))
        .collect();
    let roots: Vec<&CollectedSpan> = trace
        .values()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:?}");
    // The edge's span of the login request, and inside it the routed one.
    assert_eq!(roots[0].name, "HTTP POST");
    let routed = login_spans
        .iter()
        .find(|s| s.name == "POST /v1/logins")
        .expect("the login request's routed span");
    assert_eq!(routed.parent_span_id, roots[0].span_id);
    // Each step's chain of parents reaches the root, with no span missing on the way.
    let chain = |span: &CollectedSpan| {
        let mut names = vec![span.name.clone()];
        let mut at = span;
        while !at.parent_span_id.is_empty() {
            at = trace.get(&at.parent_span_id).unwrap_or_else(|| {
                panic!(
                    "{}'s parent {} is not in the trace",
                    at.name, at.parent_span_id
                )
            });
            names.push(at.name.clone());
        }
        names
    };
    let of_group = |suffix: &str| {
        login_spans
            .iter()
            .find(|s| {
                s.attributes
                    .get("messaging.consumer.group.name")
                    .is_some_and(|g| g.ends_with(suffix))
            })
            .unwrap_or_else(|| panic!("a span of {suffix}"))
    };
    let from_the_login = |chain: &[String]| {
        chain.last().map(String::as_str) == Some("HTTP POST")
            && chain.iter().any(|n| n == "POST /v1/logins")
    };
    let risk = chain(of_group(".risk-worker"));
    assert!(from_the_login(&risk), "{risk:?}");
    let code_worker = chain(of_group(".code-worker"));
    assert!(
        code_worker
            .iter()
            .any(|n| n == &of_group(".risk-worker").name),
        "the code worker's span descends from the risk worker's: {code_worker:?}"
    );
    let sent = chain(
        login_spans
            .iter()
            .find(|s| s.name == "send code email")
            .unwrap(),
    );
    assert!(from_the_login(&sent), "{sent:?}");
    let verify = login_spans
        .iter()
        .find(|s| s.name == "verify code")
        .unwrap();
    let verify_chain = chain(verify);
    assert!(from_the_login(&verify_chain), "{verify_chain:?}");
    let request = collector
        .spans()
        .into_iter()
        .find(|s| s.name == VERIFY_REQUEST && s.attributes.get("attempt_id") == Some(&attempt_id))
        .expect("the verify request's span");
    assert_ne!(
        request.trace_id, trace_id,
        "the request is a trace of its own"
    );
    assert!(
        request.links.contains(&verify.span_id) && !verify.links.is_empty(),
        "the verify request and the check of the code are linked: {:?} / {:?}",
        request.links,
        verify.links
    );
    // login-intake reads the decision and then the approval after MFA: both in the trace.
    let intake_reads: Vec<Vec<String>> = login_spans
        .iter()
        .filter(|s| {
            s.attributes
                .get("messaging.consumer.group.name")
                .is_some_and(|g| g.ends_with(".login-intake"))
        })
        .map(chain)
        .collect();
    assert!(
        intake_reads
            .iter()
            .any(|c| c.contains(&"verify code".to_owned())),
        "the approval after MFA is read in the verifier's span's trace: {intake_reads:?}"
    );
}

/// Where the repository keeps the rules and the dashboard.
fn ops_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("ops")
        .join(path)
}

fn tool(name: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{name} is missing: scripts/install-tools installs Debian's prometheus package"
    );
    path
}

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempdir::Dir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(label: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("{label}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Prometheus {
    /// A Prometheus of its own, scraping `targets` every second with the repository's rules.
    async fn start(http: &reqwest::Client, targets: &[(&str, String)]) -> Prometheus {
        let dir = tempdir::Dir::new("prometheus");
        let static_configs: String = targets
            .iter()
            .map(|(service, url)| {
                let address = url
                    .trim_start_matches("http://")
                    .trim_end_matches("/metrics");
                format!(
                    "      - targets: ['{address}']\n        labels: {{service: '{service}'}}\n"
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '{}'\nscrape_configs:\n  - job_name: adaptive-mfa\n    static_configs:\n{static_configs}",
            ops_file("prometheus/alerts.yml").display()
        );
        let config_path = dir.0.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = mfa_testkit::net::free_port().unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http
            .get(format!("{}/-/ready", prometheus.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "prometheus never got ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        prometheus
    }

    async fn api(&self, http: &reqwest::Client, path: &str, query: &[(&str, &str)]) -> Value {
        let body: Value = http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body
    }
}

/// The metric names a PromQL expression uses (ours all start with `mfa_`), outside quoted
/// label values.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expr.chars().chain([' ']) {
        if quoted {
            quoted = c != '"';
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if word.starts_with("mfa_") {
            names.insert(std::mem::take(&mut word));
        }
        word.clear();
        quoted = c == '"';
    }
    names
}

/// The dashboard's queries, with Grafana's variables given values Prometheus takes.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(ops_file("grafana/dashboards/adaptive-mfa.json")).unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        // Rows may hold their panels.
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let expr = expr
                    .replace("$__rate_interval", "1m")
                    .replace("$__interval", "15s")
                    .replace("$__range", "1h");
                queries.push((panel["title"].as_str().unwrap_or("?").to_owned(), expr));
            }
        }
    }
    assert!(!queries.is_empty(), "the dashboard has queries");
    queries
}

/// Debian's Prometheus against the four services: every target up; `promtool` accepts the
/// rules and passes their unit tests; every rule evaluates without error; every dashboard
/// query is valid PromQL; and no rule or panel names a metric the services do not expose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_services_and_every_rule_and_panel_names_real_metrics() {
    let rules = ops_file("prometheus/alerts.yml");
    for args in [
        vec![
            "check".to_owned(),
            "rules".to_owned(),
            rules.display().to_string(),
        ],
        vec![
            "test".to_owned(),
            "rules".to_owned(),
            ops_file("prometheus/alerts.test.yml").display().to_string(),
        ],
    ] {
        let output = Command::new(tool("promtool")).args(&args).output().unwrap();
        assert!(
            output.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let system = spawn_system().await;
    // Some traffic, so the labelled families have series.
    let FirstLogin {
        challenge, code, ..
    } = first_login(&system, "prometheus").await;
    assert_eq!(
        system.verify(&challenge, wrong_code(&code)).await.status,
        401
    );
    assert_eq!(system.verify(&challenge, &code).await.status, 200);

    let targets = system.metrics_urls();
    let mut exposed = BTreeSet::from(["up".to_owned()]);
    for (_, url) in &targets {
        exposed.extend(Scrape::of(&system.http, url).await.queryable_names());
    }
    let prometheus = Prometheus::start(&system.http, &targets).await;

    // Every target scraped and up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = prometheus
            .api(
                &system.http,
                "query",
                &[("query", "up{job=\"adaptive-mfa\"}")],
            )
            .await;
        let results = up["data"]["result"].as_array().cloned().unwrap_or_default();
        if results.len() == targets.len() && results.iter().all(|r| r["value"][1] == "1") {
            break;
        }
        assert!(Instant::now() < deadline, "targets not all up: {up}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Each rule evaluated, without error, naming only exposed metrics.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rules = loop {
        let answer = prometheus.api(&system.http, "rules", &[]).await;
        let rules: Vec<Value> = answer["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        if !rules.is_empty() && rules.iter().all(|r| r["health"] != "unknown") {
            break rules;
        }
        assert!(Instant::now() < deadline, "rules never evaluated: {answer}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(rules.len() >= 5, "the alert rules: {rules:?}");
    for rule in &rules {
        assert_eq!(
            rule["health"], "ok",
            "rule {}: {}",
            rule["name"], rule["lastError"]
        );
        let query = rule["query"].as_str().unwrap();
        for name in metric_names(query) {
            assert!(
                exposed.contains(&name),
                "rule {} names {name}, which no service exposes",
                rule["name"]
            );
        }
    }

    // Each panel's query is valid PromQL and names only exposed metrics.
    for (title, expr) in dashboard_queries() {
        for name in metric_names(&expr) {
            assert!(
                exposed.contains(&name),
                "panel {title:?} names {name}, which no service exposes"
            );
        }
        let answer = prometheus
            .api(&system.http, "query", &[("query", &expr)])
            .await;
        assert_eq!(
            answer["status"], "success",
            "panel {title:?}: {expr}: {answer}"
        );
    }
    // And the figures reached Prometheus: the MFA rate the dashboard shows is not empty.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = prometheus
            .api(
                &system.http,
                "query",
                &[(
                    "query",
                    "sum(mfa_risk_decisions_total{decision=\"mfa_required\"})",
                )],
            )
            .await;
        if answer["data"]["result"][0]["value"][1] == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the decision never reached Prometheus: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        metric_names(
            "sum(rate(mfa_a_total[5m])) / clamp_min(sum(rate(mfa_b_bucket{x=\"mfa_c\"}[5m])), 1)"
        ),
        BTreeSet::from(["mfa_a_total".to_owned(), "mfa_b_bucket".to_owned()])
    );
}
