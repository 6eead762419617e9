//! `GET /v1/admin/users/{user_id}/logins`: a user's login attempts, newest first, as support
//! staff need them (like Cognito's `AdminListUserAuthEvents`): where each came from, what the
//! risk worker decided and why, what became of the code, and how the login ended.
//!
//! One query over what the services keep of a login while it can still be asked about
//! (`DECISION_RETENTION`): login-intake's `login_attempts` (the context, the decision and its
//! final state), the risk worker's `risk_decisions` (the risk level and reasons) and the code
//! worker's `challenges` (the email and the wrong codes; kept a day, after which the code's
//! outcome is told from the attempt's final state). The whole history is the event log's:
//! `mfa-audit timeline --user ID`.
//!
//! Pages are keyset ranges on (`created_at`, `attempt_id`), so a page deep into a long history
//! costs what the first one does (index `login_attempts_by_user`).

use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use mfa_http::page::{PageError, DEFAULT_LIMIT, MAX_LIMIT};
use shared::domain::{AuthMethod, ChallengeId, Platform, UserAgent, UserId};
use shared::events::{LoginAttempted, LoginClient, RiskAssessment};
use shared::user_agent::UserAgentSummary;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::decisions::{settle, ClosedReason};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{ChallengeNow, StoredDecision};

/// Stores the login's context with its attempt, for this list. Run in the transaction (or on
/// the connection) that records the attempt, so an attempt never lacks it.
pub async fn record_context<'e>(
    executor: impl PgExecutor<'e>,
    attempt_id: shared::domain::AttemptId,
    attempt: &LoginAttempted,
    client: &LoginClient,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_attempts
         SET platform = $2, ip = $3, user_agent = $4, device_id = $5, auth_method = $6
         WHERE attempt_id = $1",
    )
    .bind(attempt_id.as_uuid())
    .bind(attempt.platform.as_str())
    .bind(client.ip.to_string())
    .bind(client.user_agent.as_str())
    .bind(client.device_id.as_ref().map(|d| d.as_str()))
    .bind(attempt.auth_method.as_str())
    .execute(executor)
    .await?;
    Ok(())
}

/// Where a page starts: after the attempt (time, id) the previous page ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginCursor {
    pub created_at: DateTime<Utc>,
    pub attempt_id: Uuid,
}

/// The cursor format's first byte, and this list's tag (the admin lists of
/// `mfa_http::page` use 1 and 2): a cursor of another list is refused, not misread.
const CURSOR_VERSION: u8 = 1;
const CURSOR_TAG: u8 = 3;

impl LoginCursor {
    /// Opaque hex: version, tag, the time in microseconds (PostgreSQL's precision, so the
    /// range starts exactly after the row) and the attempt id.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(26);
        bytes.extend([CURSOR_VERSION, CURSOR_TAG]);
        bytes.extend(self.created_at.timestamp_micros().to_be_bytes());
        bytes.extend(self.attempt_id.as_bytes());
        hex::encode(bytes)
    }

    pub fn decode(cursor: &str) -> Result<Self, PageError> {
        let bytes = hex::decode(cursor).map_err(|_| PageError::InvalidCursor)?;
        let [CURSOR_VERSION, CURSOR_TAG, rest @ ..] = bytes.as_slice() else {
            return Err(PageError::InvalidCursor);
        };
        let (micros, id) = rest.split_at_checked(8).ok_or(PageError::InvalidCursor)?;
        let micros = i64::from_be_bytes(micros.try_into().map_err(|_| PageError::InvalidCursor)?);
        let created_at =
            DateTime::<Utc>::from_timestamp_micros(micros).ok_or(PageError::InvalidCursor)?;
        let attempt_id = Uuid::from_slice(id).map_err(|_| PageError::InvalidCursor)?;
        Ok(Self {
            created_at,
            attempt_id,
        })
    }
}

/// Which page: the query of the list.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLoginsQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl utoipa::IntoParams for UserLoginsQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use mfa_http::openapi;
        vec![
            crate::admin::query_param(
                "limit",
                &format!("Logins per page (default {DEFAULT_LIMIT})."),
                false,
                openapi::page_limit(),
            ),
            crate::admin::query_param(
                "cursor",
                "The `next_cursor` of the page before; absent: the newest logins.",
                false,
                openapi::page_cursor(),
            ),
        ]
    }
}

/// A parsed page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginsPageRequest {
    pub limit: u32,
    pub before: Option<LoginCursor>,
}

impl UserLoginsQuery {
    pub fn parse(&self) -> Result<LoginsPageRequest, PageError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::LimitOutOfRange);
        }
        let before = self
            .cursor
            .as_deref()
            .map(LoginCursor::decode)
            .transpose()?;
        Ok(LoginsPageRequest { limit, before })
    }
}

/// What the risk worker decided, before any code was typed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskDecision {
    /// Not decided yet.
    Pending,
    Approved,
    /// A code was emailed.
    MfaRequired,
    /// A code was needed, but one was emailed moments ago: no new email, the pending code
    /// stands (`CodeThrottled`).
    Throttled,
    /// See `rejection_reason`.
    Rejected,
}

/// The risk worker's assessment of the login.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LoginRisk {
    #[schema(example = "medium")]
    pub level: String,
    /// log10 of how much less likely this login is the user than anybody.
    pub score: f64,
    /// Stable codes, e.g. `new_device`, `new_country`, `impossible_travel`.
    #[schema(example = json!(["new_device", "new_network"]))]
    pub reasons: Vec<String>,
    pub model_version: String,
}

impl From<RiskAssessment> for LoginRisk {
    fn from(risk: RiskAssessment) -> Self {
        Self {
            level: risk.level.as_str().to_owned(),
            score: risk.score,
            reasons: risk.reasons.iter().map(|r| r.as_str().to_owned()).collect(),
            model_version: risk.model_version,
        }
    }
}

/// How the code's email went.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CodeDelivery {
    /// Being sent (or retried).
    Queued,
    Sent,
    /// Given up: the user has to log in again.
    Failed,
    /// The code worker's record is gone (kept a day).
    Unknown,
}

/// What became of the code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CodeOutcome {
    /// Can still be typed.
    Pending,
    Succeeded,
    /// Too many wrong codes.
    Locked,
    Expired,
    /// A newer code was emailed.
    Superseded,
    /// The account was changed while it was pending (password changed, disabled).
    Revoked,
    DeliveryFailed,
}

/// The code a login asked for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LoginCode {
    pub challenge_id: Uuid,
    /// False when the login reused the code emailed moments before (`throttled`).
    pub new_email: bool,
    pub delivery: CodeDelivery,
    /// When the email was accepted by the mail server.
    pub sent_at: Option<DateTime<Utc>>,
    /// Wrong codes typed against it (by every login sharing it); null once its record is
    /// gone.
    pub wrong_codes: Option<u32>,
    pub expires_at: DateTime<Utc>,
    pub outcome: CodeOutcome,
}

/// How the login ended (or stands).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FinalState {
    /// Not decided yet.
    Pending,
    Approved,
    /// Approved once the user typed the right code.
    ApprovedAfterMfa,
    /// Waiting for the code.
    AwaitingCode,
    /// See `final_reason`.
    Rejected,
}

/// One login attempt of the user.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UserLogin {
    pub attempt_id: Uuid,
    /// When login-intake accepted the login.
    pub created_at: DateTime<Utc>,
    /// The login's context is null on attempts recorded before it was kept.
    pub platform: Option<Platform>,
    pub auth_method: Option<AuthMethod>,
    /// The end user's address, as the client backend saw it.
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The user agent in short, e.g. `Chrome on Windows 10`.
    #[schema(example = "Chrome on Windows 10")]
    pub client: Option<String>,
    pub device_id: Option<String>,
    pub decision: RiskDecision,
    /// With `rejected`: e.g. `invalid_credentials`, `too_many_codes`, `denylisted_network`.
    pub rejection_reason: Option<String>,
    /// Null while pending, for a refusal that needed no assessment, and once the risk
    /// worker's record is gone.
    pub risk: Option<LoginRisk>,
    /// With `mfa_required` and `throttled`.
    pub code: Option<LoginCode>,
    pub final_state: FinalState,
    /// With a final `rejected`: the decision's reason, or what ended the code
    /// (`code_locked`, `code_expired`, `superseded`, `revoked`, `code_delivery_failed`).
    pub final_reason: Option<String>,
    /// When the login reached its current state (its decision, or the code's end).
    pub decided_at: Option<DateTime<Utc>>,
}

/// A page of a user's logins.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UserLoginPage {
    pub user_id: Uuid,
    /// Newest first.
    pub logins: Vec<UserLogin>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A row of the list's query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRow {
    pub attempt_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub platform: Option<String>,
    pub auth_method: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub device_id: Option<String>,
    pub status: Option<String>,
    pub approved_after_mfa: bool,
    pub challenge_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub code_recently_sent: bool,
    pub retry_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    /// `payload.risk` of the risk worker's decision event.
    pub risk: Option<serde_json::Value>,
    /// The challenge's row, when the code worker still has it.
    pub challenge_status: Option<String>,
    pub failed_attempts: Option<i32>,
    pub email_sent_at: Option<DateTime<Utc>>,
    /// `CodeSent` or `CodeDeliveryFailed`; null while the email is queued.
    pub email_outcome: Option<String>,
}

impl LoginRow {
    /// The decision as `login_attempts` keeps it: the final approval after MFA and the code's
    /// end overwrite an `mfa_required`, so the first decision is told by the challenge the
    /// attempt was given.
    fn decision(&self) -> RiskDecision {
        match (self.challenge_id, self.status.as_deref()) {
            (Some(_), _) if self.code_recently_sent => RiskDecision::Throttled,
            (Some(_), _) => RiskDecision::MfaRequired,
            (None, Some("approved")) => RiskDecision::Approved,
            (None, Some("rejected")) => RiskDecision::Rejected,
            (None, _) => RiskDecision::Pending,
        }
    }

    /// As `IntakeStore::decision` reads it, for `settle`.
    fn stored(&self) -> StoredDecision {
        match (self.status.as_deref(), self.challenge_id, self.expires_at) {
            (Some("approved"), _, _) => StoredDecision::Approved {
                after_mfa: self.approved_after_mfa,
            },
            (Some("mfa_required"), Some(challenge_id), Some(expires_at)) => {
                StoredDecision::MfaRequired {
                    challenge_id: ChallengeId::from_uuid(challenge_id),
                    expires_at,
                    code_recently_sent: self.code_recently_sent,
                }
            }
            (Some("rejected"), _, _) => StoredDecision::Rejected {
                reason: self
                    .reason
                    .clone()
                    .unwrap_or_else(|| "invalid_credentials".into()),
                retry_at: self.retry_at,
            },
            _ => StoredDecision::Pending,
        }
    }

    fn challenge_now(&self) -> Option<ChallengeNow> {
        let status = self.challenge_status.as_deref()?;
        Some(match status {
            "used" => ChallengeNow::Used,
            "locked" => ChallengeNow::Locked,
            "superseded" => ChallengeNow::Superseded,
            "revoked" => ChallengeNow::Revoked,
            _ if self.email_outcome.as_deref() == Some("CodeDeliveryFailed") => {
                ChallengeNow::Undelivered
            }
            _ => ChallengeNow::Pending,
        })
    }

    /// The login as support staff see it at `now`.
    pub fn into_login(self, now: DateTime<Utc>) -> UserLogin {
        let decision = self.decision();
        let settled = settle(self.stored(), self.challenge_now(), now);
        let (final_state, final_reason) = match &settled {
            StoredDecision::Pending => (FinalState::Pending, None),
            StoredDecision::Approved { after_mfa: false } => (FinalState::Approved, None),
            StoredDecision::Approved { after_mfa: true } => (FinalState::ApprovedAfterMfa, None),
            StoredDecision::MfaRequired { .. } => (FinalState::AwaitingCode, None),
            StoredDecision::Rejected { reason, .. } => (FinalState::Rejected, Some(reason.clone())),
        };
        let code = match (self.challenge_id, self.expires_at) {
            (Some(challenge_id), Some(expires_at)) => Some(LoginCode {
                challenge_id,
                new_email: !self.code_recently_sent,
                delivery: match (
                    self.challenge_status.is_some(),
                    self.email_outcome.as_deref(),
                ) {
                    (false, _) => CodeDelivery::Unknown,
                    (true, Some("CodeSent")) => CodeDelivery::Sent,
                    (true, Some("CodeDeliveryFailed")) => CodeDelivery::Failed,
                    (true, _) => CodeDelivery::Queued,
                },
                sent_at: self.email_sent_at,
                wrong_codes: self
                    .failed_attempts
                    .map(|n| u32::try_from(n).unwrap_or_default()),
                expires_at,
                outcome: code_outcome(&settled),
            }),
            _ => None,
        };
        let risk = self.risk.and_then(|risk| {
            serde_json::from_value::<RiskAssessment>(risk)
                .inspect_err(|error| {
                    tracing::warn!(attempt_id = %self.attempt_id, %error, "stored risk assessment unreadable")
                })
                .ok()
        });
        let client = self
            .user_agent
            .as_deref()
            .and_then(|raw| UserAgent::parse(raw).ok())
            .map(|ua| UserAgentSummary::parse(&ua).browser_and_os());
        UserLogin {
            attempt_id: self.attempt_id,
            created_at: self.created_at,
            platform: self.platform.as_deref().and_then(Platform::parse),
            auth_method: self.auth_method.as_deref().and_then(AuthMethod::parse),
            ip: self.ip,
            user_agent: self.user_agent,
            client,
            device_id: self.device_id,
            decision,
            rejection_reason: (decision == RiskDecision::Rejected)
                .then(|| self.reason.clone())
                .flatten(),
            risk: risk.map(LoginRisk::from),
            code,
            final_state,
            final_reason,
            decided_at: self.decided_at,
        }
    }
}

/// The code's fate, from how the login settled (the challenge's own state weighed in).
fn code_outcome(settled: &StoredDecision) -> CodeOutcome {
    const ENDS: [(ClosedReason, CodeOutcome); 5] = [
        (ClosedReason::CodeLocked, CodeOutcome::Locked),
        (ClosedReason::CodeExpired, CodeOutcome::Expired),
        (ClosedReason::Superseded, CodeOutcome::Superseded),
        (ClosedReason::Revoked, CodeOutcome::Revoked),
        (
            ClosedReason::CodeDeliveryFailed,
            CodeOutcome::DeliveryFailed,
        ),
    ];
    match settled {
        StoredDecision::Approved { .. } => CodeOutcome::Succeeded,
        StoredDecision::Rejected { reason, .. } => ENDS
            .iter()
            .find(|(closed, _)| closed.as_str() == reason)
            .map_or(CodeOutcome::Pending, |(_, outcome)| *outcome),
        StoredDecision::Pending | StoredDecision::MfaRequired { .. } => CodeOutcome::Pending,
    }
}

/// The user's logins of one page, newest first, and the next page's cursor. None: no such
/// user.
pub async fn user_logins(
    pool: &PgPool,
    user_id: UserId,
    page: LoginsPageRequest,
    now: DateTime<Utc>,
) -> Result<Option<UserLoginPage>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)")
        .bind(user_id.as_uuid())
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(None);
    }
    // Reads the risk worker's risk_decisions and the code worker's challenges (the risk and
    // the code of each login), as `IntakeStore::decision` reads challenges.
    let mut rows: Vec<LoginRow> = sqlx::query_as(
        "SELECT a.attempt_id, a.created_at, a.platform, a.auth_method, a.ip, a.user_agent,
                a.device_id, a.status, a.approved_after_mfa, a.challenge_id, a.expires_at,
                a.reason, a.code_recently_sent, a.retry_at, a.decided_at,
                d.decision_event->'payload'->'risk' AS risk,
                c.status AS challenge_status, c.failed_attempts, c.email_sent_at,
                c.outcome_event->>'event_type' AS email_outcome
         FROM login_attempts a
         LEFT JOIN risk_decisions d ON d.attempt_id = a.attempt_id
         LEFT JOIN challenges c ON c.challenge_id = a.challenge_id
         WHERE a.user_id = $1
           AND ($2::timestamptz IS NULL OR (a.created_at, a.attempt_id) < ($2, $3))
         ORDER BY a.created_at DESC, a.attempt_id DESC
         LIMIT $4",
    )
    .bind(user_id.as_uuid())
    .bind(page.before.map(|c| c.created_at))
    .bind(page.before.map(|c| c.attempt_id))
    .bind(i64::from(page.limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > page.limit as usize;
    rows.truncate(page.limit as usize);
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|last| LoginCursor {
            created_at: last.created_at,
            attempt_id: last.attempt_id,
        })
        .map(|cursor| cursor.encode());
    Ok(Some(UserLoginPage {
        user_id: user_id.as_uuid(),
        logins: rows.into_iter().map(|row| row.into_login(now)).collect(),
        next_cursor,
    }))
}

const LOGINS_400: &str = "`invalid_cursor`: `cursor` is not a `next_cursor` of this list; \
    `invalid_request`: the query string does not parse (an unknown parameter, a `limit` that \
    is not a number)";

/// A user's login attempts, newest first, a page at a time: platform, address, client, the
/// risk decision and its reasons, the code's fate and how each login ended. Kept for the
/// decision retention (7 days); the event log has the whole history (`mfa-audit timeline`).
#[utoipa::path(
    get, path = "/v1/admin/users/{user_id}/logins",
    params(("user_id" = Uuid, Path), UserLoginsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, body = UserLoginPage),
        (status = 400, description = LOGINS_400, body = mfa_http::ErrorBody),
        (status = 404, description = "`unknown_user`: no account has this id", body = mfa_http::ErrorBody),
        (status = 422, description = "`invalid_request`: `limit` out of range", body = mfa_http::ErrorBody),
    )
)]
pub async fn list_user_logins(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(query): Query<UserLoginsQuery>,
) -> Result<Json<UserLoginPage>, ApiError> {
    let user_id = UserId::parse(&raw).map_err(|_| ApiError::UnknownUser)?;
    let page = query.parse()?;
    user_logins(state.intake.store.pool(), user_id, page, Utc::now())
        .await?
        .map(Json)
        .ok_or(ApiError::UnknownUser)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(now: DateTime<Utc>) -> LoginRow {
        LoginRow {
            attempt_id: Uuid::now_v7(),
            created_at: now,
            platform: Some("ios".into()),
            auth_method: Some("password".into()),
            ip: Some("203.0.113.7".into()),
            user_agent: Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
                    .into(),
            ),
            device_id: None,
            status: Some("approved".into()),
            approved_after_mfa: false,
            challenge_id: None,
            expires_at: None,
            reason: None,
            code_recently_sent: false,
            retry_at: None,
            decided_at: Some(now),
            risk: Some(serde_json::json!({
                "score": 0.2, "level": "low", "reasons": [], "model_version": "m1"
            })),
            challenge_status: None,
            failed_attempts: None,
            email_sent_at: None,
            email_outcome: None,
        }
    }

    fn challenged(now: DateTime<Utc>, challenge_status: Option<&str>) -> LoginRow {
        LoginRow {
            status: Some("mfa_required".into()),
            challenge_id: Some(Uuid::now_v7()),
            expires_at: Some(now + chrono::Duration::minutes(10)),
            risk: Some(serde_json::json!({
                "score": 2.5, "level": "medium", "reasons": ["new_device", "new_network"],
                "model_version": "m1"
            })),
            challenge_status: challenge_status.map(str::to_owned),
            failed_attempts: challenge_status.map(|_| 0),
            email_sent_at: challenge_status.map(|_| now),
            email_outcome: challenge_status.map(|_| "CodeSent".to_owned()),
            ..row(now)
        }
    }

    #[test]
    fn an_approval_shows_its_context_and_risk() {
        let now = Utc::now();
        let login = row(now).into_login(now);
        assert_eq!(login.decision, RiskDecision::Approved);
        assert_eq!(login.final_state, FinalState::Approved);
        assert_eq!(login.platform, Some(Platform::Ios));
        assert_eq!(login.client.as_deref(), Some("Firefox on Windows 10"));
        assert_eq!(login.risk.map(|r| r.level), Some("low".to_owned()));
        assert!(login.code.is_none() && login.final_reason.is_none());
    }

    #[test]
    fn a_wrong_password_is_a_rejection_with_its_reason() {
        let now = Utc::now();
        let login = LoginRow {
            status: Some("rejected".into()),
            reason: Some("invalid_credentials".into()),
            risk: None,
            ..row(now)
        }
        .into_login(now);
        assert_eq!(login.decision, RiskDecision::Rejected);
        assert_eq!(
            login.rejection_reason.as_deref(),
            Some("invalid_credentials")
        );
        assert_eq!(login.final_state, FinalState::Rejected);
        assert_eq!(login.final_reason.as_deref(), Some("invalid_credentials"));
    }

    #[test]
    fn a_code_is_followed_to_its_end() {
        let now = Utc::now();
        let waiting = challenged(now, Some("pending")).into_login(now);
        assert_eq!(waiting.decision, RiskDecision::MfaRequired);
        assert_eq!(waiting.final_state, FinalState::AwaitingCode);
        let code = waiting.code.unwrap();
        assert_eq!(
            (code.delivery, code.outcome),
            (CodeDelivery::Sent, CodeOutcome::Pending)
        );
        assert_eq!(
            waiting.risk.unwrap().reasons,
            ["new_device".to_owned(), "new_network".to_owned()]
        );

        // Passed: the verifier's approval reached the table, or only the challenge says so.
        let passed = LoginRow {
            status: Some("approved".into()),
            approved_after_mfa: true,
            ..challenged(now, Some("used"))
        }
        .into_login(now);
        assert_eq!(passed.final_state, FinalState::ApprovedAfterMfa);
        assert_eq!(passed.code.unwrap().outcome, CodeOutcome::Succeeded);
        let used = challenged(now, Some("used")).into_login(now);
        assert_eq!(used.final_state, FinalState::ApprovedAfterMfa);

        let locked = LoginRow {
            failed_attempts: Some(5),
            ..challenged(now, Some("locked"))
        }
        .into_login(now);
        assert_eq!(locked.final_state, FinalState::Rejected);
        assert_eq!(locked.final_reason.as_deref(), Some("code_locked"));
        let code = locked.code.unwrap();
        assert_eq!(
            (code.outcome, code.wrong_codes),
            (CodeOutcome::Locked, Some(5))
        );

        let later = now + chrono::Duration::minutes(11);
        let expired = challenged(now, Some("pending")).into_login(later);
        assert_eq!(expired.code.unwrap().outcome, CodeOutcome::Expired);

        let undelivered = LoginRow {
            email_outcome: Some("CodeDeliveryFailed".into()),
            email_sent_at: None,
            ..challenged(now, Some("pending"))
        }
        .into_login(now);
        let code = undelivered.code.unwrap();
        assert_eq!(
            (code.delivery, code.outcome),
            (CodeDelivery::Failed, CodeOutcome::DeliveryFailed)
        );
    }

    #[test]
    fn once_the_challenge_is_pruned_the_final_state_tells_the_codes_fate() {
        let now = Utc::now();
        let locked = LoginRow {
            status: Some("rejected".into()),
            reason: Some("code_locked".into()),
            ..challenged(now, None)
        }
        .into_login(now);
        let code = locked.code.unwrap();
        assert_eq!(code.delivery, CodeDelivery::Unknown);
        assert_eq!(
            (code.outcome, code.wrong_codes),
            (CodeOutcome::Locked, None)
        );
        assert_eq!(locked.decision, RiskDecision::MfaRequired);
    }

    #[test]
    fn a_throttled_login_shares_the_pending_code() {
        let now = Utc::now();
        let login = LoginRow {
            code_recently_sent: true,
            ..challenged(now, Some("pending"))
        }
        .into_login(now);
        assert_eq!(login.decision, RiskDecision::Throttled);
        assert!(!login.code.unwrap().new_email);
    }

    #[test]
    fn a_cursor_names_its_list_and_position() {
        let cursor = LoginCursor {
            created_at: DateTime::from_timestamp_micros(1_764_600_000_123_456).unwrap(),
            attempt_id: Uuid::now_v7(),
        };
        assert_eq!(LoginCursor::decode(&cursor.encode()), Ok(cursor));
        let encoded = cursor.encode();
        let users_cursor = format!("0101{}", hex::encode(Uuid::now_v7().as_bytes()));
        for bad in [
            "",
            "zz",
            "0103",
            &encoded[..encoded.len() - 2],
            &format!("{encoded}00"),
            &users_cursor,
        ] {
            assert_eq!(
                LoginCursor::decode(bad),
                Err(PageError::InvalidCursor),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_are_bounded() {
        let query = |limit| UserLoginsQuery {
            limit,
            cursor: None,
        };
        assert_eq!(query(None).parse().unwrap().limit, DEFAULT_LIMIT);
        assert!(query(Some(MAX_LIMIT)).parse().is_ok());
        for limit in [0, MAX_LIMIT + 1] {
            assert_eq!(query(Some(limit)).parse(), Err(PageError::LimitOutOfRange));
        }
    }
}
