//! Admin endpoints (admin API key): users, companies and their accepted first factors, client
//! API keys. Every account change is announced (`AccountChanged`) through the outbox, in the
//! change's own transaction.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use mfa_http::api_keys;
use mfa_http::JsonBody;
use secrecy::{ExposeSecret, SecretString};
use shared::domain::{AttemptId, AuthMethod, CompanyId, Email, FirstFactors, Platform, UserId};
use uuid::Uuid;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{Announcement, ApiKeyRecord, CreateUserError, NewUser};

const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=1024;

/// First factors as an admin states them: at least one, each `password`, `sso` or `google`
/// (an unknown name is refused by serde with the names it knows).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(try_from = "Vec<AuthMethod>")]
pub struct StatedFirstFactors(pub FirstFactors);

impl TryFrom<Vec<AuthMethod>> for StatedFirstFactors {
    type Error = &'static str;

    fn try_from(methods: Vec<AuthMethod>) -> Result<Self, Self::Error> {
        let factors = FirstFactors::of(methods);
        if factors.is_empty() {
            return Err("first_factors must name at least one of `password`, `sso`, `google`");
        }
        Ok(Self(factors))
    }
}

/// A new admin operation's announcement on the accounts topic.
fn announcement(state: &AppState) -> Announcement<'_> {
    Announcement {
        topic: &state.intake.topics.accounts,
        operation: AttemptId::new(),
        now: Utc::now(),
    }
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Stored in one canonical form (see `Email`); an address that mixes scripts or whose
    /// domain imitates another is refused with its own code.
    #[schema(max_length = 254)]
    pub email: String,
    /// Absent for accounts that only log in through SSO or Google.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    #[schema(value_type = String, example = "acme")]
    pub company_id: CompanyId,
    /// Admins: MFA applies to them even when they log in with SSO or Google.
    #[serde(default)]
    pub privileged: bool,
    /// Kept for compatibility: true makes the company accept passwords and SSO (added to
    /// what it accepted); false changes nothing. Set a company's first factors with
    /// `PUT /v1/admin/companies/{company_id}`.
    #[serde(default)]
    pub company_uses_sso: bool,
    /// Narrows what the company accepts for this account (e.g. `["password"]`); absent: the
    /// company's first factors.
    #[serde(default)]
    #[schema(value_type = Option<Vec<AuthMethod>>, min_items = 1)]
    pub first_factors: Option<StatedFirstFactors>,
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
    let email = Email::parse(&request.email)?;
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
        .create_user(
            NewUser {
                email: &email,
                password_hash,
                company_id: &request.company_id,
                company_uses_sso: request.company_uses_sso,
                privileged: request.privileged,
                first_factors: request.first_factors.map(|stated| stated.0),
            },
            &announcement(&state),
        )
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
            email: email.to_string(),
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
        // The raw key is shown once: no cache along the way may keep a copy.
        [(axum::http::header::CACHE_CONTROL, "no-store")],
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
    let announcement = announcement(&state);
    found(
        state
            .intake
            .store
            .set_disabled(user_id, true, &announcement)
            .await?,
    )?;
    tracing::info!(%user_id, "account disabled");
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
    let announcement = announcement(&state);
    found(
        state
            .intake
            .store
            .set_disabled(user_id, false, &announcement)
            .await?,
    )?;
    tracing::info!(%user_id, "account enabled");
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
    let announcement = announcement(&state);
    found(
        state
            .intake
            .store
            .set_password_hash(user_id, &hash, &announcement)
            .await?,
    )?;
    tracing::info!(%user_id, "password changed");
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
    let announcement = announcement(&state);
    found(
        state
            .intake
            .store
            .reset_history(user_id, &announcement)
            .await?,
    )?;
    tracing::info!(%user_id, "history reset");
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
    let announcement = announcement(&state);
    found(
        state
            .intake
            .store
            .delete_user(user_id, &announcement)
            .await?,
    )?;
    tracing::info!(%user_id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCompany {
    /// The first factors the company's logins may use: at least one of `password`, `sso`,
    /// `google`. A login with another is rejected (`auth_method_not_allowed`).
    #[schema(value_type = Vec<AuthMethod>, min_items = 1, example = json!(["password", "sso"]))]
    pub first_factors: StatedFirstFactors,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CompanyInfo {
    pub company_id: String,
    #[schema(value_type = Vec<AuthMethod>)]
    pub first_factors: FirstFactors,
}

fn company_id(raw: &str) -> Result<CompanyId, ApiError> {
    CompanyId::parse(raw).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// Set the first factors a company accepts (creating the company if it is new). A new
/// company accepts passwords only until this says otherwise. Each of its accounts whose
/// accepted set changed is announced (`AccountChanged`, `first_factors_changed`).
#[utoipa::path(
    put, path = "/v1/admin/companies/{company_id}", params(("company_id" = String, Path)),
    request_body = SetCompany, security(("api_key" = [])),
    responses(
        (status = 200, body = CompanyInfo),
        (status = 401, description = "Missing or invalid admin key", body = mfa_http::ErrorBody),
        (status = 422, description = "Invalid company id, or first_factors empty or unknown", body = mfa_http::ErrorBody),
    )
)]
pub async fn set_company(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    JsonBody(request): JsonBody<SetCompany>,
) -> Result<Json<CompanyInfo>, ApiError> {
    let company = company_id(&raw)?;
    let factors = request.first_factors.0;
    state
        .intake
        .store
        .set_company_first_factors(&company, factors, &announcement(&state))
        .await?;
    tracing::info!(%company, first_factors = ?factors, "company first factors set");
    Ok(Json(CompanyInfo {
        company_id: company.to_string(),
        first_factors: factors,
    }))
}

/// A company's accepted first factors.
#[utoipa::path(
    get, path = "/v1/admin/companies/{company_id}", params(("company_id" = String, Path)),
    security(("api_key" = [])),
    responses(
        (status = 200, body = CompanyInfo),
        (status = 404, description = "No such company", body = mfa_http::ErrorBody),
    )
)]
pub async fn get_company(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<CompanyInfo>, ApiError> {
    let company = CompanyId::parse(&raw).map_err(|_| ApiError::UnknownCompany)?;
    let factors = state
        .intake
        .store
        .company(&company)
        .await?
        .ok_or(ApiError::UnknownCompany)?;
    Ok(Json(CompanyInfo {
        company_id: company.to_string(),
        first_factors: factors,
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserFirstFactors {
    /// The account's own limit, narrowing its company's first factors (at least one); null
    /// lifts it.
    #[schema(value_type = Option<Vec<AuthMethod>>, min_items = 1, example = json!(["password"]))]
    pub first_factors: Option<StatedFirstFactors>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UserFirstFactors {
    pub user_id: Uuid,
    /// The account's own limit; null when it has none.
    #[schema(value_type = Option<Vec<AuthMethod>>)]
    pub first_factors: Option<FirstFactors>,
    /// What logs the account in now: its company's first factors narrowed by its limit
    /// (empty: nothing does).
    #[schema(value_type = Vec<AuthMethod>)]
    pub accepted: FirstFactors,
}

/// Limit the first factors one account logs in with (e.g. password only, in a company that
/// also accepts SSO), or lift the limit. A login with an excluded factor is answered like a
/// wrong password (`invalid_credentials`): a distinct answer would tell a client key's holder
/// that the account exists.
#[utoipa::path(
    put, path = "/v1/admin/users/{user_id}/first-factors", params(("user_id" = Uuid, Path)),
    request_body = SetUserFirstFactors, security(("api_key" = [])),
    responses(
        (status = 200, body = UserFirstFactors),
        (status = 404, body = mfa_http::ErrorBody),
        (status = 422, description = "first_factors empty or unknown", body = mfa_http::ErrorBody),
    )
)]
pub async fn set_user_first_factors(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    JsonBody(request): JsonBody<SetUserFirstFactors>,
) -> Result<Json<UserFirstFactors>, ApiError> {
    let user_id = user_id(&raw)?;
    let limit = request.first_factors.map(|stated| stated.0);
    let accepted = state
        .intake
        .store
        .set_user_first_factors(user_id, limit, &announcement(&state))
        .await?
        .ok_or(ApiError::UnknownUser)?;
    tracing::info!(%user_id, first_factors = ?limit, ?accepted, "account first factors set");
    Ok(Json(UserFirstFactors {
        user_id: user_id.as_uuid(),
        first_factors: limit,
        accepted,
    }))
}
