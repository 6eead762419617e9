//! What the page answers when it cannot show a page at all; mapped to HTTP once, here. An
//! API's refusal is not one of these: it is a page with words (`domain::outcome`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A body that is not one of the page's forms (a hand-made request, not a browser).
    #[error("not a form of this page")]
    NotAForm,
    #[error("rendering a template")]
    Render(#[from] askama::Error),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::NotAForm => StatusCode::BAD_REQUEST,
            PageError::Render(error) => {
                tracing::error!(error = %error, "a page could not be rendered");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, self.to_string()).into_response()
    }
}
