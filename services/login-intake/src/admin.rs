//! Admin endpoints (admin API key): creating users.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use shared::api_keys;
use shared::domain::{CompanyId, Email, Platform};
use shared::http::JsonBody;
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
        (status = 401, description = "Missing or invalid admin key", body = shared::http::ErrorBody),
        (status = 409, description = "Email already taken", body = shared::http::ErrorBody),
        (status = 422, description = "Invalid body", body = shared::http::ErrorBody),
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
        (status = 401, description = "Missing or invalid admin key", body = shared::http::ErrorBody),
        (status = 422, description = "Invalid body", body = shared::http::ErrorBody),
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
        (status = 404, description = "No such key", body = shared::http::ErrorBody),
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
