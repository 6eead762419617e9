//! Admin endpoints (admin API key): users, companies and their accepted first factors, client
//! API keys. Every account change is announced (`AccountChanged`) through the outbox, in the
//! change's own transaction.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use mfa_http::api_keys;
use mfa_http::page::{List, PageRequest, DEFAULT_LIMIT};
use mfa_http::JsonBody;
use secrecy::{ExposeSecret, SecretString};
use shared::domain::{AttemptId, AuthMethod, CompanyId, Email, FirstFactors, Platform, UserId};
use uuid::Uuid;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{AccountRecord, Announcement, ApiKeyRecord, CreateUserError, NewUser};

const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=1024;

/// An admin-set password, as the document states it: [`PASSWORD_BYTES`].
fn password_schema() -> utoipa::openapi::schema::ObjectBuilder {
    mfa_http::openapi::password(*PASSWORD_BYTES.start(), *PASSWORD_BYTES.end())
}

fn optional_password_schema() -> utoipa::openapi::schema::ObjectBuilder {
    mfa_http::openapi::or_null(password_schema())
}

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
    #[schema(schema_with = mfa_http::openapi::email)]
    pub email: String,
    /// Absent for accounts that only log in through SSO or Google.
    #[schema(schema_with = optional_password_schema)]
    pub password: Option<SecretString>,
    #[schema(schema_with = mfa_http::openapi::company_id)]
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
    #[schema(schema_with = mfa_http::openapi::company_id)]
    pub company_id: CompanyId,
    /// What the key is for, e.g. "dashboard backend (production)".
    #[schema(schema_with = key_name_schema)]
    pub name: String,
    /// The platforms the key may send logins for (at least one); all of them when absent.
    #[serde(default)]
    #[schema(min_items = 1)]
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

fn key_name_schema() -> utoipa::openapi::Schema {
    mfa_http::openapi::printable_text(MAX_KEY_NAME)
        .examples(["dashboard backend (production)"])
        .into()
}

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

const LIST_400: &str = "`invalid_cursor`: `cursor` is not a `next_cursor` of this list; \
    `invalid_request`: the query string does not parse (an unknown parameter, a `limit` that \
    is not a number)";
const LIST_422: &str = "`invalid_request`: `limit` out of range, or an invalid `company_id`";

/// Which page of a list, of which company: the query of both admin lists.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub company_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// By hand: `schema_with` (the schemas built from the parsers' limits) would drop the
/// descriptions and the required flags.
impl utoipa::IntoParams for ListQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use mfa_http::openapi;
        vec![
            query_param(
                "company_id",
                "Only this company's; absent: every company's.",
                false,
                openapi::company_id(),
            ),
            query_param(
                "limit",
                &format!("Items per page (default {DEFAULT_LIMIT})."),
                false,
                openapi::page_limit(),
            ),
            query_param(
                "cursor",
                "The `next_cursor` of the page before; absent: the first page.",
                false,
                openapi::page_cursor(),
            ),
        ]
    }
}

pub(crate) fn query_param(
    name: &str,
    description: &str,
    required: bool,
    schema: utoipa::openapi::schema::ObjectBuilder,
) -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::Required;
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .description(Some(description))
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .schema(Some(schema))
        .build()
}

impl ListQuery {
    fn parse(&self, list: List) -> Result<(Option<CompanyId>, PageRequest), ApiError> {
        let company = self.company_id.as_deref().map(company_id).transpose()?;
        let page = PageRequest::parse(list, self.limit, self.cursor.as_deref())?;
        Ok((company, page))
    }
}

/// A page of client API keys.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ApiKeyPage {
    pub api_keys: Vec<ApiKeyInfo>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// List client API keys (never their raw values), oldest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/admin/api-keys", params(ListQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, body = ApiKeyPage),
        (status = 400, description = LIST_400, body = mfa_http::ErrorBody),
        (status = 422, description = LIST_422, body = mfa_http::ErrorBody),
    )
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<ApiKeyPage>, ApiError> {
    let (company, page) = query.parse(List::ApiKeys)?;
    let keys = state
        .intake
        .store
        .list_api_keys(company.as_ref(), page)
        .await?;
    Ok(Json(ApiKeyPage {
        api_keys: keys.items.into_iter().map(ApiKeyInfo::from).collect(),
        next_cursor: keys.next_cursor,
    }))
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

/// An account as a support desk sees it: never its password hash.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub user_id: Uuid,
    /// The canonical form (see `Email`), the one logins are matched against.
    pub email: String,
    pub company_id: String,
    pub privileged: bool,
    /// False for accounts that only log in through SSO or Google.
    pub has_password: bool,
    /// The account's own limit on its company's first factors; null when it has none.
    #[schema(value_type = Option<Vec<AuthMethod>>)]
    pub first_factors: Option<FirstFactors>,
    /// When the account was disabled; null while it may log in.
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<AccountRecord> for UserInfo {
    fn from(record: AccountRecord) -> Self {
        Self {
            user_id: record.user_id.as_uuid(),
            email: record.email,
            company_id: record.company_id,
            privileged: record.privileged,
            has_password: record.has_password,
            first_factors: record.first_factors,
            disabled_at: record.disabled_at,
            created_at: record.created_at,
        }
    }
}

/// A page of accounts.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UserPage {
    pub users: Vec<UserInfo>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// List accounts (a company's, or every company's), oldest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/admin/users", params(ListQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, body = UserPage),
        (status = 400, description = LIST_400, body = mfa_http::ErrorBody),
        (status = 422, description = LIST_422, body = mfa_http::ErrorBody),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let (company, page) = query.parse(List::Users)?;
    let accounts = state
        .intake
        .store
        .list_accounts(company.as_ref(), page)
        .await?;
    Ok(Json(UserPage {
        users: accounts.items.into_iter().map(UserInfo::from).collect(),
        next_cursor: accounts.next_cursor,
    }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindUser {
    pub email: String,
}

impl utoipa::IntoParams for FindUser {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        vec![query_param(
            "email",
            "Any spelling of the address: it is matched in its canonical form (case, Unicode \
             normalisation and the domain's IDNA form do not matter).",
            true,
            mfa_http::openapi::email(),
        )]
    }
}

/// Find the account of an email address, disabled or not.
///
/// A route of its own rather than a filter of the list: it answers one account or `404`,
/// where the list answers pages.
#[utoipa::path(
    get, path = "/v1/admin/users/by-email", params(FindUser),
    security(("api_key" = [])),
    responses(
        (status = 200, body = UserInfo),
        (status = 404, description = "`unknown_user`: no account has this address", body = mfa_http::ErrorBody),
        (status = 422, description = "`invalid_request`, `email_mixed_script` or `email_confusable_domain`: not an address an account can have", body = mfa_http::ErrorBody),
    )
)]
pub async fn find_user_by_email(
    State(state): State<AppState>,
    Query(query): Query<FindUser>,
) -> Result<Json<UserInfo>, ApiError> {
    let email = Email::parse(&query.email)?;
    let account = state
        .intake
        .store
        .account_by_email(&email)
        .await?
        .ok_or(ApiError::UnknownUser)?;
    Ok(Json(account.into()))
}

/// An account.
#[utoipa::path(
    get, path = "/v1/admin/users/{user_id}", params(("user_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses(
        (status = 200, body = UserInfo),
        (status = 404, description = "unknown_user", body = mfa_http::ErrorBody),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<UserInfo>, ApiError> {
    let user_id = user_id(&raw)?;
    let account = state
        .intake
        .store
        .account(user_id)
        .await?
        .ok_or(ApiError::UnknownUser)?;
    Ok(Json(account.into()))
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
    #[schema(schema_with = password_schema)]
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
    state
        .intake
        .data_keys
        .forget(shared::personal::Subject::User(user_id));
    tracing::info!(%user_id, "account deleted, its data keys erased");
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

/// The company a route's path names.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CompanyPath {
    #[param(schema_with = mfa_http::openapi::company_id)]
    pub company_id: String,
}

fn company_id(raw: &str) -> Result<CompanyId, ApiError> {
    CompanyId::parse(raw).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// Set the first factors a company accepts (creating the company if it is new). A new
/// company accepts passwords only until this says otherwise. Each of its accounts whose
/// accepted set changed is announced (`AccountChanged`, `first_factors_changed`).
#[utoipa::path(
    put, path = "/v1/admin/companies/{company_id}", params(CompanyPath),
    request_body = SetCompany, security(("api_key" = [])),
    responses(
        (status = 200, body = CompanyInfo),
        (status = 401, description = "Missing or invalid admin key", body = mfa_http::ErrorBody),
        (status = 422, description = "`invalid_request`: an invalid company id, or first_factors empty or unknown", body = mfa_http::ErrorBody),
    )
)]
pub async fn set_company(
    State(state): State<AppState>,
    Path(CompanyPath { company_id: raw }): Path<CompanyPath>,
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
    get, path = "/v1/admin/companies/{company_id}", params(CompanyPath),
    security(("api_key" = [])),
    responses(
        (status = 200, body = CompanyInfo),
        (status = 404, description = "No such company", body = mfa_http::ErrorBody),
    )
)]
pub async fn get_company(
    State(state): State<AppState>,
    Path(CompanyPath { company_id: raw }): Path<CompanyPath>,
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
