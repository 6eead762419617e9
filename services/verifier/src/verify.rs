//! `POST /v1/challenges/{challenge_id}/verify`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Extension;
use axum::Json;
use chrono::Utc;
use mfa_code_hash::CodeHasher;
use mfa_http::api_keys::ClientKey;
use mfa_http::JsonBody;
use mfa_runtime::trace_context::continue_trace;
use mfa_store::outbox;
use opentelemetry::trace::TraceContextExt;
use shared::domain::{AttemptId, ChallengeId, OtpCode, UserId};
use shared::events::{Envelope, Event, LoginApproved, MfaFailed, MfaFailureReason, MfaSucceeded};
use shared::topics::Topics;
use sqlx::{PgPool, Postgres, Transaction};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::challenges;
use crate::error::VerifyError;
use crate::judge::{judge, CodeLimits, Verdict};
use crate::metrics::VerifierMetrics;

pub const PRODUCER: &str = "verifier";

#[derive(Clone)]
pub struct VerifyState {
    pub pool: PgPool,
    pub hasher: CodeHasher,
    pub topics: Arc<Topics>,
    pub code_limits: CodeLimits,
    pub metrics: VerifierMetrics,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The 6 digits from the email.
    #[schema(schema_with = mfa_http::openapi::otp_code)]
    pub code: String,
}

impl VerifyRequest {
    /// The code in a raw body, parsed as strictly as the handler does.
    pub fn parse(body: &[u8]) -> Result<OtpCode, VerifyError> {
        let request: VerifyRequest =
            serde_json::from_slice(body).map_err(|e| VerifyError::InvalidRequest(e.to_string()))?;
        request.code()
    }

    fn code(&self) -> Result<OtpCode, VerifyError> {
        OtpCode::parse(&self.code).map_err(|e| VerifyError::InvalidRequest(e.to_string()))
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VerifyApproved {
    /// Always `approved`.
    pub status: String,
    pub attempt_id: Uuid,
    pub user_id: Uuid,
}

/// Verify the emailed code.
#[utoipa::path(
    post, path = "/v1/challenges/{challenge_id}/verify", request_body = VerifyRequest,
    params(
        ("challenge_id" = Uuid, Path, description = "From the mfa_required answer"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body get the first answer again, using no extra try"),
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Correct code: the login is approved", body = VerifyApproved),
        (status = 401, description = "`invalid_code` (with attempts_remaining)", body = crate::error::VerifyErrorBody),
        (status = 403, description = "`too_many_attempts`: locked; log in again", body = crate::error::VerifyErrorBody),
        (status = 404, description = "`unknown_challenge`: no such challenge for this key's company", body = crate::error::VerifyErrorBody),
        (status = 409, description = "`already_used`", body = crate::error::VerifyErrorBody),
        (status = 410, description = "`expired_code`, `superseded` (a newer code was sent) or `revoked` (the account was changed since: password changed or sign-in disabled); log in again", body = crate::error::VerifyErrorBody),
        (status = 422, description = "`invalid_request`: the code is not 6 digits, or the body is not this request (no try is used)", body = crate::error::VerifyErrorBody),
    )
)]
pub async fn verify(
    State(state): State<VerifyState>,
    Extension(key): Extension<ClientKey>,
    Path(challenge_id): Path<String>,
    JsonBody(request): JsonBody<VerifyRequest>,
) -> Result<Json<VerifyApproved>, VerifyError> {
    let Ok(challenge_id) = ChallengeId::parse(&challenge_id) else {
        state.metrics.verified(None);
        return Err(VerifyError::UnknownChallenge);
    };
    let code = request.code()?;

    let mut tx = state.pool.begin().await?;
    // Another company's challenge is as unknown as a missing one: its id tells nothing.
    let Some(challenge) = challenges::lock(&mut tx, challenge_id)
        .await?
        .filter(|challenge| challenge.company_id.as_deref() == Some(key.company_id.as_str()))
    else {
        state.metrics.verified(None);
        return Err(VerifyError::UnknownChallenge);
    };
    let request_span = tracing::Span::current();
    request_span.record("attempt_id", tracing::field::display(challenge.attempt_id));
    let span = try_span(
        challenge.attempt_id,
        challenge_id,
        challenge.traceparent.as_deref(),
        &request_span,
    );
    let verdict = judge_and_record(&state, tx, &challenge, challenge_id, &code)
        .instrument(span.clone())
        .await?;
    span.record("outcome", crate::metrics::outcome(Some(verdict)));
    state.metrics.verified(Some(verdict));

    match verdict {
        Verdict::Approved => Ok(Json(VerifyApproved {
            status: "approved".into(),
            attempt_id: challenge.attempt_id.as_uuid(),
            user_id: challenge.user_id.as_uuid(),
        })),
        Verdict::WrongCode { attempts_remaining } => {
            Err(VerifyError::InvalidCode { attempts_remaining })
        }
        Verdict::LockedNow | Verdict::Locked => Err(VerifyError::TooManyAttempts),
        Verdict::Expired => Err(VerifyError::ExpiredCode),
        Verdict::AlreadyUsed => Err(VerifyError::AlreadyUsed),
        Verdict::Superseded => Err(VerifyError::Superseded),
        Verdict::Revoked => Err(VerifyError::Revoked),
    }
}

/// Judges the try on the locked challenge and commits its result with its events.
async fn judge_and_record(
    state: &VerifyState,
    mut tx: Transaction<'_, Postgres>,
    challenge: &challenges::ChallengeRow,
    challenge_id: ChallengeId,
    code: &OtpCode,
) -> Result<Verdict, VerifyError> {
    let now = Utc::now();
    let verdict = judge(&challenge.state, now, state.code_limits, || {
        state
            .hasher
            .matches(challenge_id, code, &challenge.code_hash)
    });
    challenges::record(&mut tx, challenge_id, verdict).await?;

    // The try's result and its events commit together (the outbox, published by the relay):
    // no approval the event log does not show, and no event for a try that was rolled back.
    // Enqueued in this span, the events carry the login's trace on to their consumers.
    let events = events_for(verdict, challenge.user_id, challenge_id);
    let key = challenge.user_id.to_string();
    let mut cause = challenge.mfa_required_event_id;
    for event in events {
        let envelope = Envelope::new(PRODUCER, challenge.attempt_id, Some(cause), now, event);
        outbox::enqueue(
            &mut tx,
            PRODUCER,
            &state.topics.verifications,
            &key,
            &envelope,
        )
        .await?;
        cause = envelope.event_id;
    }
    tx.commit().await?;
    tracing::info!(%challenge_id, ?verdict, "code verified");
    Ok(verdict)
}

/// The span of one try. The try belongs to the login's trace (`traceparent`: the code
/// worker's span that made the challenge), not only to the trace of this HTTP request (the
/// page's, or the client backend's): its span continues the login's, and it and the request's
/// span are linked both ways.
fn try_span(
    attempt_id: AttemptId,
    challenge_id: ChallengeId,
    traceparent: Option<&str>,
    request_span: &tracing::Span,
) -> tracing::Span {
    let span = tracing::info_span!(
        "verify code",
        attempt_id = %attempt_id,
        %challenge_id,
        outcome = tracing::field::Empty,
    );
    continue_trace(&span, traceparent);
    link_each_other(&span, request_span);
    span
}

/// Links `a` and `b` to each other, so a trace viewer leads from either trace to the other.
/// `a` must not have been entered yet, and its parent must already be set: reading its
/// context starts it. Harmless without an OpenTelemetry layer: the contexts are then invalid
/// and no link is made.
fn link_each_other(a: &tracing::Span, b: &tracing::Span) {
    a.add_link(b.context().span().span_context().clone());
    b.add_link(a.context().span().span_context().clone());
}

/// The events a try produces, in order: each after the first is caused by the one before.
fn events_for(verdict: Verdict, user_id: UserId, challenge_id: ChallengeId) -> Vec<Event> {
    let failed = |reason, attempts_remaining| {
        vec![Event::MfaFailed(MfaFailed {
            user_id,
            challenge_id,
            reason,
            attempts_remaining,
        })]
    };
    match verdict {
        Verdict::Approved => vec![
            Event::MfaSucceeded(MfaSucceeded {
                user_id,
                challenge_id,
            }),
            Event::LoginApproved(LoginApproved {
                counted: None,
                user_id,
                approved_after_mfa: true,
                challenge_id: Some(challenge_id),
                // The risk worker's MfaRequired carries the assessment that asked for it.
                risk: None,
            }),
        ],
        Verdict::WrongCode { attempts_remaining } => {
            failed(MfaFailureReason::InvalidCode, attempts_remaining)
        }
        Verdict::LockedNow | Verdict::Locked => failed(MfaFailureReason::TooManyAttempts, 0),
        Verdict::Expired => failed(MfaFailureReason::Expired, 0),
        Verdict::Superseded => failed(MfaFailureReason::Superseded, 0),
        Verdict::Revoked => failed(MfaFailureReason::Revoked, 0),
        // The flow already ended with its success; a replayed code adds nothing to the log.
        Verdict::AlreadyUsed => vec![],
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps what it is given, for the test to read.
    #[derive(Debug, Clone, Default)]
    struct Collected(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collected {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    const LOGIN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_try_continues_the_login_trace_and_is_linked_with_its_request_both_ways() {
        let collected = Collected::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collected.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request");
            let _in_request = request.enter();
            let span = try_span(
                AttemptId::new(),
                ChallengeId::new_random(),
                Some(LOGIN),
                &request,
            );
            span.in_scope(|| tracing::info!("judged"));
        });
        provider.force_flush().unwrap();

        let spans = collected.0.lock().unwrap();
        let named = |name: &str| {
            spans
                .iter()
                .find(|span| span.name == name)
                .unwrap_or_else(|| panic!("{name} in {spans:?}"))
        };
        let (request, judged) = (named("request"), named("verify code"));
        assert_eq!(
            judged.span_context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            judged.parent_span_id,
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        assert_ne!(
            request.span_context.trace_id(),
            judged.span_context.trace_id()
        );
        assert_eq!(judged.links.len(), 1);
        assert_eq!(judged.links[0].span_context, request.span_context);
        assert_eq!(request.links.len(), 1);
        assert_eq!(request.links[0].span_context, judged.span_context);
    }
}
