use shared::http::BearerApiKey;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "adaptive-mfa login-intake", description = "Decides logins: approved, mfa_required (a code is emailed) or rejected."),
    paths(crate::logins::create_login, crate::logins::get_login, crate::admin::create_user),
    components(schemas(shared::http::ErrorBody)),
    modifiers(&BearerApiKey)
)]
pub struct ApiDoc;
