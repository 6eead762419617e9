//! `POST /v1/logins` and `GET /v1/logins/{attempt_id}`.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Utc};

use crate::rate_limit::LoginBuckets;
use mfa_http::api_keys::ClientKey;
use mfa_http::deadline::Accepted;
use mfa_http::JsonBody;
use secrecy::{ExposeSecret, SecretString};
use shared::domain::{AttemptId, AuthMethod, DeviceId, Email, Locale, Platform, UserAgent};
use uuid::Uuid;

use crate::error::ApiError;
use crate::intake::{FirstFactor, NewLogin};
use crate::metrics::ReceivedAt;
use crate::startup::AppState;
use crate::store::StoredDecision;

const MAX_PASSWORD_BYTES: usize = 1024;

/// A login to decide. With `auth_method` `password` (the default) the password is required;
/// with `sso` or `google` the client backend has already authenticated the user with the
/// identity provider and sends no password.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = mfa_http::openapi::email)]
    pub email: Email,
    #[serde(default)]
    pub auth_method: AuthMethod,
    /// Required with `auth_method` `password`, refused with the others.
    #[schema(schema_with = crate::openapi::login_password)]
    pub password: Option<SecretString>,
    pub platform: Platform,
    pub context: LoginContext,
    /// The language the user reads (the client's page's), which the code email is written
    /// in: `en` or `fr`; English when absent.
    #[serde(default)]
    pub locale: Option<Locale>,
}

/// What the client backend saw of the end user.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginContext {
    /// The end user's IP address (not the client backend's).
    #[schema(schema_with = mfa_http::openapi::ip_address)]
    pub ip: IpAddr,
    #[schema(schema_with = mfa_http::openapi::user_agent)]
    pub user_agent: UserAgent,
    /// Opaque id the client keeps per browser or app install.
    #[schema(schema_with = crate::openapi::optional_device_id)]
    pub device_id: Option<DeviceId>,
}

impl LoginRequest {
    /// The whole boundary for a raw body: strict JSON, then the rules between fields. The
    /// HTTP handler gets the same result through `JsonBody` and `into_login`.
    pub fn parse(body: &[u8]) -> Result<NewLogin, ApiError> {
        let request: LoginRequest =
            serde_json::from_slice(body).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        request.into_login()
    }

    fn into_login(self) -> Result<NewLogin, ApiError> {
        let first_factor = match (self.auth_method, self.password) {
            (AuthMethod::Password, Some(password)) => {
                let length = password.expose_secret().len();
                if length == 0 || length > MAX_PASSWORD_BYTES {
                    return Err(ApiError::InvalidRequest(format!(
                        "password must be 1 to {MAX_PASSWORD_BYTES} bytes"
                    )));
                }
                FirstFactor::Password(password)
            }
            (AuthMethod::Password, None) => {
                return Err(ApiError::InvalidRequest(
                    "password is required when auth_method is password".into(),
                ))
            }
            (method, None) => FirstFactor::Federated(method),
            (method, Some(_)) => {
                return Err(ApiError::InvalidRequest(format!(
                    "no password is accepted when auth_method is {}",
                    method.as_str()
                )))
            }
        };
        Ok(NewLogin {
            email: self.email,
            first_factor,
            platform: self.platform,
            ip: self.context.ip,
            user_agent: self.context.user_agent,
            device_id: self.context.device_id,
            locale: self.locale.unwrap_or_default(),
        })
    }
}

#[derive(
    Debug, Clone, Copy, serde::Serialize, serde::Deserialize, utoipa::ToSchema, PartialEq, Eq,
)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    Approved,
    MfaRequired,
    Rejected,
    /// Not decided within the wait: ask `GET /v1/logins/{attempt_id}` later.
    Pending,
}

/// The decision on a login.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LoginDecision {
    pub attempt_id: Uuid,
    pub status: DecisionStatus,
    /// With `mfa_required`: the challenge to verify the emailed code against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<Uuid>,
    /// With `mfa_required`: when the emailed code stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// With `mfa_required`: true when no new code was emailed because one was sent moments
    /// ago; the challenge is the pending one, whose code is already in the user's inbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_recently_sent: Option<bool>,
    /// With `rejected`: `invalid_credentials` (unknown email and wrong password alike, and a
    /// first factor the account's own limit excludes), `auth_method_not_allowed` (the
    /// company does not accept this `auth_method`), `too_many_codes` (the account's hourly
    /// share of code emails is used up and no code this device can use is pending: log in
    /// again after `retry_after_secs`), `too_many_failed_codes` (too many wrong codes in a
    /// day: no new code for `retry_after_secs`), `code_pending_elsewhere` (a code was emailed
    /// moments ago for a login on another device, and codes are never shared between
    /// devices: log in again after `retry_after_secs`), `denylisted_network` or
    /// `password_change_required` (the user reported a login as not theirs and their company's
    /// policy then requires a new password: the right password is refused, from a known device
    /// too, until it is changed with `PUT /v1/admin/users/{user_id}/password`). An attempt
    /// that asked for a code ends rejected once that code can no longer be used: `code_locked` (too many wrong
    /// codes), `code_expired`, `superseded` (a newer code was emailed), `revoked` (the
    /// account was changed: password changed or sign-in disabled) or `code_delivery_failed`;
    /// each means "log in again for a new code".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// With `too_many_codes`, `too_many_failed_codes` and `code_pending_elsewhere`: seconds
    /// until a login can get a code again (0 once that time has passed); the `Retry-After`
    /// header says the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// With `approved`: true once the user passed MFA for this attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_after_mfa: Option<bool>,
}

/// The answer about an attempt at `now`: `200` with its decision, or `202` while pending. A
/// refusal with a wait carries it in the body and in `Retry-After` (the decision is still
/// `200`: the login was decided, and the wait is the account's, not the caller's rate).
fn decision_response(
    attempt_id: AttemptId,
    decision: StoredDecision,
    now: DateTime<Utc>,
) -> Response {
    let mut body = LoginDecision {
        attempt_id: attempt_id.as_uuid(),
        status: DecisionStatus::Pending,
        challenge_id: None,
        expires_at: None,
        code_recently_sent: None,
        reason: None,
        retry_after_secs: None,
        approved_after_mfa: None,
    };
    match decision {
        StoredDecision::Pending => return (StatusCode::ACCEPTED, Json(body)).into_response(),
        StoredDecision::Approved { after_mfa } => {
            body.status = DecisionStatus::Approved;
            body.approved_after_mfa = Some(after_mfa);
        }
        StoredDecision::MfaRequired {
            challenge_id,
            expires_at,
            code_recently_sent,
        } => {
            body.status = DecisionStatus::MfaRequired;
            body.challenge_id = Some(challenge_id.as_uuid());
            body.expires_at = Some(expires_at);
            body.code_recently_sent = Some(code_recently_sent);
        }
        StoredDecision::Rejected { reason, retry_at } => {
            body.status = DecisionStatus::Rejected;
            body.reason = Some(reason);
            body.retry_after_secs = retry_at.map(|at| crate::decisions::seconds_until(at, now));
        }
    }
    let retry_after = body.retry_after_secs;
    let mut response = (StatusCode::OK, Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Decide a login.
#[utoipa::path(
    post, path = "/v1/logins", request_body = LoginRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body get the first answer again")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Decided: approved, mfa_required or rejected", body = LoginDecision),
        (status = 202, description = "Not decided within the wait: poll GET /v1/logins/{attempt_id}", body = LoginDecision),
        (status = 403, description = "`platform_not_allowed`: the API key may not speak for this platform", body = mfa_http::ErrorBody),
        (status = 422, description = "`invalid_request`: JSON, but not a login (a missing, unknown or invalid field, a password with `sso`...); `email_mixed_script`, `email_confusable_domain`: not an address an account can have", body = mfa_http::ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this IP, for this account or with this key", body = mfa_http::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
        (status = 503, description = "`overloaded`: too many password checks are queued; the login was not accepted, retry shortly", body = mfa_http::ErrorBody),
    )
)]
pub async fn create_login(
    State(state): State<AppState>,
    Extension(key): Extension<ClientKey>,
    Extension(accepted): Extension<Accepted>,
    received: Option<Extension<ReceivedAt>>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let received = received.map_or_else(Instant::now, |Extension(ReceivedAt(at))| at);
    let login = request.into_login()?;
    if !key.allows(login.platform) {
        return Err(ApiError::PlatformNotAllowed(login.platform));
    }
    // Before any password work, and alike for known and unknown emails.
    let buckets = LoginBuckets::new(
        &state.rate_limits,
        key.key_id,
        login.ip,
        &login.email,
        &state.intake.pseudonyms,
    );
    let rate = state.limiter.check(&buckets, Utc::now()).await?;
    let answer = match rate.retry_after() {
        Some(retry_after) => {
            if let Some(limit) = rate.refused_by() {
                state.metrics.rate_limited(limit);
            }
            Err(ApiError::RateLimited { retry_after })
        }
        None => decide(&state, &key, &accepted, login, received).await,
    };
    // Accepted or refused, the caller learns where it stands (RateLimit-Policy, RateLimit).
    let mut response = answer.into_response();
    for (name, value) in rate.headers() {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// A login past its rate limits: submitted, then answered with its decision (or `pending`).
/// Only these are logins in `mfa_logins_total`; a refusal before (`422`, `429`...) or a
/// failure to accept it (`503`) is an HTTP answer, not a login's.
async fn decide(
    state: &AppState,
    key: &ClientKey,
    accepted: &Accepted,
    login: crate::intake::NewLogin,
    received: Instant,
) -> Result<Response, ApiError> {
    let attempt_id = AttemptId::new();
    // The request's span names the login from here on, and so does its trace: the
    // `LoginAttempted` published below carries it on to the other services.
    tracing::Span::current().record("attempt_id", tracing::field::display(attempt_id));
    let (platform, auth_method) = (login.platform, login.first_factor.method());
    let decision = state
        .waiters
        .submit_and_wait::<_, ApiError>(
            &state.intake.store,
            attempt_id,
            &key.company_id,
            state.decision_wait,
            async {
                state
                    .intake
                    .submit(attempt_id, &key.company_id, login)
                    .await
                    .map_err(ApiError::from)?;
                // Published: from here a slow dependency delays the decision, not the login.
                accepted.mark();
                Ok(())
            },
        )
        .await?;
    state
        .metrics
        .login_answered(platform, auth_method, &decision, received.elapsed());
    Ok(decision_response(attempt_id, decision, Utc::now()))
}

/// The decision on an earlier login.
#[utoipa::path(
    get, path = "/v1/logins/{attempt_id}",
    params(("attempt_id" = Uuid, Path, description = "From the POST /v1/logins answer")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Decided", body = LoginDecision),
        (status = 202, description = "Not decided yet", body = LoginDecision),
        (status = 404, description = "`unknown_attempt`: no such attempt for this key's company", body = mfa_http::ErrorBody),
    )
)]
pub async fn get_login(
    State(state): State<AppState>,
    Extension(key): Extension<ClientKey>,
    Path(attempt_id): Path<String>,
) -> Result<Response, ApiError> {
    let attempt_id = AttemptId::parse(&attempt_id).map_err(|_| ApiError::UnknownAttempt)?;
    let now = Utc::now();
    let decision = crate::decisions::read(&state.intake.store, attempt_id, &key.company_id, now)
        .await?
        .ok_or(ApiError::UnknownAttempt)?;
    Ok(decision_response(attempt_id, decision, now))
}
