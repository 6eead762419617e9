//! The challenges table as the code worker uses it, on the stack's PostgreSQL: what the
//! consumer stores for the sender (the `MfaRequired`'s time, which times the delivery, and
//! the consumer span's trace context, which the email's span and its outcome continue), and
//! the outcome written into the outbox with its record.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use code_worker::challenges::{ChallengeStore, EmailContext, NewChallenge};
use mfa_runtime::telemetry::{self, TraceExport};
use mfa_runtime::trace_context::current_traceparent;
use mfa_testkit::stack;
use shared::domain::{AttemptId, ChallengeId, CompanyId, Locale, Platform, UserAgent, UserId};
use shared::events::{CodeSent, Envelope, Event};
use tracing::Instrument;

#[tokio::test]
async fn a_challenge_keeps_its_mfa_required_time_and_trace_through_to_its_outcome() {
    // The OpenTelemetry layer, exporting nothing: spans get trace contexts to store.
    let _telemetry = telemetry::init_with(
        "code-worker-test",
        TraceExport {
            otlp_endpoint: None,
            captured_log_lines: true,
        },
    )
    .unwrap();
    let database_url = secrecy::SecretString::from(stack::create_database().await);
    let pool = mfa_store::db::connect(&database_url, 2).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let store = ChallengeStore::new(pool.clone());

    // Microseconds, as PostgreSQL keeps times.
    let mfa_required_at = Utc::now().trunc_subsecs(6) - chrono::Duration::seconds(3);
    let (challenge_id, attempt_id, user_id) =
        (ChallengeId::new_random(), AttemptId::new(), UserId::new());
    let expires_at = mfa_required_at + chrono::Duration::minutes(10);
    let consume = tracing::info_span!("consume");
    let consumer_context = consume
        .in_scope(current_traceparent)
        .expect("a traced span has a context");
    store
        .store(&NewChallenge {
            challenge_id,
            attempt_id,
            user_id,
            company_id: CompanyId::parse("acme").unwrap(),
            code_hash: vec![1; 32],
            expires_at,
            cause_event_id: uuid::Uuid::now_v7(),
            sealed_code: vec![2; 40],
            email: EmailContext {
                platform: Platform::Dashboard,
                ip: "192.0.2.7".parse().unwrap(),
                user_agent: UserAgent::parse("Mozilla/5.0").unwrap(),
                locale: Locale::default(),
            },
            give_up_at: expires_at,
            mfa_required_at,
        })
        .instrument(consume)
        .await
        .unwrap();

    let due = store
        .claim_due_emails(10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    let email = &due[0];
    assert_eq!(email.challenge_id, challenge_id);
    assert_eq!(email.mfa_required_at, Some(mfa_required_at));
    assert_eq!(
        email.traceparent.as_deref(),
        Some(consumer_context.as_str())
    );

    let outcome = Envelope::new(
        "code-worker",
        attempt_id,
        None,
        Utc::now(),
        Event::CodeSent(CodeSent {
            user_id,
            challenge_id,
            expires_at,
        }),
    );
    let topic = "t.challenges";
    assert!(store
        .record_outcome(challenge_id, &outcome, true, topic)
        .instrument(tracing::info_span!("send code email"))
        .await
        .unwrap());
    // A second sender's record (after a lease ran out) changes nothing, and says so: the
    // outcome is counted once.
    assert!(!store
        .record_outcome(challenge_id, &outcome, true, topic)
        .await
        .unwrap());

    // The outcome waits in the outbox, written with it, keyed by the user, in the trace of
    // the span that recorded it (which continued the challenge's).
    let outbox = || async {
        sqlx::query_as::<_, (uuid::Uuid, String, String, String, Vec<u8>, Option<String>)>(
            "SELECT event_id, producer, topic, key, payload, traceparent FROM outbox",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let rows = outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (event_id, producer, row_topic, key, payload, traceparent) = &rows[0];
    assert_eq!(*event_id, outcome.event_id);
    assert_eq!(
        (producer.as_str(), row_topic.as_str()),
        ("code-worker", topic)
    );
    assert_eq!(key, &user_id.to_string());
    assert_eq!(Envelope::from_json(payload).unwrap(), outcome);
    assert!(traceparent.is_some());

    // A redelivered MfaRequired writes the same event again: nothing new while it waits.
    assert!(store
        .enqueue_recorded_outcome(challenge_id, topic)
        .await
        .unwrap());
    assert_eq!(outbox().await, rows);
    assert!(!store
        .enqueue_recorded_outcome(ChallengeId::new_random(), topic)
        .await
        .unwrap());
}
