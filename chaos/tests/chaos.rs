//! The short version of each chaos scenario: a few seconds of logins around each fault,
//! against real processes, then the audit. One at a time: each starts a whole system.
// A test binary: a step that fails (`expect`) fails the test, helpers included, which
// clippy's allow-*-in-tests does not reach outside `#[test]` functions.
#![allow(clippy::expect_used)]

use chaos::scenario::{run, RunOptions, Scenario};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn passes(scenario: Scenario) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let outcome = run(scenario.name(), &RunOptions::short(scenario))
        .await
        .expect("the system starts");
    let report = &outcome.reports[0];
    assert!(outcome.passed(), "{report}\nlogs: {:?}", outcome.logs);
    // The scenario did something: logins went through it and its faults happened.
    assert!(
        report.counts.accepted > 0 && report.counts.approved_after_mfa > 0,
        "{report}"
    );
    assert!(!report.faults.is_empty(), "{report}");
    // The auditor's proofs held over a log that was really sealed and signed.
    let proofs = &report.counts.proofs;
    assert!(
        proofs.events > 0 && proofs.chains == 4 && proofs.checkpoints_matched > 0,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_service_in_turn_loses_and_doubles_nothing() {
    passes(Scenario::KillEach).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_stops_each_service_within_ten_seconds_and_loses_nothing() {
    passes(Scenario::RollingRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_replica_hands_its_partitions_over() {
    passes(Scenario::Replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_and_doubles_nothing() {
    passes(Scenario::BrokerRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_loses_and_doubles_nothing() {
    passes(Scenario::DatabaseRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_the_brokers_own_database_loses_and_doubles_nothing() {
    passes(Scenario::BrokerStorageRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_emails_and_sends_each_once() {
    passes(Scenario::SmtpOutage).await;
}
