use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The verifier's answers other than `approved`, each with a stable `error` code; mapped to
/// HTTP once, here.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("No challenge with this id.")]
    UnknownChallenge,
    #[error("The code is not correct. {attempts_remaining} attempt(s) remaining.")]
    InvalidCode { attempts_remaining: u32 },
    #[error("Too many wrong codes: this code no longer works. Log in again to get a new code.")]
    TooManyAttempts,
    #[error("This code has expired. Log in again to get a new code.")]
    ExpiredCode,
    #[error("This code was already used.")]
    AlreadyUsed,
    #[error("A newer code was sent: this one no longer works. Use the newest code, or log in again to get a new one.")]
    Superseded,
    #[error("This code no longer works: the account was changed after it was sent (its password was changed or its sign-in disabled). Log in again to get a new code.")]
    Revoked,
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Like `mfa_http::ErrorBody`, plus the tries left after an `invalid_code`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VerifyErrorBody {
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_remaining: Option<u32>,
}

impl VerifyError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            VerifyError::InvalidRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            VerifyError::UnknownChallenge => (StatusCode::NOT_FOUND, "unknown_challenge"),
            VerifyError::InvalidCode { .. } => (StatusCode::UNAUTHORIZED, "invalid_code"),
            VerifyError::TooManyAttempts => (StatusCode::FORBIDDEN, "too_many_attempts"),
            VerifyError::ExpiredCode => (StatusCode::GONE, "expired_code"),
            VerifyError::AlreadyUsed => (StatusCode::CONFLICT, "already_used"),
            VerifyError::Superseded => (StatusCode::GONE, "superseded"),
            VerifyError::Revoked => (StatusCode::GONE, "revoked"),
            VerifyError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
        }
    }
}

impl IntoResponse for VerifyError {
    fn into_response(self) -> Response {
        if let VerifyError::Unavailable(cause) = &self {
            tracing::error!(
                error = &**cause as &dyn std::error::Error,
                "dependency unavailable"
            );
        }
        let (status, code) = self.status_and_code();
        let attempts_remaining = match &self {
            VerifyError::InvalidCode { attempts_remaining } => Some(*attempts_remaining),
            VerifyError::TooManyAttempts => Some(0),
            _ => None,
        };
        let body = VerifyErrorBody {
            error: code.to_owned(),
            message: self.to_string(),
            attempts_remaining,
        };
        (status, Json(body)).into_response()
    }
}

impl From<sqlx::Error> for VerifyError {
    fn from(error: sqlx::Error) -> Self {
        VerifyError::Unavailable(Box::new(error))
    }
}
