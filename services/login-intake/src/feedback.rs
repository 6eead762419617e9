//! The user's own word on a login from a client backend or an admin (issue 17), as Cognito's
//! `AdminUpdateAuthEventFeedback`: `POST /v1/logins/{attempt_id}/feedback` with the client
//! API key (its company's logins only), `POST /v1/admin/logins/{attempt_id}/feedback` with the
//! admin key. The feedback is stored as the login's one `login_feedback` row and announced as
//! `LoginFeedback` through the outbox, in one transaction. (The notification email's links
//! are the verifier's: `verifier::feedback`.)
//!
//! A login has one feedback, whoever gives it: the same verdict again answers `200` with the
//! feedback recorded (a retried call is harmless, and nothing is announced twice), another
//! verdict `409 feedback_already_given`. Feedback given here also uses up the links of the
//! login's notification email, so they answer "already used".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use mfa_http::api_keys::ClientKey;
use mfa_http::{error_response, JsonBody};
use mfa_store::data_keys::{self, DataKeyError, SubjectState};
use mfa_store::outbox;
use shared::domain::{AttemptId, CompanyId, UserId};
use shared::events::{
    Envelope, Event, FeedbackSource, FeedbackVerdict, LoginFeedback, ReportedClient,
};
use shared::personal::Subject;
use uuid::Uuid;

use crate::intake::PRODUCER;
use crate::startup::AppState;

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub verdict: Verdict,
}

/// Whether the login was the user's.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    WasMe,
    WasntMe,
}

impl From<Verdict> for FeedbackVerdict {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::WasMe => FeedbackVerdict::WasMe,
            Verdict::WasntMe => FeedbackVerdict::WasntMe,
        }
    }
}

/// The feedback the login has.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FeedbackRecorded {
    pub attempt_id: Uuid,
    pub user_id: Uuid,
    /// `was_me` or `wasnt_me`.
    pub verdict: String,
    /// Who gave it first: `email_link`, `client` or `admin`.
    pub source: String,
    pub given_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("no login attempt with this id")]
    UnknownAttempt,
    #[error("this login already has the other verdict ({verdict}, from {given_by})")]
    AlreadyGiven { verdict: String, given_by: String },
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("sealing the login's address and device id")]
    DataKeys(#[from] DataKeyError),
}

impl IntoResponse for FeedbackError {
    fn into_response(self) -> Response {
        match &self {
            FeedbackError::UnknownAttempt => {
                error_response(StatusCode::NOT_FOUND, "unknown_attempt", self.to_string())
            }
            FeedbackError::AlreadyGiven { .. } => error_response(
                StatusCode::CONFLICT,
                "feedback_already_given",
                self.to_string(),
            ),
            FeedbackError::Database(_) | FeedbackError::DataKeys(_) => {
                tracing::error!(error = %mfa_runtime::supervise::error_chain(&self), "login feedback: unavailable");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "the service is temporarily unavailable; retry shortly",
                )
            }
        }
    }
}

/// Tell whether a login of this key's company was the user's.
#[utoipa::path(
    post, path = "/v1/logins/{attempt_id}/feedback", request_body = FeedbackRequest,
    params(("attempt_id" = Uuid, Path, description = "From the POST /v1/logins answer")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Recorded, and announced as `LoginFeedback`; or the same verdict was recorded before (nothing new is announced)", body = FeedbackRecorded),
        (status = 404, description = "`unknown_attempt`: no such login of a known account for this key's company", body = mfa_http::ErrorBody),
        (status = 409, description = "`feedback_already_given`: the login has the other verdict (from any source)", body = mfa_http::ErrorBody),
        (status = 422, description = "`invalid_request`: the verdict is not `was_me` or `wasnt_me`", body = mfa_http::ErrorBody),
    )
)]
pub async fn client_feedback(
    State(state): State<AppState>,
    Extension(key): Extension<ClientKey>,
    Path(attempt_id): Path<String>,
    JsonBody(request): JsonBody<FeedbackRequest>,
) -> Result<Json<FeedbackRecorded>, FeedbackError> {
    give(
        &state,
        &attempt_id,
        Some(&key.company_id),
        request.verdict.into(),
        FeedbackSource::Client,
    )
    .await
}

/// Tell whether a login was the user's (an admin's word, e.g. after the user called support).
#[utoipa::path(
    post, path = "/v1/admin/logins/{attempt_id}/feedback", request_body = FeedbackRequest,
    params(("attempt_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Recorded, and announced as `LoginFeedback`; or the same verdict was recorded before (nothing new is announced)", body = FeedbackRecorded),
        (status = 404, description = "`unknown_attempt`: no such login of a known account", body = mfa_http::ErrorBody),
        (status = 409, description = "`feedback_already_given`: the login has the other verdict (from any source)", body = mfa_http::ErrorBody),
        (status = 422, description = "`invalid_request`: the verdict is not `was_me` or `wasnt_me`", body = mfa_http::ErrorBody),
    )
)]
pub async fn admin_feedback(
    State(state): State<AppState>,
    Path(attempt_id): Path<String>,
    JsonBody(request): JsonBody<FeedbackRequest>,
) -> Result<Json<FeedbackRecorded>, FeedbackError> {
    give(
        &state,
        &attempt_id,
        None,
        request.verdict.into(),
        FeedbackSource::Admin,
    )
    .await
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    user_id: Uuid,
    company_id: String,
    ip: Option<String>,
    device_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct FeedbackRow {
    user_id: Uuid,
    verdict: String,
    source: String,
    given_at: DateTime<Utc>,
}

/// Records the feedback of `source` on the login, once; `company`: only that company's.
async fn give(
    state: &AppState,
    raw_attempt: &str,
    company: Option<&CompanyId>,
    verdict: FeedbackVerdict,
    source: FeedbackSource,
) -> Result<Json<FeedbackRecorded>, FeedbackError> {
    let attempt_id = AttemptId::parse(raw_attempt).map_err(|_| FeedbackError::UnknownAttempt)?;
    let pool = state.intake.store.pool();
    let mut tx = pool.begin().await?;
    // Another company's login is as unknown as a missing one; so is an unknown account's
    // (nobody to give feedback for).
    let attempt: AttemptRow = sqlx::query_as(
        "SELECT user_id, company_id, ip, device_id FROM login_attempts
         WHERE attempt_id = $1 AND user_id IS NOT NULL AND company_id IS NOT NULL
           AND ($2::text IS NULL OR company_id = $2)",
    )
    .bind(attempt_id.as_uuid())
    .bind(company.map(CompanyId::as_str))
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(FeedbackError::UnknownAttempt)?;
    let inserted: Option<FeedbackRow> = sqlx::query_as(
        "INSERT INTO login_feedback (attempt_id, user_id, company_id, verdict, source)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (attempt_id) DO NOTHING
         RETURNING user_id, verdict, source, given_at",
    )
    .bind(attempt_id.as_uuid())
    .bind(attempt.user_id)
    .bind(&attempt.company_id)
    .bind(verdict.as_str())
    .bind(source.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(recorded) = inserted else {
        drop(tx);
        return earlier(state, attempt_id, verdict).await;
    };
    let Ok(company_id) = CompanyId::parse(&attempt.company_id) else {
        // Stored by this service from a parsed id: a row edited by hand is nobody's login.
        return Err(FeedbackError::UnknownAttempt);
    };
    let user_id = UserId::from_uuid(attempt.user_id);
    // The notification email's links are used up by this feedback.
    sqlx::query(
        "UPDATE login_notifications SET feedback_verdict = $2, feedback_at = now()
         WHERE attempt_id = $1 AND feedback_at IS NULL",
    )
    .bind(attempt_id.as_uuid())
    .bind(verdict.as_str())
    .execute(&mut *tx)
    .await?;
    let now = Utc::now();
    let reported =
        ReportedClient::from_recorded(attempt.ip.as_deref(), attempt.device_id.as_deref());
    let reported = match state
        .intake
        .data_keys
        .seal_reported(user_id, attempt_id, now, &reported)
        .await
    {
        // The user was deleted meanwhile: nobody to give feedback for.
        Err(DataKeyError::SubjectErased(_)) => return Err(FeedbackError::UnknownAttempt),
        sealed => sealed?,
    };
    // What decides (data_keys' module comment): the deletion waits for this transaction, or
    // it committed first and this login is as unknown as it is about to be.
    if data_keys::hold_subject(&mut tx, Subject::User(user_id)).await? == SubjectState::Erased {
        return Err(FeedbackError::UnknownAttempt);
    }
    let event = Envelope::new(
        PRODUCER,
        attempt_id,
        None,
        now,
        Event::LoginFeedback(LoginFeedback {
            user_id,
            company_id,
            verdict,
            source,
            reported,
        }),
    );
    outbox::enqueue(
        &mut tx,
        PRODUCER,
        &state.intake.topics.accounts,
        &user_id.to_string(),
        &event,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%attempt_id, verdict = verdict.as_str(), source = source.as_str(), "login feedback");
    Ok(Json(answer(attempt_id, recorded)))
}

/// The login had its feedback already: the same verdict is that feedback, another a conflict.
async fn earlier(
    state: &AppState,
    attempt_id: AttemptId,
    verdict: FeedbackVerdict,
) -> Result<Json<FeedbackRecorded>, FeedbackError> {
    let recorded: FeedbackRow = sqlx::query_as(
        "SELECT user_id, verdict, source, given_at FROM login_feedback WHERE attempt_id = $1",
    )
    .bind(attempt_id.as_uuid())
    .fetch_optional(state.intake.store.pool())
    .await?
    // Deleted in between (the account was): as unknown as it is now.
    .ok_or(FeedbackError::UnknownAttempt)?;
    if recorded.verdict != verdict.as_str() {
        return Err(FeedbackError::AlreadyGiven {
            verdict: recorded.verdict,
            given_by: recorded.source,
        });
    }
    Ok(Json(answer(attempt_id, recorded)))
}

fn answer(attempt_id: AttemptId, recorded: FeedbackRow) -> FeedbackRecorded {
    FeedbackRecorded {
        attempt_id: attempt_id.as_uuid(),
        user_id: recorded.user_id,
        verdict: recorded.verdict,
        source: recorded.source,
        given_at: recorded.given_at,
    }
}
