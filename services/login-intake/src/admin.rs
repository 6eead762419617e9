//! Admin endpoints (admin API key): creating users.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use shared::domain::{CompanyId, Email};
use shared::http::JsonBody;
use uuid::Uuid;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{CreateUserError, NewUser};

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
