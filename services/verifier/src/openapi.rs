use mfa_http::BearerApiKey;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "adaptive-mfa verifier", description = "Checks the emailed 6-digit code of an MFA challenge."),
    paths(crate::verify::verify),
    modifiers(&BearerApiKey)
)]
pub struct ApiDoc;
