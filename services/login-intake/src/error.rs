use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mfa_http::error_response;

/// Everything login-intake's HTTP API can answer with besides success; mapped to HTTP once,
/// here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    /// A field refused at the boundary with a code of its own (e.g. `email_mixed_script`).
    #[error("{0}")]
    InvalidField(shared::domain::ParseError),
    #[error("no login attempt with this id")]
    UnknownAttempt,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("this API key may not speak for platform {0}")]
    PlatformNotAllowed(shared::domain::Platform),
    #[error("no API key with this id")]
    UnknownApiKey,
    #[error("no user with this id")]
    UnknownUser,
    #[error("no company with this id")]
    UnknownCompany,
    /// A list's `cursor` that is not one of its `next_cursor`s.
    #[error("{0}")]
    InvalidCursor(mfa_http::page::PageError),
    #[error("too many login attempts; retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("too many password checks are queued; retry shortly")]
    Overloaded,
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::InvalidRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            ApiError::InvalidField(error) => (StatusCode::UNPROCESSABLE_ENTITY, error.code()),
            ApiError::UnknownAttempt => (StatusCode::NOT_FOUND, "unknown_attempt"),
            ApiError::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
            ApiError::PlatformNotAllowed(_) => (StatusCode::FORBIDDEN, "platform_not_allowed"),
            ApiError::UnknownApiKey => (StatusCode::NOT_FOUND, "unknown_api_key"),
            ApiError::UnknownUser => (StatusCode::NOT_FOUND, "unknown_user"),
            ApiError::UnknownCompany => (StatusCode::NOT_FOUND, "unknown_company"),
            ApiError::InvalidCursor(_) => (StatusCode::BAD_REQUEST, "invalid_cursor"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
        };
        if let ApiError::Unavailable(reason) = &self {
            tracing::error!(%reason, "dependency unavailable");
            // The caller learns that we are down, not the internals of why.
            return error_response(
                status,
                code,
                "the service is temporarily unavailable; retry shortly",
            );
        }
        let mut response = error_response(status, code, self.to_string());
        if let ApiError::RateLimited { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Unavailable(format!("database: {error}"))
    }
}

impl From<crate::intake::IntakeError> for ApiError {
    fn from(error: crate::intake::IntakeError) -> Self {
        use crate::intake::IntakeError;
        match error {
            IntakeError::Overloaded => ApiError::Overloaded,
            IntakeError::Database(e) => e.into(),
            IntakeError::DataKeys(e) => ApiError::Unavailable(format!("data keys: {e}")),
        }
    }
}

impl From<shared::domain::ParseError> for ApiError {
    fn from(error: shared::domain::ParseError) -> Self {
        ApiError::InvalidField(error)
    }
}

impl From<mfa_http::page::PageError> for ApiError {
    fn from(error: mfa_http::page::PageError) -> Self {
        use mfa_http::page::PageError;
        match error {
            PageError::InvalidCursor => ApiError::InvalidCursor(error),
            PageError::LimitOutOfRange => ApiError::InvalidRequest(error.to_string()),
        }
    }
}
