//! Admin endpoints (admin API key): creating users.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use mfa_http::api_keys;
use mfa_http::JsonBody;
use secrecy::{ExposeSecret, SecretString};
use shared::domain::{AttemptId, CompanyId, Email, Platform, UserId};
use shared::events::{AccountChange, AccountChanged, Envelope, Event};
use uuid::Uuid;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{ApiKeyRecord, CreateUserError, NewUser};

const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=1024;

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = String)]
    pub email: Email,
    /// Absent for accounts that only log in through SSO or Google.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    #[schema(value_type = String, example = "acme")]
    pub company_id: CompanyId,
    /// Admins: MFA applies to them even when they log in with SSO or Google.
    #[serde(default)]
    pub privileged: bool,
    /// Whether the company logs in with SSO (created or updated with the user).
    #[serde(default)]
    pub company_uses_sso: bool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub user_id: Uuid,
    pub email: String,
    pub company_id: String,
    pub privileged: bool,
}

/// Create a user.
#[utoipa::path(
    post, path = "/v1/admin/users", request_body = CreateUser,
    security(("api_key" = [])),
    responses(
        (status = 201, body = CreatedUser),
        (status = 401, description = "Missing or invalid admin key", body = mfa_http::ErrorBody),
        (status = 409, description = "Email already taken", body = mfa_http::ErrorBody),
        (status = 422, description = "Invalid body", body = mfa_http::ErrorBody),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    let password_hash = match request.password {
        Some(password) => {
            if !PASSWORD_BYTES.contains(&password.expose_secret().len()) {
                return Err(ApiError::InvalidRequest(
                    "password must be 8 to 1024 bytes".into(),
                ));
            }
            Some(
                state
                    .intake
                    .passwords
                    .hash(password)
                    .await
                    .map_err(|_| ApiError::Overloaded)?,
            )
        }
        None => None,
    };
    let user_id = state
        .intake
        .store
        .create_user(NewUser {
            email: &request.email,
            password_hash,
            company_id: &request.company_id,
            company_uses_sso: request.company_uses_sso,
            privileged: request.privileged,
        })
        .await
        .map_err(|error| match error {
            CreateUserError::EmailTaken => ApiError::EmailTaken,
            CreateUserError::Database(e) => e.into(),
        })?;
    tracing::info!(%user_id, company = %request.company_id, "user created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user_id: user_id.as_uuid(),
            email: request.email.to_string(),
            company_id: request.company_id.to_string(),
            privileged: request.privileged,
        }),
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(value_type = String, example = "acme")]
    pub company_id: CompanyId,
    /// What the key is for, e.g. "dashboard backend (production)".
    pub name: String,
    /// The platforms the key may send logins for; all of them when absent.
    #[serde(default)]
    pub platforms: Option<Vec<Platform>>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    pub key_id: Uuid,
    pub company_id: String,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub key_prefix: String,
    pub platforms: Vec<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRecord> for ApiKeyInfo {
    fn from(record: ApiKeyRecord) -> Self {
        Self {
            key_id: record.key_id,
            company_id: record.company_id,
            name: record.name,
            key_prefix: record.key_prefix,
            platforms: record.platforms,
            created_at: record.created_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// A new key: the only time its raw value is shown.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// Give it to the client backend now: it is not stored and can't be shown again.
    pub api_key: String,
    #[serde(flatten)]
    pub info: ApiKeyInfo,
}

const MAX_KEY_NAME: usize = 200;

/// Create a client API key.
#[utoipa::path(
    post, path = "/v1/admin/api-keys", request_body = CreateApiKey,
    security(("api_key" = [])),
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 401, description = "Missing or invalid admin key", body = mfa_http::ErrorBody),
        (status = 422, description = "Invalid body", body = mfa_http::ErrorBody),
    )
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateApiKey>,
) -> Result<impl IntoResponse, ApiError> {
    let name = request.name.trim();
    if name.is_empty() || name.len() > MAX_KEY_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(format!(
            "name must be 1 to {MAX_KEY_NAME} printable characters"
        )));
    }
    let platforms = match request.platforms {
        Some(platforms) if platforms.is_empty() => {
            return Err(ApiError::InvalidRequest(
                "platforms must name at least one platform".into(),
            ))
        }
        Some(platforms) => platforms,
        None => Platform::ALL.to_vec(),
    };
    let (raw, digest, prefix) = api_keys::generate();
    let record = state
        .intake
        .store
        .create_api_key(&request.company_id, name, &digest, &prefix, &platforms)
        .await?;
    tracing::info!(key_id = %record.key_id, company = %record.company_id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: raw.expose_secret().to_owned(),
            info: record.into(),
        }),
    ))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListApiKeys {
    /// Only this company's keys.
    pub company_id: Option<String>,
}

/// List client API keys (never their raw values).
#[utoipa::path(
    get, path = "/v1/admin/api-keys", params(ListApiKeys),
    security(("api_key" = [])),
    responses((status = 200, body = Vec<ApiKeyInfo>))
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Query(query): Query<ListApiKeys>,
) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    let company = query
        .company_id
        .as_deref()
        .map(CompanyId::parse)
        .transpose()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let keys = state.intake.store.list_api_keys(company.as_ref()).await?;
    Ok(Json(keys.into_iter().map(ApiKeyInfo::from).collect()))
}

/// Revoke a client API key: it stops working at once.
#[utoipa::path(
    delete, path = "/v1/admin/api-keys/{key_id}",
    params(("key_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = mfa_http::ErrorBody),
    )
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key_id = Uuid::parse_str(&key_id).map_err(|_| ApiError::UnknownApiKey)?;
    if !state.intake.store.revoke_api_key(key_id).await? {
        return Err(ApiError::UnknownApiKey);
    }
    tracing::info!(%key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Tells the other services (risk worker, code worker) about an account change, on the
/// accounts topic. Called after the change is stored, so a retry after a failure is safe.
async fn announce(
    state: &AppState,
    user_id: UserId,
    change: AccountChange,
) -> Result<(), ApiError> {
    let event = Envelope::new(
        crate::intake::PRODUCER,
        AttemptId::new(),
        None,
        Utc::now(),
        Event::AccountChanged(AccountChanged { user_id, change }),
    );
    state
        .intake
        .publisher
        .publish(&state.intake.topics.accounts, &user_id.to_string(), &event)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    tracing::info!(%user_id, ?change, "account changed");
    Ok(())
}

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|_| ApiError::UnknownUser)
}

fn found(exists: bool) -> Result<(), ApiError> {
    exists.then_some(()).ok_or(ApiError::UnknownUser)
}

/// Disable a user: they can't log in, and their pending codes stop working.
#[utoipa::path(
    post, path = "/v1/admin/users/{user_id}/disable", params(("user_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 204), (status = 404, body = mfa_http::ErrorBody))
)]
pub async fn disable_user(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = user_id(&raw)?;
    found(state.intake.store.set_disabled(user_id, true).await?)?;
    announce(&state, user_id, AccountChange::Disabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a disabled user again.
#[utoipa::path(
    post, path = "/v1/admin/users/{user_id}/enable", params(("user_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 204), (status = 404, body = mfa_http::ErrorBody))
)]
pub async fn enable_user(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = user_id(&raw)?;
    found(state.intake.store.set_disabled(user_id, false).await?)?;
    announce(&state, user_id, AccountChange::Enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Set a new password: the user's pending codes stop working.
#[utoipa::path(
    put, path = "/v1/admin/users/{user_id}/password", params(("user_id" = Uuid, Path)),
    request_body = ChangePassword, security(("api_key" = [])),
    responses((status = 204), (status = 404, body = mfa_http::ErrorBody), (status = 422, body = mfa_http::ErrorBody))
)]
pub async fn change_password(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    JsonBody(request): JsonBody<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let user_id = user_id(&raw)?;
    if !PASSWORD_BYTES.contains(&request.password.expose_secret().len()) {
        return Err(ApiError::InvalidRequest(
            "password must be 8 to 1024 bytes".into(),
        ));
    }
    let hash = state
        .intake
        .passwords
        .hash(request.password)
        .await
        .map_err(|_| ApiError::Overloaded)?;
    found(state.intake.store.set_password_hash(user_id, &hash).await?)?;
    announce(&state, user_id, AccountChange::PasswordChanged).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forget the user's learned devices, networks and browsers (after a compromise): their next
/// login asks for a code.
#[utoipa::path(
    post, path = "/v1/admin/users/{user_id}/reset-history", params(("user_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 204), (status = 404, body = mfa_http::ErrorBody))
)]
pub async fn reset_history(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = user_id(&raw)?;
    found(state.intake.store.user_exists(user_id).await?)?;
    announce(&state, user_id, AccountChange::HistoryReset).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a user: their rows go in every service; events keep only their id.
#[utoipa::path(
    delete, path = "/v1/admin/users/{user_id}", params(("user_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 204), (status = 404, body = mfa_http::ErrorBody))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = user_id(&raw)?;
    found(state.intake.store.delete_user(user_id).await?)?;
    announce(&state, user_id, AccountChange::Deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}
